package storage

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// wbConfig: segments of 64 KiB, a writeback step of 8 KiB.
func wbConfig() LogConfig {
	c := testConfig()
	c.SegmentBytes = 64 << 10
	c.WritebackBytes = 8 << 10
	return c
}

// wbBatch makes one batch of about n bytes.
func wbBatch(n int) []byte {
	return makeBatch(batchSpec{ts: []int64{1}, values: [][]byte{make([]byte, n-100)}})
}

// TestWritebackAtSteps: a writeback is planned once a whole step of the
// active segment is visible, covers whole steps only, starts where the
// last one ended, and one is in flight at a time.
func TestWritebackAtSteps(t *testing.T) {
	_, l := createTestLog(t, wbConfig())
	var d SyncDriver
	if _, ok := l.PrepareWriteback(); ok {
		t.Fatal("writeback planned on an empty log")
	}
	mustAppend(t, &d, l, wbBatch(5000))
	if op, ok := l.PrepareWriteback(); ok {
		t.Fatalf("writeback %+v planned with less than a step visible", op)
	}
	mustAppend(t, &d, l, wbBatch(5000)) // ~10,000 visible: one step
	op, ok := l.PrepareWriteback()
	if !ok || op.Off != 0 || op.Len != 8<<10 || op.Fd != l.active().file.fd {
		t.Fatalf("writeback %+v %v, want fd %d bytes [0, 8192)", op, ok, l.active().file.fd)
	}
	mustAppend(t, &d, l, wbBatch(20000)) // ~30,000: two more steps
	if op2, ok := l.PrepareWriteback(); ok {
		t.Fatalf("second writeback %+v planned while one is in flight", op2)
	}
	l.WrittenBack(op)
	op, ok = l.PrepareWriteback()
	if !ok || op.Off != 8<<10 || op.Len != 16<<10 {
		t.Fatalf("writeback %+v %v, want bytes [8192, 24576): whole steps from the last end", op, ok)
	}
	l.WrittenBack(op)
	if op, ok := l.PrepareWriteback(); ok {
		t.Fatalf("writeback %+v planned with less than a step new", op)
	}
}

// TestWritebackNeverPastVisible: appends whose writes have not completed
// (or completed out of order, behind one that has not) are not written
// back: only the visible prefix is.
func TestWritebackNeverPastVisible(t *testing.T) {
	_, l := createTestLog(t, wbConfig())
	var d SyncDriver
	first, err := prepareNow(l, wbBatch(5000))
	if err != nil {
		t.Fatal(err)
	}
	second, err := prepareNow(l, wbBatch(20000))
	if err != nil {
		t.Fatal(err)
	}
	d.write(second.Fd, second.Buf, second.Pos)
	if err := l.Appended(second); err != nil {
		t.Fatal(err)
	}
	if op, ok := l.PrepareWriteback(); ok {
		t.Fatalf("writeback %+v planned over bytes whose write (the first) has not completed", op)
	}
	d.write(first.Fd, first.Buf, first.Pos)
	if err := l.Appended(first); err != nil {
		t.Fatal(err)
	}
	op, ok := l.PrepareWriteback()
	visible := l.active().size
	if !ok || op.Off+op.Len > visible || op.Len != visible/(8<<10)*(8<<10) {
		t.Fatalf("writeback %+v %v, want the whole steps of the %d visible bytes", op, ok, visible)
	}
	if _, err := prepareNow(l, wbBatch(20000)); err != nil { // planned, not written
		t.Fatal(err)
	}
	l.WrittenBack(op)
	if op, ok := l.PrepareWriteback(); ok {
		t.Fatalf("writeback %+v planned over a planned write", op)
	}
}

// TestWritebackFollowsTheActiveSegment: after a roll, writeback starts at
// the new segment's beginning; the old one's tail is left to the flush.
func TestWritebackFollowsTheActiveSegment(t *testing.T) {
	_, l := createTestLog(t, wbConfig())
	var d SyncDriver
	for i := 0; l.active().base == 0; i++ {
		if i == 100 {
			t.Fatal("no roll after 100 appends")
		}
		if op, ok := l.PrepareWriteback(); ok {
			l.WrittenBack(op)
		}
		mustAppend(t, &d, l, wbBatch(9000))
	}
	op, ok := l.PrepareWriteback()
	if !ok || op.Off != 0 || op.Fd != l.active().file.fd || op.seg != l.active() {
		t.Fatalf("writeback %+v %v, want the new active segment from 0", op, ok)
	}
}

// TestWritebackOff: WritebackBytes 0 plans nothing.
func TestWritebackOff(t *testing.T) {
	cfg := wbConfig()
	cfg.WritebackBytes = 0
	_, l := createTestLog(t, cfg)
	var d SyncDriver
	mustAppend(t, &d, l, wbBatch(30000))
	if op, ok := l.PrepareWriteback(); ok {
		t.Fatalf("writeback %+v planned with pacing off", op)
	}
}

// TestWritebackFailedFences: a failed writeback fences the log like a
// failed write: appends planned before it still become visible, new
// appends and the next flush are refused, reads go on, and the fence
// error names the writeback.
func TestWritebackFailedFences(t *testing.T) {
	_, l := createTestLog(t, wbConfig())
	var d SyncDriver
	mustAppend(t, &d, l, wbBatch(10000))
	op, ok := l.PrepareWriteback()
	if !ok {
		t.Fatal("no writeback planned")
	}
	inflight, err := prepareNow(l, wbBatch(1000))
	if err != nil {
		t.Fatal(err)
	}
	l.WritebackFailed(op, unix.EIO)
	if err := l.Err(); !errors.Is(err, ErrFenced) || !errors.Is(err, unix.EIO) {
		t.Fatalf("Err() = %v, want ErrFenced wrapping EIO", err)
	}
	d.write(inflight.Fd, inflight.Buf, inflight.Pos)
	if err := l.Appended(inflight); err != nil {
		t.Fatalf("append planned before the failure: %v, want it visible", err)
	}
	if l.LogEnd() != 2 {
		t.Fatalf("LogEnd %d, want 2", l.LogEnd())
	}
	if _, err := prepareNow(l, wbBatch(1000)); !errors.Is(err, ErrFenced) {
		t.Fatalf("append after the failed writeback: %v, want ErrFenced", err)
	}
	if _, ok := l.PrepareFlush(); ok {
		t.Fatal("flush planned after a failed writeback")
	}
	if _, ok := l.PrepareWriteback(); ok {
		t.Fatal("writeback planned on a fenced log")
	}
	if got := readAllBatches(t, l, 0); lastNext(t, got) != 2 {
		t.Fatal("reads of the visible prefix fail after the fence")
	}
}

// TestAllocateNext: with AllocateNext a partition's first segment is
// allocated in full at its first append, and the mapped next segment's
// .log before it takes appends (no hole in either); without, they stay
// sparse.
func TestAllocateNext(t *testing.T) {
	for _, alloc := range []bool{true, false} {
		cfg := wbConfig()
		cfg.Preallocate = false
		cfg.SegmentBytes = 1 << 20
		cfg.AllocateNext = alloc
		_, l := createTestLog(t, cfg)
		var d SyncDriver
		mustAppend(t, &d, l, wbBatch(1000))
		l.WaitBackground()
		first, _ := fileBytes(t, l.segs[0].path(logExt))
		if _, alloc0 := fileBytes(t, l.segs[0].path(logExt)); (alloc0 >= first) != alloc {
			t.Fatalf("alloc %v: first segment has %d bytes allocated of %d after its first append", alloc, alloc0, first)
		}
		var p *preparedSegment
		for i := 0; i < 12 && (p == nil || !p.mapped); i++ {
			mustAppend(t, &d, l, wbBatch(60000))
			l.WaitBackground()
			p = l.prepared.Load()
		}
		if p == nil || !p.mapped {
			t.Fatalf("alloc %v: no mapped next segment once the active one is half full", alloc)
		}
		var st unix.Stat_t
		if err := unix.Fstat(p.fds[0], &st); err != nil {
			t.Fatal(err)
		}
		if full := st.Blocks*512 >= cfg.SegmentBytes; full != alloc {
			t.Fatalf("alloc %v: next segment has %d bytes allocated of %d", alloc, st.Blocks*512, cfg.SegmentBytes)
		}
	}
}
