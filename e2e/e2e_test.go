// Package e2e runs the built ringmq binary as a subprocess: crash and
// restart tests, and the CLI.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
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
	cmd    *exec.Cmd
	addr   string
	exited chan error
	logs   *strings.Builder
}

var listenRE = regexp.MustCompile(`msg=serving listen=(\S+)`)

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
	cmd := exec.Command(binPath, "serve", "--config", configPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, exited: make(chan error, 1), logs: &strings.Builder{}}
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.logs.WriteString(line + "\n")
			if m := listenRE.FindStringSubmatch(line); m != nil {
				addrCh <- m[1]
			}
		}
		io.Copy(io.Discard, stderr)
		s.exited <- cmd.Wait()
	}()
	select {
	case s.addr = <-addrCh:
	case err := <-s.exited:
		t.Fatalf("server exited before serving: %v\n%s", err, s.logs.String())
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("server did not start in time")
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

func dial(t testing.TB, addr string) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, client.Options{})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func createTopic(t testing.TB, c *client.Conn, name string, partitions uint32, kv ...string) {
	t.Helper()
	req := &proto.CreateTopicRequest{Name: name, Partitions: partitions}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Configs = append(req.Configs, proto.Config{Key: kv[i], Value: kv[i+1]})
	}
	resp, err := c.CreateTopic(ctxT(t), req)
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	if resp.Error != proto.None {
		t.Fatalf("create topic: %v %s", resp.Error, resp.Message)
	}
}

// readPartition returns every record value of a partition, checking CRCs
// and offset continuity.
func readPartition(t testing.TB, c *client.Conn, topic string, p uint32) [][]byte {
	t.Helper()
	lo, err := c.ListOffsets(ctxT(t), &proto.ListOffsetsRequest{Topics: []proto.ListOffsetsTopic{{
		Name: []byte(topic), Partitions: []proto.ListOffsetsPartition{{Partition: p, Timestamp: -1}}}}})
	if err != nil {
		t.Fatal(err)
	}
	end := lo.Topics[0].Partitions[0].Offset
	var out [][]byte
	next := uint64(0)
	for next < end {
		resp, err := c.Fetch(ctxT(t), &proto.FetchRequest{MaxBytes: 4 << 20, Topics: []proto.FetchTopic{{Name: []byte(topic),
			Partitions: []proto.FetchPartition{{Partition: p, Offset: next, PartitionMaxBytes: 4 << 20}}}}})
		if err != nil {
			t.Fatal(err)
		}
		fp := resp.Topics[0].Partitions[0]
		if fp.Error != proto.None || len(fp.Records) == 0 {
			t.Fatalf("fetch %s/%d@%d (end %d): %v, %d bytes", topic, p, next, end, fp.Error, len(fp.Records))
		}
		b := fp.Records
		for len(b) > 0 {
			h, rest, err := proto.ValidateBatch(b)
			if err != nil {
				t.Fatalf("%s/%d: corrupt batch served at offset ≥ %d: %v", topic, p, next, err)
			}
			it, err := proto.NewRecordIter(b[:h.Size()])
			if err != nil {
				t.Fatal(err)
			}
			for it.Next() {
				r := it.Record()
				if r.Offset < next {
					continue
				}
				if r.Offset != next {
					t.Fatalf("%s/%d: offset gap at %d (got %d)", topic, p, next, r.Offset)
				}
				out = append(out, append([]byte(nil), r.Value...))
				next++
			}
			if err := it.Err(); err != nil {
				t.Fatal(err)
			}
			b = rest
		}
	}
	return out
}
