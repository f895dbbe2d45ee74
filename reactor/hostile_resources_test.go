package reactor

import (
	"math/rand/v2"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/internal/ringtest"
)

// Hostile clients that try to make the server hold memory or connections,
// run by TestHostileInput: the limits they meet are the ones set here.
const (
	hostileConnBudget   = 32 << 20
	hostileServerBudget = 128 << 20
	// hostileRSSBudget bounds the test process's anonymous memory (the
	// server's heap and buffers, the clients' — a few hundred MiB of
	// responses and frames —, the Go runtime's) while the clients run,
	// twice that under the race detector. Without the bounds, the unread
	// cold fetches alone asked for 8 connections × 100 fetches × 2 × 8 MiB.
	hostileRSSBudget = 640 << 20
)

func rssBudget() int64 {
	if raceEnabled {
		return 2 * hostileRSSBudget
	}
	return hostileRSSBudget
}

func hostileConfig(t *testing.T, dataDir string) (cfg config.Config) {
	cfg = testConfig(t, dataDir)
	cfg.Server.ConnMaxUnansweredBytes = hostileConnBudget
	cfg.Server.MaxBufferedBytes = hostileServerBudget
	cfg.Server.FetchMaxWait = 2 * time.Second
	cfg.Server.FrameTimeout = 2 * time.Second
	cfg.Server.IdleTimeout = 4 * time.Second
	return cfg
}

// memPeaks samples the process's anonymous RSS, the Go heap and the
// server's buffered bytes until stopped.
type memPeaks struct {
	rssAnon, heap, buffered int64
	stopCh                  chan struct{}
	done                    chan struct{}
}

func watchMemory(srv *Server) *memPeaks {
	m := &memPeaks{stopCh: make(chan struct{}), done: make(chan struct{})}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		defer close(m.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			m.rssAnon = max(m.rssAnon, rssAnon())
			metrics.Read(sample)
			m.heap = max(m.heap, int64(sample[0].Value.Uint64()))
			m.buffered = max(m.buffered, srv.buffered.Load())
			select {
			case <-m.stopCh:
				return
			case <-tick.C:
			}
		}
	}()
	return m
}

func (m *memPeaks) stop() {
	close(m.stopCh)
	<-m.done
}

// rssAnon is the process's resident anonymous memory (file mappings, such
// as the segments' mmaps, are not counted).
func rssAnon() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "RssAnon:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// hostileResources runs ringtest.RunHostileClients against srv and logs
// what the server did about them.
func hostileResources(t *testing.T, srv *Server, dataDir string, rng *rand.Rand) {
	pauses, timeouts := metricValue(t, "ringmq_backpressure_pauses_total"), metricValue(t, "ringmq_connections_timed_out_total")
	ringtest.RunHostileClients(t, srv.Addr(), dataDir, ringtest.HostileLimits{MaxFrameBytes: srv.cfg.Server.MaxFrameBytes,
		FetchMaxBytes: srv.cfg.Server.FetchMaxBytes, IdleTimeout: srv.cfg.Server.IdleTimeout}, rng)
	t.Logf("hostile clients: %v connections paused, %v closed by frame or idle timeout",
		metricValue(t, "ringmq_backpressure_pauses_total")-pauses,
		metricValue(t, "ringmq_connections_timed_out_total")-timeouts)
}
