package main

import (
	"log/slog"
	"net"
	"strings"

	"github.com/ringmq/ringmq/config"
)

// isLoopback reports whether a listener at addr (host:port) is reachable
// only from this machine: a loopback IP (127.0.0.0/8, ::1) or the name
// localhost. An empty host, 0.0.0.0 and :: bind every interface; any other
// name is not resolved here and counts as reachable from outside.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// warnExposedListeners logs a warning for each listener of s bound beyond
// loopback without the protections that make it safe: encryption (TLS),
// client authentication (SASL SCRAM or mutual TLS) and authorization.
// Without authentication whoever reaches the port has full access; with it
// but without authorization, every authenticated client has.
func warnExposedListeners(logger *slog.Logger, s config.ServerConfig) {
	if !isLoopback(s.Listen) {
		authenticated := s.SASL == config.SASLScram || s.TLS == config.TLSMutual
		encrypted := s.TLS == config.TLSOn || s.TLS == config.TLSMutual
		switch {
		case !authenticated && !encrypted:
			logger.Warn("client listener is not on loopback and has no TLS or authentication: "+
				"anyone who reaches the port can read, write and delete every topic and group",
				"listen", s.Listen)
		case !authenticated:
			logger.Warn("client listener is not on loopback and authenticates no client (server.tls = \"on\", server.sasl = \"off\"): "+
				"anyone who reaches the port can read, write and delete every topic and group; "+
				"server.tls = \"mtls\" or server.sasl = \"scram\" authenticate clients",
				"listen", s.Listen)
		case s.Authorization != config.On:
			logger.Warn("client listener is not on loopback and authorization is off "+
				"(server.authorization = off): any authenticated user can read, write and delete every topic and group",
				"listen", s.Listen)
		case !encrypted:
			logger.Warn("client listener is not on loopback and has no TLS: "+
				"the SCRAM exchange never sends a password, but the data travels in clear text",
				"listen", s.Listen)
		}
	}
	if s.MetricsListen != "" && !isLoopback(s.MetricsListen) {
		msg := "metrics listener is not on loopback and has no TLS or authentication yet: " +
			"anyone who reaches the port can read the metrics and the status page"
		if s.Pprof {
			msg += ", and the Go profiler (server.pprof = true)"
		}
		logger.Warn(msg, "metrics_listen", s.MetricsListen)
	}
}
