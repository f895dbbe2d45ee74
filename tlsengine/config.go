package tlsengine

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Anonymous is the principal of a connection that presented no client
// certificate (and, later, did not authenticate otherwise).
const Anonymous = "User:ANONYMOUS"

// ServerConfig builds the listener's TLS configuration: TLS 1.3 only, no
// session tickets (no resumption state to protect or rotate), full-size
// records from the first byte. With caFile set, a client certificate
// signed by one of its CAs is required.
func ServerConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load server.tls_cert %q and server.tls_key %q: %w", certFile, keyFile, err)
	}
	cfg := &tls.Config{
		Certificates:                []tls.Certificate{cert},
		MinVersion:                  tls.VersionTLS13,
		SessionTicketsDisabled:      true,
		DynamicRecordSizingDisabled: true,
	}
	if caFile != "" {
		pool, err := LoadCAs(caFile)
		if err != nil {
			return nil, fmt.Errorf("server.tls_ca: %w", err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// LoadCAs reads a PEM file of CA certificates.
func LoadCAs(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: %w", file, errNoCerts)
	}
	return pool, nil
}

var errNoCerts = errors.New("no PEM certificate found")

// principalOf maps a verified client certificate to a principal:
// "User:" and its subject's common name; "User:" and the whole subject
// (RFC 2253 form) when it has no common name; Anonymous without a
// certificate.
func principalOf(st tls.ConnectionState) string {
	if len(st.PeerCertificates) == 0 {
		return Anonymous
	}
	subj := st.PeerCertificates[0].Subject
	if subj.CommonName != "" {
		return "User:" + subj.CommonName
	}
	return "User:" + subj.String()
}
