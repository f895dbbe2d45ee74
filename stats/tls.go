package stats

// TLS on the client listener.
var (
	tlsHandshakesOK     = set.NewCounter(`ringmq_tls_handshakes_total{result="ok"}`)
	tlsHandshakesFailed = set.NewCounter(`ringmq_tls_handshakes_total{result="failed"}`)
	tlsRecordErrors     = set.NewCounter("ringmq_tls_record_errors_total")
)

// TLSHandshake counts a finished handshake: ok, or failed (refused
// certificate, deadline, protocol error, queue full).
func TLSHandshake(ok bool) {
	if ok {
		tlsHandshakesOK.Inc()
		return
	}
	tlsHandshakesFailed.Inc()
}

// TLSRecordError counts an established TLS connection ended by a bad
// record (failed decryption, protocol violation).
func TLSRecordError() { tlsRecordErrors.Inc() }
