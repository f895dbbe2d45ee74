package storage

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestResumeDropsWhatNeverBecameVisible: of four appends in flight, the
// second fails and the third and fourth (which rolled a new segment)
// complete. The log resumes at the end of the first: the rolled segment is
// removed, the third's bytes are cut, and after a crash the log holds
// exactly what was acknowledged: the first and the append made after the
// resume.
func TestResumeDropsWhatNeverBecameVisible(t *testing.T) {
	cfg := testConfig()
	st, l := createTestLog(t, cfg)
	a := makeBatch(batchSpec{ts: []int64{1, 2}, values: [][]byte{[]byte("a1"), []byte("a2")}})
	b := makeBatch(batchSpec{ts: []int64{3}, values: [][]byte{bytes.Repeat([]byte("b"), 500)}})
	c := makeBatch(batchSpec{ts: []int64{4}, values: [][]byte{[]byte("c")}})
	e := makeBatch(batchSpec{ts: []int64{5}, values: [][]byte{bytes.Repeat([]byte("e"), int(cfg.SegmentBytes)-300)}})
	var d SyncDriver
	ops := make([]AppendOp, 0, 4)
	for _, batch := range [][]byte{a, b, c, e} {
		op, err := prepareNow(l, batch)
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, op)
	}
	if n := len(l.Segments(nil)); n != 2 {
		t.Fatalf("the fourth append did not roll: %d segments", n)
	}
	for _, op := range []AppendOp{ops[0], ops[2], ops[3]} {
		if err := d.write(op.Fd, op.Buf, op.Pos); err != nil {
			t.Fatal(err)
		}
	}
	for _, op := range ops[2:] {
		if err := l.Appended(op); err != nil {
			t.Fatal(err)
		}
	}
	if l.Resumable() {
		t.Fatalf("resumable with appends in flight")
	}
	l.Failed(ops[1], unix.ENOSPC)
	if l.Resumable() {
		t.Fatalf("resumable with the first append in flight")
	}
	if err := l.Appended(ops[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := prepareNow(l, b); !errors.Is(err, ErrFenced) {
		t.Fatalf("append while fenced: %v", err)
	}
	rolled := l.Segments(nil)[1].Path
	if err := l.ResumeNow(); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if segs := l.Segments(nil); len(segs) != 1 || segs[0].State != SegmentActive {
		t.Fatalf("after resume: %+v", segs)
	}
	if _, err := os.Stat(rolled); !os.IsNotExist(err) {
		t.Fatalf("rolled segment %s still there: %v", rolled, err)
	}
	if l.LogEnd() != 2 {
		t.Fatalf("log end %d after resume, want 2", l.LogEnd())
	}
	// The same bytes as the failed append: if the third's bytes were
	// still on disk they would line up right after it (offsets 3 and 4).
	mustAppend(t, &d, l, b)
	want := append(append([]byte(nil), a...), b...)
	if got := readAllBatches(t, l, 0); !bytes.Equal(got, want) {
		t.Fatalf("after resume the log reads %d bytes, want %d", len(got), len(want))
	}
	st.crash()
	st2 := openTestStore(t, st.Dir(), StoreOptions{})
	defer st2.Close()
	l2 := openExisting(t, st2, cfg)
	if got := readAllBatches(t, l2, 0); !bytes.Equal(got, want) || l2.LogEnd() != 3 {
		t.Fatalf("after a crash: %d bytes, log end %d; want %d bytes, end 3", len(got), l2.LogEnd(), len(want))
	}
}
