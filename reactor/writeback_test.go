package reactor

import (
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/stats"
)

// TestWritebackPacing: with storage.writeback_bytes set, the owner starts
// the writeback of each step of a partition's appended bytes through the
// ring (sync_file_range; ringmq_writeback_bytes_total counts it), in whole
// steps and never more than was appended, and the partition keeps taking
// appends (a completed writeback fences nothing).
func TestWritebackPacing(t *testing.T) {
	const step = 16 << 10
	cfg := testConfig(t, t.TempDir())
	cfg.Storage.WritebackBytes = step
	cfg.Storage.FlushInterval = time.Hour // no flush: writeback is the only thing writing back
	srv := startServer(t, cfg)
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "paced", 1)
	before := stats.WritebackBytes()
	produceRecords(t, c, "paced", 1, 0, 20000, 500, 1)
	end := ringtest.ListOffset(t, c, "paced", 0, -1)
	if end != 20000 {
		t.Fatalf("log end %d, want 20000", end)
	}
	appended := srv.topics.Load().byName["paced"].shared[0].bytes.Load()
	var got uint64
	waitFor(t, "writeback of the appended steps", 10*time.Second, func() bool {
		got = stats.WritebackBytes() - before
		return int64(got) >= appended/step*step-step
	})
	if got%step != 0 || int64(got) > appended {
		t.Fatalf("%d bytes written back for %d appended: want whole %d-byte steps, at most what was appended", got, appended, step)
	}
	produceRecords(t, c, "paced", 1, 0, 1000, 500, 1) // not fenced
}
