package storage

import (
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

// fdsUnder lists the paths of this process's descriptors under dir.
func fdsUnder(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	var out []string
	for _, e := range ents {
		if p, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(p, dir) {
			out = append(out, p)
		}
	}
	return out
}

// TestLogKeepsOnlyLogDescriptors: once flushed, a log holds one
// descriptor per segment, its .log (writes, cold reads); indexes and the
// directory hold none; a prepared segment holds its .log once mapped
// ahead of the roll (the next one and, for small segments, a spare).
func TestLogKeepsOnlyLogDescriptors(t *testing.T) {
	cfg := testConfig()
	_, l := createTestLog(t, cfg)
	waitPrepared(t, l)
	if fds := fdsUnder(t, l.Dir()); len(fds) != 1 {
		t.Fatalf("a new log holds %d descriptors: %v", len(fds), fds)
	}
	fill(t, l, rand.New(rand.NewPCG(21, 22)), 150)
	var d SyncDriver
	if err := d.Flush(l); err != nil {
		t.Fatal(err)
	}
	waitPrepared(t, l)
	segs := l.Segments(nil)
	fds := fdsUnder(t, l.Dir())
	// Prepared segments (the next one and, for small segments, a spare
	// that the roll lane may be making right now) hold their .log open
	// once mapped: at most two. Every other descriptor is a segment's.
	var next int
	for _, p := range fds {
		if !strings.HasSuffix(p, logExt) {
			t.Fatalf("descriptor open on %s", p)
		}
		if strings.Contains(p, nextPrefix) {
			next++
		}
	}
	if len(fds)-next != len(segs) || next > 2 {
		t.Fatalf("%d segments, %d descriptors (%d of prepared segments): %v", len(segs), len(fds), next, fds)
	}
}

// TestIndexGrowsByChunks: a new segment's index files have one chunk
// allocated; appends get the next ones from the background worker, so the
// index keeps every entry past the first chunk.
func TestIndexGrowsByChunks(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 8 << 20
	cfg.IndexIntervalBytes = 0
	_, l := createTestLog(t, cfg)
	first := indexChunk / offsetEntrySize
	b := makeBatch(batchSpec{ts: []int64{1}, values: [][]byte{[]byte("v")}})
	var d SyncDriver
	for i := range 3 * first {
		mustAppend(t, &d, l, append([]byte(nil), b...))
		if i%64 == 0 {
			waitChunk(t, &l.active().idx)
		}
	}
	if n := l.active().idx.n; n != 3*first {
		t.Fatalf("%d index entries for %d batches indexed one by one", n, 3*first)
	}
	_, alloc := fileBytes(t, l.active().idx.path)
	if alloc >= int64(len(l.active().idx.m)) {
		t.Fatalf("the whole index (%d bytes) is allocated: %d", len(l.active().idx.m), alloc)
	}
}

// waitChunk waits for a requested index chunk (the worker is asynchronous).
func waitChunk(t *testing.T, x *index) {
	deadline := time.Now().Add(10 * time.Second)
	for x.extending.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("index chunk not allocated within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
