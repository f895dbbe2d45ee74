package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

// hostileServerRSSBudget bounds the anonymous memory of the server process
// while the hostile clients run: max_buffered_bytes (128 MiB here) plus
// the buffer pools, receive buffers, decoded requests and the Go
// runtime's headroom.
const hostileServerRSSBudget = 448 << 20

// The hostile clients of ringtest against the real binary, measuring the
// process's memory: it stays under a budget, the server still answers
// afterwards, and a SIGTERM still stops it cleanly.
func TestHostileClientsServerMemory(t *testing.T) {
	dataDir := t.TempDir()
	path := writeConfig(t, dataDir)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(path)
	limits := `
conn_max_unanswered_bytes = 33554432
max_buffered_bytes = 134217728
fetch_max_wait = "2s"
frame_timeout = "2s"
idle_timeout = "4s"
`
	f.WriteAt([]byte(strings.Replace(string(cfg), "[server]\n", "[server]"+limits, 1)), 0)
	f.Close()
	srv := startServer(t, path)
	pid := srv.cmd.Process.Pid
	baseAnon := procStatusBytes(pid, "RssAnon:")

	var peakAnon int64
	var mu sync.Mutex
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			v := procStatusBytes(pid, "RssAnon:")
			mu.Lock()
			peakAnon = max(peakAnon, v)
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	ringtest.RunHostileClients(t, srv.addr, dataDir, ringtest.HostileLimits{MaxFrameBytes: 16 << 20,
		FetchMaxBytes: 64 << 20, IdleTimeout: 4 * time.Second}, rand.New(rand.NewPCG(uint64(seed), 0)))
	close(stop)
	<-done

	c := ringtest.Dial(t, srv.addr, client.Options{})
	ringtest.CreateTopic(t, c, "after", 1)
	var b proto.BatchBuilder
	b.Reset(nil)
	b.Append(1, nil, []byte("still-alive"), nil)
	if resp, err := c.Produce(ringtest.Ctx(t), &proto.ProduceRequest{Acks: 1, Topics: []proto.ProduceTopic{{
		Name: []byte("after"), Partitions: []proto.ProducePartition{{Records: b.Finish()}}}}}); err != nil ||
		resp.Topics[0].Partitions[0].Error != proto.None {
		t.Fatalf("produce after the hostile clients: %v %+v", err, resp)
	}
	if got := ringtest.ReadPartition(t, c, "after", 0); len(got) != 1 || string(got[0]) != "still-alive" {
		t.Fatalf("read back %q", got)
	}
	c.Close()
	t.Logf("server anonymous RSS: %d MiB at start, peak %d MiB (budget %d MiB); peak RSS with file pages (VmHWM) %d MiB",
		baseAnon>>20, peakAnon>>20, hostileServerRSSBudget>>20, procStatusBytes(pid, "VmHWM:")>>20)
	if peakAnon > hostileServerRSSBudget {
		t.Errorf("server anonymous RSS peaked at %d MiB, over the %d MiB budget", peakAnon>>20, hostileServerRSSBudget>>20)
	}
	if err := srv.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM after the hostile clients: %v\n%s", err, srv.logs.String())
	}
	if _, err := os.Stat(filepath.Join(dataDir, ".clean-shutdown")); err != nil {
		t.Errorf("no clean-shutdown marker: %v", err)
	}
}

// procStatusBytes reads a "kB" field of /proc/<pid>/status in bytes.
func procStatusBytes(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == field {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
