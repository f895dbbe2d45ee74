package main

// TLS flags of the client commands: --tls, --tls-ca, --tls-cert,
// --tls-key and --tls-server-name, each defaulting to a RINGMQ_TLS*
// environment variable, registered next to --server.

import (
	"crypto/tls"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

// Environment variables that set the TLS flags' defaults.
const (
	tlsEnv           = "RINGMQ_TLS"
	tlsCAEnv         = "RINGMQ_TLS_CA"
	tlsCertEnv       = "RINGMQ_TLS_CERT"
	tlsKeyEnv        = "RINGMQ_TLS_KEY"
	tlsServerNameEnv = "RINGMQ_TLS_SERVER_NAME"
)

// serverFlags are --server and the TLS flags.
type serverFlags struct {
	addr                   string
	sasl                   client.SASL
	tls                    bool
	ca, cert, key, srvName string
}

// serverFlag adds --server (-s), the SASL flags (--user, --password,
// --password-file, --sasl-mechanism) and the TLS flags to fs; their
// defaults come from $RINGMQ_SERVER, $RINGMQ_USER, $RINGMQ_PASSWORD and
// $RINGMQ_TLS* when set.
func (fs *flagSet) serverFlag() *serverFlags {
	s := &serverFlags{}
	def := defaultServer
	if env := strings.TrimSpace(os.Getenv(serverEnv)); env != "" {
		def = env
	}
	fs.StringVar(&s.addr, "server", def, "server address `HOST:PORT`, or a comma-separated list; $"+serverEnv+" sets the default")
	fs.alias("s", "server")
	fs.StringVar(&s.sasl.User, "user", os.Getenv(userEnv), "authenticate as `NAME` with SASL SCRAM (server.sasl = scram); $"+userEnv+" sets the default")
	fs.StringVar(&s.sasl.Password, "password", "", "the user's password (prefer --password-file or $"+passwordEnv+": a flag shows in ps)")
	fs.Func("password-file", "read the user's password from `FILE` (its first line)", func(path string) error {
		p, err := readPasswordFile(path)
		s.sasl.Password = p
		return err
	})
	fs.StringVar(&s.sasl.Mechanism, "sasl-mechanism", proto.MechanismScramSHA256, "SASL mechanism: "+proto.MechanismScramSHA256+" or "+proto.MechanismScramSHA512)
	if s.sasl.Password == "" {
		s.sasl.Password = os.Getenv(passwordEnv)
	}
	on, _ := strconv.ParseBool(os.Getenv(tlsEnv))
	fs.BoolVar(&s.tls, "tls", on, "connect with TLS 1.3 (the server's server.tls); $"+tlsEnv+"=1 sets the default")
	fs.StringVar(&s.ca, "tls-ca", os.Getenv(tlsCAEnv), "PEM `FILE` of the CA certificates that sign the server's (default: the system's); implies --tls; $"+tlsCAEnv)
	fs.StringVar(&s.cert, "tls-cert", os.Getenv(tlsCertEnv), "PEM `FILE` of this client's certificate, for a server with tls = \"mtls\"; implies --tls; $"+tlsCertEnv)
	fs.StringVar(&s.key, "tls-key", os.Getenv(tlsKeyEnv), "PEM `FILE` of the client certificate's private key; $"+tlsKeyEnv)
	fs.StringVar(&s.srvName, "tls-server-name", os.Getenv(tlsServerNameEnv), "`NAME` the server's certificate must carry (default: the host of --server); $"+tlsServerNameEnv)
	return s
}

// tlsConfig is the TLS configuration the flags ask for; nil: plaintext.
func (s serverFlags) tlsConfig() (*tls.Config, error) {
	if !s.tls && s.ca == "" && s.cert == "" && s.key == "" {
		return nil, nil
	}
	cfg, err := client.TLSConfig(client.TLSFiles{CA: s.ca, Cert: s.cert, Key: s.key, ServerName: s.srvName})
	if err != nil {
		return nil, fmt.Errorf("--tls: %w", err)
	}
	return cfg, nil
}

// tlsMessage is the TLS part of err ("TLS: remote error: tls:
// certificate required"), or "" when it has none: a refused certificate
// says more than the lost connection it causes.
func tlsMessage(err error) string {
	s := err.Error()
	i := strings.Index(s, "tls: ")
	if i < 0 {
		return ""
	}
	if j := strings.LastIndex(s[:i], ": "); j >= 0 && strings.HasSuffix(s[:i], "error: ") {
		i = strings.LastIndex(s[:j], ": ") + 2 // keep "remote error: "
	}
	return "TLS: " + s[i:]
}

// options are the client options of a connection to s.
func (s serverFlags) options(clientID string) (client.Options, error) {
	cfg, err := s.tlsConfig()
	return client.Options{ClientID: clientID, SASL: s.sasl, TLS: cfg}, err
}
