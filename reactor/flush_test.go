package reactor

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/storage"
)

// With flush=interval the reactor fsyncs dirty partitions every
// flush_interval and the partition's recovery point follows: after the
// writes stop, its checkpoint on disk reaches the log end.
func TestIntervalFlushAdvancesTheRecoveryPoint(t *testing.T) {
	dataDir := t.TempDir()
	cfg := testConfig(t, dataDir)
	cfg.Storage.FlushInterval = 20 * time.Millisecond
	srv := startServer(t, cfg)
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "flushed", 1)
	produceRecords(t, c, "flushed", 1, 0, 5000, 500, 1)
	end := ringtest.ListOffset(t, c, "flushed", 0, -1)
	path := filepath.Join(dataDir, "topics", "flushed", "0", "recovery-point")
	var last storage.Checkpoint
	waitFor(t, "the recovery point to reach the log end", 20*time.Second, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		cp, _, err := storage.ParseCheckpoint(b)
		if err != nil {
			t.Fatalf("checkpoint: %v", err)
		}
		last = cp
		return cp.RecoveryPoint == end
	})
	if last.Clean {
		t.Fatal("a running server wrote a clean checkpoint")
	}
}
