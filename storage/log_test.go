package storage

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/ringmq/ringmq/proto"
)

func TestAppendAssignsOffsetsAndReads(t *testing.T) {
	_, l := createTestLog(t, testConfig())
	var d SyncDriver
	rng := rand.New(rand.NewPCG(1, 2))
	var want []byte
	for i := range 200 {
		b := randomBatch(rng, 5, 200, int64(1000+i))
		op := mustAppend(t, &d, l, b)
		h, _ := proto.ParseBatchHeader(b)
		if op.Base != h.BaseOffset || op.Last != h.LastOffset() {
			t.Fatalf("op offsets %d-%d, batch %d-%d", op.Base, op.Last, h.BaseOffset, h.LastOffset())
		}
		want = append(want, b...)
	}
	if got := readAllBatches(t, l, 0); !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes, want %d", len(got), len(want))
	}
	if l.Stats().Segments[SegmentSealed] == 0 {
		t.Fatalf("expected rolls with 16 KiB segments: %+v", l.Stats())
	}
	// Every offset reads the batch that contains it.
	var views []View
	for off := uint64(0); off < l.LogEnd(); off++ {
		var err error
		views, err = l.Read(off, 0, views[:0])
		if err != nil || len(views) != 1 {
			t.Fatalf("Read(%d, 0): %d views, %v", off, len(views), err)
		}
		h, rest, err := proto.ValidateBatch(views[0].Bytes())
		if err != nil || len(rest) != 0 || h.BaseOffset > off || h.LastOffset() < off {
			t.Fatalf("Read(%d) returned batch %d-%d (+%d bytes), %v", off, h.BaseOffset, h.LastOffset(), len(rest), err)
		}
		views = ReleaseViews(views)
	}
}

func TestReadLimits(t *testing.T) {
	_, l := createTestLog(t, testConfig())
	var d SyncDriver
	rng := rand.New(rand.NewPCG(3, 4))
	var sizes []int
	for range 10 {
		b := randomBatch(rng, 3, 100, 5)
		sizes = append(sizes, len(b))
		mustAppend(t, &d, l, b)
	}
	views, err := l.Read(0, sizes[0]+sizes[1]+sizes[2]-1, nil)
	if err != nil || len(views) != 1 || views[0].Len() != sizes[0]+sizes[1] {
		t.Fatalf("Read limited to 2 batches: %d views, len %d, %v", len(views), views[0].Len(), err)
	}
	ReleaseViews(views)
	views, err = l.Read(0, sizes[0]+sizes[1], nil)
	if err != nil || len(views) != 1 || views[0].Len() != sizes[0]+sizes[1] {
		t.Fatalf("Read with a budget of exactly 2 batches: %d bytes, %v", views[0].Len(), err)
	}
	ReleaseViews(views)
	if v, err := l.Read(l.LogEnd(), 100, nil); err != nil || len(v) != 0 {
		t.Fatalf("Read(End) = %d views, %v; want none", len(v), err)
	}
	if _, err := l.Read(l.LogEnd()+1, 100, nil); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("Read past End: %v", err)
	}
}

func TestMultiBatchAppendIsOneOp(t *testing.T) {
	_, l := createTestLog(t, testConfig())
	var d SyncDriver
	a := makeBatch(batchSpec{ts: []int64{1, 2}, values: [][]byte{[]byte("a"), []byte("b")}})
	b := makeBatch(batchSpec{ts: []int64{3, 4, 5}, values: [][]byte{nil, []byte("c"), []byte("d")}})
	op := mustAppend(t, &d, l, append(append([]byte{}, a...), b...))
	if op.Base != 0 || op.Last != 4 || l.LogEnd() != 5 {
		t.Fatalf("op %d-%d, end %d; want 0-4, 5", op.Base, op.Last, l.LogEnd())
	}
	views, _ := l.Read(3, 1<<20, nil)
	h, _ := proto.ParseBatchHeader(views[0].Bytes())
	if h.BaseOffset != 2 || views[0].Len() != len(b) {
		t.Fatalf("Read(3): batch at %d, %d bytes", h.BaseOffset, views[0].Len())
	}
	ReleaseViews(views)
}

func TestBadBatchLeavesLogUnchanged(t *testing.T) {
	_, l := createTestLog(t, testConfig())
	var d SyncDriver
	good := makeBatch(batchSpec{ts: []int64{1}, values: [][]byte{[]byte("x")}})
	mustAppend(t, &d, l, good)
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 1
	for _, b := range [][]byte{bad, good[:30], append(bytes.Clone(good), 0), nil} {
		if _, err := d.Append(l, b); !errors.Is(err, ErrBadBatch) {
			t.Fatalf("Append(%d bytes) = %v, want ErrBadBatch", len(b), err)
		}
	}
	if l.LogEnd() != 1 || l.Err() != nil {
		t.Fatalf("End %d, Err %v after rejected appends", l.LogEnd(), l.Err())
	}
	mustAppend(t, &d, l, good)
	if l.LogEnd() != 2 {
		t.Fatalf("End %d, want 2", l.LogEnd())
	}
}

func TestSeekTime(t *testing.T) {
	_, l := createTestLog(t, testConfig())
	var d SyncDriver
	// Timestamps rise by 10 per record, with one batch out of order.
	var ts int64 = 1000
	for i := range 300 {
		spec := batchSpec{}
		for range 3 {
			spec.ts = append(spec.ts, ts)
			spec.values = append(spec.values, make([]byte, 50))
			ts += 10
		}
		if i == 150 {
			spec.ts = []int64{5, 6, 7}
		}
		mustAppend(t, &d, l, makeBatch(spec))
	}
	cases := []struct {
		ts   int64
		want uint64
	}{{0, 0}, {5, 0}, {1000, 0}, {1001, 1}, {1010, 1}, {2500, 150}, {1000 + 10*899, 899}, {1000 + 10*900, 900}}
	for _, c := range cases {
		got, err := l.SeekTime(c.ts)
		if err != nil || got != c.want {
			t.Errorf("SeekTime(%d) = %d, %v; want %d", c.ts, got, err, c.want)
		}
	}
	if got, _ := l.SeekTime(6); got != 0 {
		t.Errorf("SeekTime(6) = %d, want 0 (first record ≥ 6 is offset 0)", got)
	}
}

func TestOutOfOrderCompletion(t *testing.T) {
	_, l := createTestLog(t, testConfig())
	var d SyncDriver
	var ops []AppendOp
	for i := range 4 {
		b := makeBatch(batchSpec{ts: []int64{int64(i)}, values: [][]byte{[]byte("v")}})
		op, err := prepareNow(l, b)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.write(op.Fd, op.Buf, op.Pos); err != nil {
			t.Fatal(err)
		}
		ops = append(ops, op)
	}
	steps := []struct {
		op      int
		wantEnd uint64
	}{{2, 0}, {1, 0}, {0, 3}, {3, 4}}
	for _, s := range steps {
		if err := l.Appended(ops[s.op]); err != nil {
			t.Fatal(err)
		}
		if l.LogEnd() != s.wantEnd {
			t.Fatalf("after completing op %d: End %d, want %d", s.op, l.LogEnd(), s.wantEnd)
		}
	}
}

func TestFailedWriteFences(t *testing.T) {
	_, l := createTestLog(t, testConfig())
	var d SyncDriver
	b := func() []byte { return makeBatch(batchSpec{ts: []int64{1}, values: [][]byte{[]byte("v")}}) }
	mustAppend(t, &d, l, b())
	op1, _ := prepareNow(l, b())
	op2, _ := prepareNow(l, b())
	op3, _ := prepareNow(l, b())
	d.write(op1.Fd, op1.Buf, op1.Pos)
	d.write(op3.Fd, op3.Buf, op3.Pos)
	l.Failed(op2, errors.New("disk on fire"))
	if err := l.Appended(op3); !errors.Is(err, ErrFenced) {
		t.Fatalf("completion after the failed op: %v, want ErrFenced", err)
	}
	if err := l.Appended(op1); err != nil {
		t.Fatalf("completion before the failed op: %v", err)
	}
	if l.LogEnd() != 2 {
		t.Fatalf("End %d, want 2 (nothing past the failed write)", l.LogEnd())
	}
	if _, err := prepareNow(l, b()); !errors.Is(err, ErrFenced) {
		t.Fatalf("append after fence: %v", err)
	}
	if got := readAllBatches(t, l, 0); lastNext(t, got) != 2 {
		t.Fatalf("reads of the completed prefix fail after a fence")
	}
	if _, ok := l.PrepareFlush(); ok {
		t.Fatalf("flush planned on a fenced log")
	}
}
