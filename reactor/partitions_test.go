package reactor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
	"golang.org/x/sys/unix"
)

// allFds counts this process's open descriptors.
func allFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// shmTempDir is a temporary directory on tmpfs (/dev/shm) when there is
// one: creating hundreds of partitions costs an fsync or three each, which
// is milliseconds on a disk and microseconds there.
func shmTempDir(t *testing.T) string {
	t.Helper()
	var fs unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &fs); err != nil || fs.Type != unix.TMPFS_MAGIC {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("/dev/shm", "ringmq-reactor-test-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// settledFds polls the descriptor count until it stops changing (the
// Store's background worker is still preallocating next segments).
func settledFds(t *testing.T) int {
	t.Helper()
	n := allFds(t)
	deadline := time.Now().Add(30 * time.Second)
	for stable := 0; stable < 5 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond) // a polling period, not synchronization
		if m := allFds(t); m == n {
			stable++
		} else {
			n, stable = m, 0
		}
	}
	return n
}

// TestDescriptorsPerPartition creates 1,000 partitions (250 topics × 4) and
// checks they hold fewer than 2 descriptors each: a partition keeps only
// its active segment's .log open (indexes are written through their
// mappings, prepared next segments and the directory are closed).
func TestDescriptorsPerPartition(t *testing.T) {
	const topics, parts = 250, 4
	srv := startServer(t, testConfig(t, shmTempDir(t)))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	before := settledFds(t)
	start := time.Now()
	for i := range topics {
		ringtest.CreateTopic(t, c, fmt.Sprintf("fd-%d", i), parts)
	}
	created := time.Since(start)
	after := settledFds(t)
	per := float64(after-before) / (topics * parts)
	t.Logf("%d partitions created in %v: %d descriptors before, %d after: %.2f per partition",
		topics*parts, created, before, after, per)
	if per >= 2 {
		t.Fatalf("%.2f descriptors per partition, want < 2", per)
	}
}

// TestFailedCreateRollsBack makes a 400-partition create run out of
// descriptors half way: the create fails with a clear error and leaves no
// partition directory, no partition metric and no topic behind, and the
// same create succeeds once descriptors are available again.
func TestFailedCreateRollsBack(t *testing.T) {
	dir := shmTempDir(t)
	srv := startServer(t, testConfig(t, dir))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	topic := fmt.Sprintf("rollback-%d", time.Now().UnixNano())
	partitionsBefore := metricValue(t, "ringmq_partitions")

	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	low := lim
	low.Cur = uint64(settledFds(t) + 150)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Skipf("cannot lower the descriptor limit: %v", err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer restore()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The create takes ~1 descriptor per partition (and transiently 2-3
	// while each is made); 400 partitions do not fit in 150.
	_, err := c.CreateTopic(ctx, &proto.CreateTopicRequest{Name: topic, Partitions: 400})
	restore()
	if err == nil {
		t.Skipf("the create fitted in the lowered descriptor limit")
	}
	t.Logf("create failed as planned: %v", err)
	if !strings.Contains(err.Error(), "STORAGE_ERROR") || !strings.Contains(err.Error(), "too many open files") {
		t.Errorf("create error %q does not say why", err)
	}
	if ents, err := os.ReadDir(filepath.Join(dir, "topics", topic)); err == nil || !os.IsNotExist(err) {
		t.Errorf("failed create left %d entries in topics/%s (err %v)", len(ents), topic, err)
	}
	if got := metricValue(t, "ringmq_partitions"); got != partitionsBefore {
		t.Errorf("ringmq_partitions = %v after the failed create, was %v", got, partitionsBefore)
	}
	md, err := c.Metadata(ctx, &proto.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != proto.UnknownTopic {
		t.Errorf("metadata after the failed create: %+v", md.Topics)
	}
	ringtest.CreateTopic(t, c, topic, 400)
	if got := metricValue(t, "ringmq_partitions"); got != partitionsBefore+400 {
		t.Errorf("ringmq_partitions = %v after the create, want %v", got, partitionsBefore+400)
	}
}
