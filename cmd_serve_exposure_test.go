package main

import (
	"bytes"
	"log/slog"
	"strings"
	"syscall"
	"testing"

	"github.com/ringmq/ringmq/config"
)

func TestIsLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:9400", true},
		{"127.1.2.3:9400", true},
		{"[::1]:9400", true},
		{"localhost:9400", true},
		{"LocalHost:9400", true},
		{"0.0.0.0:9400", false},
		{"[::]:9400", false},
		{":9400", false},
		{"192.168.1.20:9400", false},
		{"10.0.0.1:9400", false},
		{"[fe80::1]:9400", false},
		{"broker1.example.com:9400", false},
		{"127.0.0.1", false}, // not host:port: cannot tell, so warn
	} {
		if got := isLoopback(tc.addr); got != tc.want {
			t.Errorf("isLoopback(%q) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

func TestWarnExposedListeners(t *testing.T) {
	const clientWarn = "client listener is not on loopback"
	const metricsWarn = "metrics listener is not on loopback"
	for _, tc := range []struct {
		name   string
		server config.ServerConfig
		want   []string // substrings of the log, in order
		absent []string
	}{
		{"defaults", config.ServerConfig{Listen: "127.0.0.1:9400", MetricsListen: "127.0.0.1:9401"},
			nil, []string{clientWarn, metricsWarn}},
		{"client on every interface", config.ServerConfig{Listen: "0.0.0.0:9400", MetricsListen: "[::1]:9401"},
			[]string{"level=WARN", clientWarn, "read, write and delete", "listen=0.0.0.0:9400"}, []string{metricsWarn}},
		{"metrics on a LAN address", config.ServerConfig{Listen: "localhost:9400", MetricsListen: "192.168.1.20:9401"},
			[]string{"level=WARN", metricsWarn, "metrics_listen=192.168.1.20:9401"}, []string{clientWarn, "profiler"}},
		{"metrics with pprof", config.ServerConfig{Listen: "[::]:9400", MetricsListen: ":9401", Pprof: true},
			[]string{clientWarn, metricsWarn, "Go profiler"}, nil},
		{"metrics off", config.ServerConfig{Listen: "127.0.0.1:9400", MetricsListen: ""},
			nil, []string{clientWarn, metricsWarn}},
		{"SASL without authorization", config.ServerConfig{Listen: "0.0.0.0:9400", SASL: config.SASLScram},
			[]string{clientWarn, "any authenticated user can read, write and delete"}, []string{"anyone"}},
		{"SASL and authorization", config.ServerConfig{Listen: "0.0.0.0:9400", SASL: config.SASLScram, Authorization: config.On},
			[]string{clientWarn, "clear text"}, []string{"read, write and delete"}},
		{"client with TLS, no client certificates", config.ServerConfig{Listen: "0.0.0.0:9400", TLS: config.TLSOn},
			[]string{clientWarn, "authenticates no client", "mtls"}, []string{"no TLS"}},
		{"client with mutual TLS, no authorization", config.ServerConfig{Listen: "0.0.0.0:9400", TLS: config.TLSMutual},
			[]string{clientWarn, "any authenticated user can read, write and delete"}, []string{"anyone", "clear text"}},
		{"client with mutual TLS and authorization", config.ServerConfig{Listen: "0.0.0.0:9400", TLS: config.TLSMutual, Authorization: config.On},
			nil, []string{clientWarn}},
		{"SASL over TLS with authorization", config.ServerConfig{Listen: "0.0.0.0:9400", TLS: config.TLSOn, SASL: config.SASLScram, Authorization: config.On},
			nil, []string{clientWarn}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			warnExposedListeners(slog.New(slog.NewTextHandler(&buf, nil)), tc.server)
			log := buf.String()
			rest := log
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("log lacks %q (in order):\n%s", w, log)
				}
				rest = rest[i+len(w):]
			}
			for _, a := range tc.absent {
				if strings.Contains(log, a) {
					t.Errorf("log has %q:\n%s", a, log)
				}
			}
		})
	}
}

// serve itself logs the warning at start. The fake broker binds nothing,
// so the address 0.0.0.0 is never listened on.
func TestServeWarnsOnExposedListener(t *testing.T) {
	for _, tc := range []struct {
		args []string
		warn bool
	}{
		{nil, false},
		{[]string{"--listen", "0.0.0.0:9400"}, true},
	} {
		r := startServe(t, newFakeBroker(), tc.args...)
		r.awaitReady(t)
		r.signals <- syscall.SIGTERM
		if err := r.wait(t); err != nil {
			t.Fatalf("runServe %v = %v", tc.args, err)
		}
		got := strings.Contains(r.log.String(), "client listener is not on loopback")
		if got != tc.warn {
			t.Errorf("serve %v: warning logged = %v, want %v; log:\n%s", tc.args, got, tc.warn, r.log)
		}
	}
}
