package config

import (
	"errors"
	"testing"
)

func TestTLSSettings(t *testing.T) {
	got, err := Parse([]byte(`[server]
tls = "mtls"
tls_cert = "s.pem"
tls_key = "s.key"
tls_ca = "ca.pem"
tls_handshake_timeout = "3s"
ktls = "off"
`))
	if err != nil {
		t.Fatal(err)
	}
	s := got.Server
	if s.TLS != TLSMutual || s.TLSCert != "s.pem" || s.TLSKey != "s.key" || s.TLSCA != "ca.pem" ||
		s.TLSHandshakeTimeout.String() != "3s" || s.KTLS != KTLSOff {
		t.Errorf("Parse = %+v", s)
	}
	for _, tt := range []struct{ file, want string }{
		{"[server]\ntls = \"yes\"\n", `server.tls = "yes": want "off", "on" or "mtls"`},
		{"[server]\ntls = \"on\"\n", `server.tls_cert = "": must name the certificate file (PEM) when server.tls is on`},
		{"[server]\ntls = \"on\"\ntls_cert = \"c\"\n", `server.tls_key = "": must name the private key file (PEM) when server.tls is on`},
		{"[server]\ntls = \"mtls\"\ntls_cert = \"c\"\ntls_key = \"k\"\n",
			`server.tls_ca = "": must name the CA file (PEM) that signs client certificates when server.tls is "mtls"`},
		{"[server]\nktls = \"on\"\n", `server.ktls = "on": "on" needs server.tls "on" or "mtls"`},
		{"[server]\ntls = \"on\"\ntls_cert = \"c\"\ntls_key = \"k\"\ntls_handshake_timeout = \"0s\"\n",
			`server.tls_handshake_timeout = "0s": must be more than 0 and at most 5m`},
	} {
		_, err := Parse([]byte(tt.file))
		if err == nil || err.Error() != tt.want {
			t.Errorf("Parse(%q):\n got %v\nwant %s", tt.file, err, tt.want)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) = %v, not ErrInvalid", tt.file, err)
		}
	}
	for _, tt := range []struct {
		v    interface{ MarshalText() ([]byte, error) }
		want string
	}{{TLSOff, "off"}, {TLSOn, "on"}, {TLSMutual, "mtls"}, {KTLSAuto, "auto"}, {KTLSOn, "on"}, {KTLSOff, "off"}} {
		if b, err := tt.v.MarshalText(); err != nil || string(b) != tt.want {
			t.Errorf("MarshalText = %q, %v; want %q", b, err, tt.want)
		}
	}
}
