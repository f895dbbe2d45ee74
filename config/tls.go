package config

import "time"

// TLSMode is the [server] tls choice.
type TLSMode uint8

const (
	tlsModeUnset TLSMode = iota
	// TLSOff serves the client port in plaintext.
	TLSOff
	// TLSOn serves TLS 1.3 with the server's certificate; clients are not
	// asked for one.
	TLSOn
	// TLSMutual also requires a client certificate signed by tls_ca; the
	// connection's principal is "User:" and the certificate's common name.
	TLSMutual
)

var tlsModeNames = []string{TLSOff: "off", TLSOn: "on", TLSMutual: "mtls"}

func (m TLSMode) String() string { return enumString(tlsModeNames, uint8(m)) }

// MarshalText writes the TOML spelling ("off", "on", "mtls").
func (m TLSMode) MarshalText() ([]byte, error) { return enumMarshal(tlsModeNames, uint8(m)) }

// UnmarshalText parses the TOML spelling; the error lists the valid ones.
func (m *TLSMode) UnmarshalText(b []byte) error {
	return enumUnmarshal(tlsModeNames, (*uint8)(m), b)
}

// KTLSMode is the [server] ktls choice: whether TLS records are encrypted
// by the kernel (kTLS) instead of in user space.
type KTLSMode uint8

const (
	ktlsModeUnset KTLSMode = iota
	// KTLSAuto probes the kernel once at start and uses user-space TLS
	// when it lacks kTLS.
	KTLSAuto
	// KTLSOn refuses to start without kTLS.
	KTLSOn
	// KTLSOff always encrypts in user space.
	KTLSOff
)

var ktlsModeNames = []string{KTLSAuto: "auto", KTLSOn: "on", KTLSOff: "off"}

func (m KTLSMode) String() string { return enumString(ktlsModeNames, uint8(m)) }

// MarshalText writes the TOML spelling ("auto", "on", "off").
func (m KTLSMode) MarshalText() ([]byte, error) { return enumMarshal(ktlsModeNames, uint8(m)) }

// UnmarshalText parses the TOML spelling; the error lists the valid ones.
func (m *KTLSMode) UnmarshalText(b []byte) error {
	return enumUnmarshal(ktlsModeNames, (*uint8)(m), b)
}

// Defaults of the TLS settings.
const (
	defaultTLSHandshakeTimeout = 10 * time.Second
	maxTLSHandshakeTimeout     = 5 * time.Minute
)

// validateTLS checks the [server] TLS settings. Whether the files exist and
// hold a key pair is checked when the server loads them at start.
func (s ServerConfig) validateTLS(ck *checker) {
	ck.check(validEnum(tlsModeNames, uint8(s.TLS)), "server.tls", s.TLS, "want "+enumChoices(tlsModeNames))
	ck.check(validEnum(ktlsModeNames, uint8(s.KTLS)), "server.ktls", s.KTLS, "want "+enumChoices(ktlsModeNames))
	if s.TLS == TLSOff {
		ck.check(s.KTLS != KTLSOn, "server.ktls", s.KTLS, `"on" needs server.tls "on" or "mtls"`)
		return
	}
	ck.check(s.TLSCert != "", "server.tls_cert", s.TLSCert, "must name the certificate file (PEM) when server.tls is on")
	ck.check(s.TLSKey != "", "server.tls_key", s.TLSKey, "must name the private key file (PEM) when server.tls is on")
	ck.check(s.TLS != TLSMutual || s.TLSCA != "", "server.tls_ca", s.TLSCA,
		`must name the CA file (PEM) that signs client certificates when server.tls is "mtls"`)
	ck.check(s.TLSHandshakeTimeout > 0 && s.TLSHandshakeTimeout <= maxTLSHandshakeTimeout,
		"server.tls_handshake_timeout", s.TLSHandshakeTimeout, "must be more than 0 and at most 5m")
}
