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
// loopback without TLS or without authentication: ringmq has no
// authorization yet, so whoever reaches such a port (or, with TLS on but
// no client certificates, completes a handshake) has full access.
func warnExposedListeners(logger *slog.Logger, s config.ServerConfig) {
	switch {
	case isLoopback(s.Listen) || s.TLS == config.TLSMutual:
	case s.TLS == config.TLSOn:
		logger.Warn("client listener is not on loopback and authenticates no client (server.tls = \"on\"): "+
			"anyone who reaches the port can read, write and delete every topic and group; "+
			"server.tls = \"mtls\" admits only holders of a client certificate",
			"listen", s.Listen)
	default:
		logger.Warn("client listener is not on loopback and has no TLS or authentication: "+
			"anyone who reaches the port can read, write and delete every topic and group",
			"listen", s.Listen)
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
