package storage

import (
	"math/rand/v2"
	"os"
	"testing"

	"github.com/ringmq/ringmq/proto"
	"golang.org/x/sys/unix"
)

func TestColdViewOnlyForEvictedData(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1 << 20
	_, l := createTestLog(t, cfg)
	d := &SyncDriver{}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 64; i++ {
		mustAppend(t, d, l, randomBatch(rng, 20, 200, 1000))
	}
	if _, ok := l.ColdView(0, 1<<20); ok {
		t.Fatal("freshly written data reported cold")
	}
	f, err := os.Open(l.segs[0].path(".log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	unix.Fdatasync(int(f.Fd()))
	unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	const want = 100
	v, ok := l.ColdView(want, 64<<10)
	if !ok {
		t.Skip("page cache eviction had no effect on this file system")
	}
	defer v.Release()
	if v.Len() == 0 || v.Len() > 64<<10 {
		t.Fatalf("cold view of %d bytes", v.Len())
	}
	buf := make([]byte, v.Len())
	if _, err := unix.Pread(v.Fd(), buf, v.Pos()); err != nil {
		t.Fatal(err)
	}
	h, _, err := proto.ValidateBatch(buf)
	if err != nil {
		t.Fatalf("cold range does not start with a whole batch: %v", err)
	}
	if h.BaseOffset > want {
		t.Fatalf("cold range starts at offset %d, after the requested %d", h.BaseOffset, want)
	}
	if _, ok := l.ColdView(l.LogEnd(), 1<<20); ok {
		t.Fatal("cold view at the log end")
	}
}
