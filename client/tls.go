package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
)

// TLSFiles name what a TLS client connection uses, as PEM files.
type TLSFiles struct {
	// CA verifies the server's certificate; empty: the system's roots.
	CA string
	// Cert and Key are the client's certificate and key, for a server
	// with server.tls = "mtls"; both or neither.
	Cert, Key string
	// ServerName is the name the server's certificate must carry; empty:
	// the host of the address dialed.
	ServerName string
	// InsecureSkipVerify accepts any server certificate. For tests only:
	// it lets anyone in the middle read and change the traffic.
	InsecureSkipVerify bool
}

// TLSConfig builds a client TLS configuration (TLS 1.3, as the server
// requires) from f.
func TLSConfig(f TLSFiles) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, ServerName: f.ServerName,
		InsecureSkipVerify: f.InsecureSkipVerify}
	if f.CA != "" {
		pem, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, fmt.Errorf("client: TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client: TLS CA %s: no PEM certificate found", f.CA)
		}
		cfg.RootCAs = pool
	}
	if (f.Cert == "") != (f.Key == "") {
		return nil, errors.New("client: a TLS client certificate needs both its certificate and key files")
	}
	if f.Cert != "" {
		cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("client: TLS client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// handshakeTLS runs the client side of the handshake on nc (closed on
// failure).
func handshakeTLS(ctx context.Context, nc net.Conn, addr string, cfg *tls.Config) (net.Conn, error) {
	if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("client: TLS handshake with %s: %w", addr, err)
	}
	return tc, nil
}
