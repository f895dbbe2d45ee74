package storage

import (
	"encoding/binary"
	"testing"

	"github.com/ringmq/ringmq/proto"
)

// A wrong offset index entry never makes a read start at the wrong batch:
// an entry pointing at a later batch, into the middle of a batch, or past
// the data is detected (the first batch must contain the offset), counted,
// and the read falls back to a scan from the segment start.
func TestReadChecksTheIndexEntry(t *testing.T) {
	cfg := testConfig()
	cfg.IndexIntervalBytes = 0 // an entry for every batch
	cfg.SegmentBytes = 1 << 20
	_, l := createTestLog(t, cfg)
	faults := 0
	l.store.opts.OnIndexFault = func() { faults++ }
	var d SyncDriver
	var pos []uint32 // file position of each batch
	var p uint32
	for i := 0; i < 20; i++ {
		b := makeBatch(batchSpec{ts: []int64{1, 2, 3}, values: [][]byte{{1}, {2}, {3}}})
		pos = append(pos, p)
		p += uint32(len(b))
		mustAppend(t, &d, l, b)
	}
	s := l.segs[0]
	if s.idx.n != 20 {
		t.Fatalf("%d index entries, want 20", s.idx.n)
	}
	setPos := func(entry int, v uint32) {
		binary.LittleEndian.PutUint32(s.idx.m[entry*offsetEntrySize+4:], v)
	}
	cases := []struct {
		name string
		pos  uint32
	}{
		{"later batch", pos[11]},
		{"mid batch", pos[10] + 9},
		{"past the data", p + 4096},
		{"earlier batch", pos[3]}, // wasteful but right: no fault
	}
	for _, tc := range cases {
		setPos(10, tc.pos)
		before := faults
		for _, off := range []uint64{30, 31, 32} { // the records of batch 10
			views, err := l.Read(off, 1<<20, nil)
			if err != nil {
				t.Fatalf("%s: Read(%d): %v", tc.name, off, err)
			}
			h, err := proto.ParseBatchHeader(views[0].Bytes())
			if err != nil || h.BaseOffset > off || h.NextOffset() <= off {
				t.Fatalf("%s: Read(%d) starts with batch %d..%d (%v)", tc.name, off, h.BaseOffset, h.NextOffset(), err)
			}
			ReleaseViews(views)
		}
		if want := tc.name != "earlier batch"; (faults > before) != want {
			t.Fatalf("%s: %d index faults reported", tc.name, faults-before)
		}
		setPos(10, pos[10])
	}
}
