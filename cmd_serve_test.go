package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/status"
)

// Flag, then file, then built-in default.
func TestServeConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ringmq.toml")
	err := os.WriteFile(file, []byte(`
[server]
listen = "127.0.0.1:7000"
metrics_listen = "127.0.0.1:7001"
[storage]
data_dir = "from-file"
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[storage]\nflush = \"sometimes\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.toml")
	def := config.Default()

	tests := []struct {
		name          string
		args          []string
		listen        string
		metrics       string
		dataDir       string
		usedDefaults  bool
		err           string // prefix of the error; "" for success
		errNotExist   bool
		defaultConfig string // the --config default; missing unless set
	}{
		{name: "no file, no flags", listen: def.Server.Listen, metrics: def.Server.MetricsListen,
			dataDir: def.Storage.DataDir, usedDefaults: true},
		{name: "no file, flags", args: []string{"--listen", "127.0.0.1:0", "--data-dir", "d"},
			listen: "127.0.0.1:0", metrics: def.Server.MetricsListen, dataDir: "d", usedDefaults: true},
		{name: "file", args: []string{"--config", file},
			listen: "127.0.0.1:7000", metrics: "127.0.0.1:7001", dataDir: "from-file"},
		{name: "default path present", defaultConfig: file,
			listen: "127.0.0.1:7000", metrics: "127.0.0.1:7001", dataDir: "from-file"},
		{name: "flag over file", args: []string{"-config", file, "-listen", ":9"},
			listen: ":9", metrics: "127.0.0.1:7001", dataDir: "from-file"},
		{name: "all flags over file", args: []string{"--config=" + file, "--data-dir=x", "--listen=:1", "--metrics-listen=:2"},
			listen: ":1", metrics: ":2", dataDir: "x"},
		{name: "empty flag disables metrics", args: []string{"--config", file, "--metrics-listen", ""},
			listen: "127.0.0.1:7000", metrics: "", dataDir: "from-file"},
		{name: "explicit missing file", args: []string{"--config", missing},
			err: "open " + missing, errNotExist: true},
		{name: "bad file", args: []string{"--config", bad},
			err: bad + `: storage.flush = "sometimes": want "interval" or "sync"`},
		{name: "bad listen flag", args: []string{"--listen", "nohost"},
			err: `--listen "nohost": want host:port`},
		{name: "empty data dir flag", args: []string{"--config", file, "--data-dir", ""},
			err: `--data-dir "": must not be empty`},
		{name: "unknown flag", args: []string{"--lissen", ":1"},
			err: "flag provided but not defined: -lissen"},
		{name: "stray argument", args: []string{"--listen", ":1", "extra"},
			err: `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defaultPath := missing
			if tt.defaultConfig != "" {
				defaultPath = tt.defaultConfig
			}
			opts, err := parseServeFlags(tt.args, defaultPath, io.Discard)
			var cfg config.Config
			var usedDefaults bool
			if err == nil {
				cfg, usedDefaults, err = loadServeConfig(opts)
			}
			if tt.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
					t.Fatalf("err = %v, want prefix %q", err, tt.err)
				}
				if tt.errNotExist != errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("errors.Is(%v, fs.ErrNotExist) = %v", err, !tt.errNotExist)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Server.Listen != tt.listen || cfg.Server.MetricsListen != tt.metrics ||
				cfg.Storage.DataDir != tt.dataDir || usedDefaults != tt.usedDefaults {
				t.Fatalf("listen %q metrics %q data_dir %q defaults %v; want %q %q %q %v",
					cfg.Server.Listen, cfg.Server.MetricsListen, cfg.Storage.DataDir, usedDefaults,
					tt.listen, tt.metrics, tt.dataDir, tt.usedDefaults)
			}
		})
	}
}

func TestServeHelp(t *testing.T) {
	var out bytes.Buffer
	_, err := parseServeFlags([]string{"-h"}, "config.toml", &out)
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "-metrics-listen") {
		t.Fatalf("-h: err %v, output %q", err, out.String())
	}
}

// fakeBroker stands in for reactor.Server.
type fakeBroker struct {
	startErr    error
	shutdownErr error
	block       chan struct{} // Shutdown waits on it when not nil
	health      error
	failed      chan struct{} // closed to simulate a dead reactor

	mu           sync.Mutex
	started      bool
	shutdowns    int
	deadlineLeft time.Duration // at the Shutdown call
	shutdownCh   chan struct{} // closed when Shutdown is called
}

func newFakeBroker() *fakeBroker {
	return &fakeBroker{shutdownCh: make(chan struct{}), failed: make(chan struct{})}
}

func (f *fakeBroker) Failed() <-chan struct{} { return f.failed }

func (f *fakeBroker) Start() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = true
	return f.startErr
}

func (f *fakeBroker) Addr() string { return "127.0.0.1:9400" }

func (f *fakeBroker) Status() status.Snapshot { return status.Snapshot{} }

func (f *fakeBroker) Healthy() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.health
}

func (f *fakeBroker) Ready() error { return f.Healthy() }

func (f *fakeBroker) Shutdown(ctx context.Context) error {
	f.mu.Lock()
	f.shutdowns++
	if d, ok := ctx.Deadline(); ok {
		f.deadlineLeft = time.Until(d)
	}
	if f.shutdowns == 1 {
		close(f.shutdownCh)
	}
	f.mu.Unlock()
	if f.block != nil {
		<-f.block
	}
	return f.shutdownErr
}

type serveRun struct {
	signals chan os.Signal
	ready   chan string // the metrics address
	done    chan error
	log     *syncBuffer
}

// startServe runs runServe on its own goroutine with fake broker b.
func startServe(t *testing.T, b *fakeBroker, args ...string) *serveRun {
	t.Helper()
	r := &serveRun{
		signals: make(chan os.Signal, 2),
		ready:   make(chan string, 1),
		done:    make(chan error, 1),
		log:     &syncBuffer{},
	}
	env := serveEnv{
		newBroker: func(config.Config, *slog.Logger) (broker, error) { return b, nil },
		signals:   r.signals,
		stdout:    io.Discard,
		stderr:    r.log,
		ready:     func(_ broker, metricsAddr string) { r.ready <- metricsAddr },
	}
	file := filepath.Join(t.TempDir(), "ringmq.toml")
	if err := os.WriteFile(file, []byte("[server]\nshutdown_timeout = \"10s\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args = append([]string{"--config", file, "--data-dir", t.TempDir(),
		"--metrics-listen", "127.0.0.1:0"}, args...)
	go func() { r.done <- runServe(args, env) }()
	return r
}

// awaitReady waits until runServe serves and returns the metrics address.
func (r *serveRun) awaitReady(t *testing.T) string {
	t.Helper()
	select {
	case addr := <-r.ready:
		return addr
	case err := <-r.done:
		t.Fatalf("runServe returned before serving: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatalf("runServe not serving after 10s; log:\n%s", r.log)
	}
	return ""
}

func (r *serveRun) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("runServe did not return; log:\n%s", r.log)
		return nil
	}
}

func TestServeCleanShutdown(t *testing.T) {
	b := newFakeBroker()
	r := startServe(t, b)
	metricsAddr := r.awaitReady(t)
	if !b.started {
		t.Fatal("ready before Start")
	}
	if code, body := httpGet(t, "http://"+metricsAddr+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	b.mu.Lock()
	b.health = errors.New("reactor 0 stalled")
	b.mu.Unlock()
	if code, body := httpGet(t, "http://"+metricsAddr+"/healthz"); code != 503 || body != "reactor 0 stalled\n" {
		t.Fatalf("/healthz = %d %q, want the broker's error", code, body)
	}

	r.signals <- syscall.SIGTERM
	if err := r.wait(t); err != nil {
		t.Fatalf("runServe after SIGTERM = %v, want nil", err)
	}
	if b.shutdowns != 1 || b.deadlineLeft <= 0 || b.deadlineLeft > 10*time.Second {
		t.Fatalf("Shutdown called %d times with %v left, want once with at most shutdown_timeout (10s)",
			b.shutdowns, b.deadlineLeft)
	}
	if _, err := net.Dial("tcp", metricsAddr); err == nil {
		t.Fatal("metrics server still listening after serve returned")
	}
	for _, want := range []string{"msg=serving", "msg=\"shutting down\" signal=terminated", "msg=stopped"} {
		if !strings.Contains(r.log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, r.log)
		}
	}
}

func TestServeSecondSignalExitsAtOnce(t *testing.T) {
	b := newFakeBroker()
	b.block = make(chan struct{})
	defer close(b.block)
	r := startServe(t, b)
	r.awaitReady(t)
	r.signals <- syscall.SIGTERM
	select {
	case <-b.shutdownCh: // shutdown is under way and stuck
	case <-time.After(10 * time.Second):
		t.Fatal("no Shutdown call 10s after SIGTERM")
	}
	r.signals <- syscall.SIGINT
	err := r.wait(t)
	if err == nil || err.Error() != "interrupt during shutdown: exiting without a clean shutdown" {
		t.Fatalf("runServe after a second signal = %v", err)
	}
}

// A server that fails on its own (a reactor died) is shut down and serve
// returns the failure, so the process exits non-zero.
func TestServeExitsWhenTheServerFails(t *testing.T) {
	b := newFakeBroker()
	r := startServe(t, b)
	r.awaitReady(t)
	b.mu.Lock()
	b.health = errors.New("reactor 1: ring: closed")
	b.mu.Unlock()
	close(b.failed)
	err := r.wait(t)
	if err == nil || err.Error() != "server failed: reactor 1: ring: closed" {
		t.Fatalf("runServe after a failure = %v", err)
	}
	if b.shutdowns != 1 {
		t.Fatalf("Shutdown called %d times, want once", b.shutdowns)
	}
}

func TestServeShutdownError(t *testing.T) {
	b := newFakeBroker()
	b.shutdownErr = context.DeadlineExceeded
	r := startServe(t, b, "--metrics-listen", "")
	if addr := r.awaitReady(t); addr != "off" {
		t.Fatalf("metrics address %q with --metrics-listen \"\", want off", addr)
	}
	r.signals <- syscall.SIGINT
	if err := r.wait(t); err == nil || err.Error() != "shutdown: context deadline exceeded" {
		t.Fatalf("runServe = %v, want the shutdown error", err)
	}
}

func TestServeStartFailures(t *testing.T) {
	b := newFakeBroker()
	b.startErr = errors.New("bind 127.0.0.1:9400: address in use")
	if err := startServe(t, b).wait(t); err == nil || err.Error() != "start: bind 127.0.0.1:9400: address in use" {
		t.Fatalf("Start failure: runServe = %v", err)
	}
	if b.shutdowns != 1 {
		t.Fatalf("Shutdown called %d times after a failed Start, want 1", b.shutdowns)
	}

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	b = newFakeBroker()
	b.shutdownErr = errors.New("flush failed")
	err = startServe(t, b, "--metrics-listen", busy.Addr().String()).wait(t)
	if err == nil || !strings.HasPrefix(err.Error(), "metrics listener: ") || !strings.HasSuffix(err.Error(), "; shutdown: flush failed") {
		t.Fatalf("busy metrics port: runServe = %v", err)
	}

	env := serveEnv{
		newBroker: func(config.Config, *slog.Logger) (broker, error) { return nil, errors.New("lock data dir: held") },
		stdout:    io.Discard,
		stderr:    io.Discard,
	}
	empty := filepath.Join(t.TempDir(), "empty.toml")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := runServe([]string{"--config", empty}, env); err == nil || err.Error() != "lock data dir: held" {
		t.Fatalf("newBroker failure: runServe = %v", err)
	}
}

func TestNewLoggerFormats(t *testing.T) {
	var buf bytes.Buffer
	newLogger(config.LogConfig{Level: slog.LevelWarn, Format: config.LogJSON}, &buf).Info("hidden")
	newLogger(config.LogConfig{Level: slog.LevelWarn, Format: config.LogJSON}, &buf).Warn("shown")
	if got := buf.String(); strings.Contains(got, "hidden") || !strings.Contains(got, `"msg":"shown"`) {
		t.Fatalf("json logger wrote %q", got)
	}
	buf.Reset()
	newLogger(config.LogConfig{Level: slog.LevelInfo, Format: config.LogText}, &buf).Info("text")
	if !strings.Contains(buf.String(), "msg=text") {
		t.Fatalf("text logger wrote %q", buf.String())
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// --node-id and --peers override [cluster]; without either, the defaults
// make a one-node cluster.
func TestServeClusterFlags(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.toml")
	tests := []struct {
		args   []string
		nodeID uint64
		peers  []config.Peer
		err    string
	}{
		{args: nil, nodeID: 1},
		{args: []string{"--node-id", "2", "--peers", "1@127.0.0.1:9400,2@127.0.0.1:9410,3@127.0.0.1:9420"},
			nodeID: 2, peers: []config.Peer{{ID: 1, Addr: "127.0.0.1:9400"}, {ID: 2, Addr: "127.0.0.1:9410"},
				{ID: 3, Addr: "127.0.0.1:9420"}}},
		{args: []string{"--node-id", "4", "--peers", "1@127.0.0.1:9400,2@127.0.0.1:9410"},
			err: "--node-id 4: must be one of the ids in cluster.peers"},
		{args: []string{"--peers", "1@127.0.0.1:9400,1@127.0.0.1:9410"},
			err: `--peers "1@127.0.0.1:9410": node id 1 appears twice`},
		{args: []string{"--peers", "1@127.0.0.1"},
			err: `--peers "1@127.0.0.1": address "127.0.0.1": want HOST:PORT`},
		{args: []string{"--node-id", "0"}, err: "--node-id 0: must be at least 1"},
		{args: []string{"--node-id", "x"}, err: `invalid value "x" for flag -node-id`},
	}
	for _, tt := range tests {
		opts, err := parseServeFlags(tt.args, missing, io.Discard)
		var cfg config.Config
		if err == nil {
			cfg, _, err = loadServeConfig(opts)
		}
		if tt.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
				t.Errorf("%q: err = %v, want prefix %q", tt.args, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if cfg.Cluster.NodeID != tt.nodeID || !slices.Equal(cfg.Cluster.Peers, tt.peers) {
			t.Errorf("%q: node %d peers %v; want %d %v", tt.args, cfg.Cluster.NodeID, cfg.Cluster.Peers,
				tt.nodeID, tt.peers)
		}
	}
}
