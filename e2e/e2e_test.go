// Package e2e runs the built ringmq binary as a subprocess: crash and
// restart tests, and the CLI.
package e2e

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ringmq-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "ringmq")
	build := exec.Command("go", "build", "-o", binPath, "github.com/ringmq/ringmq")
	build.Env = append(os.Environ(), "GOFLAGS=-ldflags=-checklinkname=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build ringmq:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is one ringmq process.
type server struct {
	cmd     *exec.Cmd
	addr    string
	metrics string // metrics listener address, or "off"
	exited  chan error
	logs    *syncBuilder
}

// syncBuilder is a strings.Builder that a test may read while the server's
// log is still being written to it.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) WriteString(str string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(str)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listenRE = regexp.MustCompile(`msg=serving listen=(\S+) metrics=(\S+)`)

// writeConfig writes a config file for a test server on dataDir.
func writeConfig(t testing.TB, dataDir string) string {
	path := filepath.Join(t.TempDir(), "config.toml")
	cfg := fmt.Sprintf(`[server]
listen = "127.0.0.1:0"
metrics_listen = ""
shutdown_timeout = "20s"

[reactor]
cores = 2
recv_buffers = 64
pin_threads = false

[storage]
data_dir = %q
segment_bytes = 4194304
flush_interval = "100ms"
`, dataDir)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startServer runs `ringmq serve` and waits for its listen address.
func startServer(t testing.TB, configPath string) *server {
	t.Helper()
	return startServerWithin(t, configPath, 60*time.Second)
}

// startServerWithin is startServer for a server that may take up to
// timeout to open its partitions.
func startServerWithin(t testing.TB, configPath string, timeout time.Duration) *server {
	t.Helper()
	cmd := exec.Command(binPath, "serve", "--config", configPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, exited: make(chan error, 1), logs: &syncBuilder{}}
	addrCh := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.logs.WriteString(line + "\n")
			if m := listenRE.FindStringSubmatch(line); m != nil {
				addrCh <- [2]string{m[1], m[2]}
			}
		}
		io.Copy(io.Discard, stderr)
		s.exited <- cmd.Wait()
	}()
	select {
	case addrs := <-addrCh:
		s.addr, s.metrics = addrs[0], addrs[1]
	case err := <-s.exited:
		t.Fatalf("server exited before serving: %v\n%s", err, s.logs.String())
	case <-time.After(timeout):
		cmd.Process.Kill()
		t.Fatalf("server did not start within %v\n%s", timeout, s.logs.String())
	}
	t.Cleanup(func() { s.kill() })
	return s
}

func (s *server) kill() {
	if s.cmd.ProcessState == nil {
		s.cmd.Process.Signal(syscall.SIGKILL)
	}
}

// stop sends sig and waits for the exit status.
func (s *server) stop(t testing.TB, sig syscall.Signal) error {
	t.Helper()
	s.cmd.Process.Signal(sig)
	select {
	case err := <-s.exited:
		return err
	case <-time.After(60 * time.Second):
		s.cmd.Process.Kill()
		t.Fatalf("server ignored %v", sig)
		return nil
	}
}
