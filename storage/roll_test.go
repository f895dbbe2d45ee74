package storage

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// waitPrepared polls until the background worker has the next segment
// ready (an observable condition, with a deadline).
func waitPrepared(t *testing.T, l *Log) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.prepared.Load() == nil {
		if time.Now().After(deadline) {
			t.Fatalf("next segment not preallocated within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

func fileBytes(t *testing.T, path string) (size, allocated int64) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Size, st.Blocks * 512
}

func TestRollBySizeSealsAndTrims(t *testing.T) {
	cfg := testConfig()
	_, l := createTestLog(t, cfg)
	var d SyncDriver
	rng := rand.New(rand.NewPCG(5, 6))
	for range 100 {
		waitPrepared(t, l)
		mustAppend(t, &d, l, randomBatch(rng, 4, 300, 10))
	}
	l.finishSeals()
	for _, s := range l.segs[:len(l.segs)-1] {
		if s.sealing || s.trimmed {
			t.Fatalf("segment %d cut before a flush made its data durable", s.base)
		}
	}
	if err := d.Flush(l); err != nil { // then the worker trims them
		t.Fatal(err)
	}
	segs := l.Segments(nil)
	if len(segs) < 3 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	st := l.Stats()
	if st.PreallocMisses != 0 || st.PreallocHits != uint64(len(segs)-1) {
		t.Fatalf("prealloc hits %d misses %d for %d rolls", st.PreallocHits, st.PreallocMisses, len(segs)-1)
	}
	for i, s := range segs {
		size, alloc := fileBytes(t, s.Path)
		if i < len(segs)-1 {
			if s.State != SegmentFlushed || size != s.Bytes || s.Bytes > cfg.SegmentBytes || s.Next != segs[i+1].Base {
				t.Fatalf("sealed segment %d: %+v, file size %d", i, s, size)
			}
			n := (l.segs[i].idx.n)
			if isz, _ := fileBytes(t, l.segs[i].path(indexExt)); isz != int64(n*offsetEntrySize) || n < 2 {
				t.Fatalf("sealed index: %d bytes for %d entries", isz, n)
			}
			continue
		}
		if s.State != SegmentActive || size != cfg.SegmentBytes {
			t.Fatalf("active segment %+v, file size %d", s, size)
		}
		if i > 0 && alloc < size { // the first segment is created sparse
			t.Fatalf("active segment was not zero-filled: %d of %d bytes allocated", alloc, size)
		}
	}
}

// TestRollMissWaits: a roll that finds no next segment ready refuses with
// ErrRollPending and changes nothing; once the roll lane made it (the log's
// notify function runs), the roll goes through.
func TestRollMissWaits(t *testing.T) {
	_, l := createTestLog(t, testConfig())
	notified := make(chan struct{}, 16)
	l.SetNotify(func() { notified <- struct{}{} })
	var d SyncDriver
	mustAppend(t, &d, l, makeBatch(batchSpec{ts: []int64{1}, values: [][]byte{[]byte("a")}}))
	waitPrepared(t, l)
	l.prepared.Swap(nil).discard() // as if the roll lane had not finished
	if err := l.Roll(); !errors.Is(err, ErrRollPending) {
		t.Fatalf("roll without a prepared segment: %v, want ErrRollPending", err)
	}
	if n := len(l.Segments(nil)); n != 1 {
		t.Fatalf("%d segments after a refused roll, want 1", n)
	}
	select {
	case <-notified:
	case <-time.After(30 * time.Second):
		t.Fatal("the roll lane did not notify the owner")
	}
	l.ApplyBackground()
	if err := rollNow(l); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.PreallocMisses != 1 || st.Segments[SegmentActive] != 1 || st.Segments[SegmentSealed] != 1 {
		t.Fatalf("after a roll without a prepared segment: %+v", st)
	}
	mustAppend(t, &d, l, makeBatch(batchSpec{ts: []int64{1}, values: [][]byte{[]byte("b")}}))
	if got := readAllBatches(t, l, 0); lastNext(t, got) != 2 {
		t.Fatalf("log after the roll ends at %d", lastNext(t, got))
	}
}

func TestRollByAge(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentMs = 1000
	_, l := createTestLog(t, cfg)
	var d SyncDriver
	for _, ts := range []int64{5000, 5500, 5999, 6000, 6100, 7100} {
		mustAppend(t, &d, l, makeBatch(batchSpec{ts: []int64{ts}, values: [][]byte{[]byte("v")}}))
	}
	var bases []uint64
	for _, s := range l.Segments(nil) {
		bases = append(bases, s.Base)
	}
	if len(bases) != 3 || bases[1] != 3 || bases[2] != 5 {
		t.Fatalf("segment bases %v, want [0 3 5]", bases)
	}
	if err := rollNow(l); err != nil || len(l.Segments(nil)) != 4 {
		t.Fatalf("explicit roll: %v", err)
	}
	if err := rollNow(l); err != nil || len(l.Segments(nil)) != 4 {
		t.Fatalf("rolling an empty segment must do nothing: %v", err)
	}
}

func TestAppendLargerThanSegment(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = MinSegmentBytes
	_, l := createTestLog(t, cfg)
	big := makeBatch(batchSpec{ts: []int64{1}, values: [][]byte{make([]byte, 2000)}})
	if _, err := prepareNow(l, big); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("PrepareAppend(%d bytes) = %v, want ErrBatchTooLarge", len(big), err)
	}
}

// TestRolledSegmentSealsOnceItsDataIsFlushed: a rolled segment is cut
// only after its last write completed and a flush made its data durable.
func TestRolledSegmentSealsOnceItsDataIsFlushed(t *testing.T) {
	_, l := createTestLog(t, testConfig())
	var d SyncDriver
	b := func() []byte { return makeBatch(batchSpec{ts: []int64{1}, values: [][]byte{make([]byte, 100)}}) }
	op1, _ := prepareNow(l, b())
	if err := rollNow(l); err != nil {
		t.Fatal(err)
	}
	op2, _ := prepareNow(l, b())
	for _, op := range []AppendOp{op1, op2} {
		if err := d.write(op.Fd, op.Buf, op.Pos); err != nil {
			t.Fatal(err)
		}
	}
	first := l.segs[0]
	l.Appended(op2)
	if first.sealing || l.LogEnd() != 0 {
		t.Fatalf("segment sealing (%v) or data visible (end %d) before its write completed", first.sealing, l.LogEnd())
	}
	l.Appended(op1)
	l.finishSeals()
	if first.sealing {
		t.Fatal("sealing started before a flush made the segment's data durable")
	}
	if err := d.Flush(l); err != nil { // the trimming runs on the worker
		t.Fatal(err)
	}
	size, _ := fileBytes(t, first.path(logExt))
	if !first.trimmed || first.state != SegmentFlushed || size != int64(len(op1.Buf)) || l.LogEnd() != 2 {
		t.Fatalf("after completion: trimmed %v, file %d bytes (want %d), end %d", first.trimmed, size, len(op1.Buf), l.LogEnd())
	}
}

func TestPreallocatedFilesCleanedOnClose(t *testing.T) {
	st, l := createTestLog(t, testConfig())
	waitPrepared(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(l.Dir())
	for _, e := range entries {
		if e.Name()[0] == '.' {
			t.Fatalf("leftover %s after close", e.Name())
		}
	}
	_ = st
}

// TestSpareSegment: a log with small segments keeps a second mapped
// segment ready besides the next one, and a roll that finds the next one
// missing (the lane still making it) takes the spare instead of waiting;
// a log with large segments keeps none until a roll had to wait.
func TestSpareSegment(t *testing.T) {
	cfg := testConfig() // 16 KiB segments
	_, l := createTestLog(t, cfg)
	var d SyncDriver
	b := func() []byte { return makeBatch(batchSpec{ts: []int64{1}, values: [][]byte{make([]byte, 6000)}}) }
	mustAppend(t, &d, l, b())
	for i := 0; l.active().base == 0; i++ {
		if i == 10 {
			t.Fatal("no roll")
		}
		mustAppend(t, &d, l, b())
	}
	l.WaitBackground()
	mustAppend(t, &d, l, b()) // asks for the spare once the next one is mapped
	l.WaitBackground()
	next, spare := l.prepared.Load(), l.spare.Load()
	if next == nil || !next.mapped || spare == nil || !spare.mapped || next == spare {
		t.Fatalf("next %v spare %v: want two mapped prepared segments", next, spare)
	}
	l.prepared.Store(nil) // as if the lane were still making it
	misses := l.stats.preallocMisses
	if err := rollNow(l); err != nil {
		t.Fatalf("roll with only the spare ready: %v", err)
	}
	if l.stats.preallocMisses != misses || l.spare.Load() != nil {
		t.Fatalf("the roll did not take the spare (misses %d -> %d)", misses, l.stats.preallocMisses)
	}
	next.discard()

	big := testConfig()
	big.SegmentBytes = spareSegmentBytes + 1
	_, l2 := createTestLog(t, big)
	mustAppend(t, &d, l2, b())
	if l2.wantSpare() {
		t.Fatal("a log with large segments wants a spare before any roll waited")
	}
	if err := rollNow(l2); err != nil { // nothing mapped yet: the roll waits
		t.Fatal(err)
	}
	if l2.stats.preallocMisses != 1 || !l2.wantSpare() {
		t.Fatalf("after a roll that waited (misses %d): no spare wanted", l2.stats.preallocMisses)
	}
	l2.WaitBackground()
	mustAppend(t, &d, l2, b())
	l2.WaitBackground()
	if s := l2.spare.Load(); s == nil || !s.mapped {
		t.Fatal("no spare after a roll waited")
	}
}

// TestUncutSealedSegmentsRecover: rolled segments no flush covered yet
// are not cut; after a crash (or a close, which cuts them), a
// reopen reads every record of them and of the segments after them, and
// reports no damage.
func TestUncutSealedSegmentsRecover(t *testing.T) {
	for _, crash := range []bool{false, true} {
		cfg := testConfig()
		dir := t.TempDir()
		st := openTestStore(t, dir, StoreOptions{})
		l, err := st.CreateLog("t", 0, cfg)
		if err != nil {
			t.Fatal(err)
		}
		var d SyncDriver
		rng := rand.New(rand.NewPCG(7, 8))
		var want []byte
		for range 200 {
			b := randomBatch(rng, 4, 300, 10)
			mustAppend(t, &d, l, b)
			want = append(want, b...)
		}
		l.WaitBackground() // rolled segments get their names
		uncut := 0
		for _, s := range l.segs[:len(l.segs)-1] {
			if size, _ := fileBytes(t, s.path(logExt)); size == cfg.SegmentBytes && !s.trimmed {
				uncut++
			}
		}
		if uncut < 2 {
			t.Fatalf("%d uncut sealed segments, want several", uncut)
		}
		if crash {
			st.crash()
		} else if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		st2 := openTestStore(t, dir, StoreOptions{})
		l2, err := st2.OpenExistingLog("t", 0, cfg)
		if err != nil {
			t.Fatalf("crash %v: reopen: %v", crash, err)
		}
		if got := readAllBatches(t, l2, 0); !bytes.Equal(got, want) || len(l2.Corruptions(nil)) != 0 {
			t.Fatalf("crash %v: reopened log reads %d bytes of %d, damage %v", crash, len(got), len(want), l2.Corruptions(nil))
		}
		st2.Close()
	}
}
