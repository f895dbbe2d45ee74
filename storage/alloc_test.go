package storage

import (
	"bytes"
	"testing"

	"github.com/ringmq/ringmq/proto"
)

// batchOf builds one uncompressed batch of about size bytes from records
// with recordSize-byte values.
func batchOf(size, recordSize int) []byte {
	var b proto.BatchBuilder
	b.Reset(make([]byte, 0, size+recordSize+64))
	value := bytes.Repeat([]byte{'v'}, recordSize)
	for b.Size()+recordSize+16 <= size {
		b.Append(1700000000000+int64(b.Count()), nil, value, nil)
	}
	return b.Finish()
}

func allocLog(t *testing.T) *Log {
	cfg := testConfig()
	cfg.SegmentBytes = 64 << 20
	cfg.IndexIntervalBytes = 4096
	cfg.Preallocate = false
	_, l := createTestLog(t, cfg)
	return l
}

func TestAppendDoesNotAllocate(t *testing.T) {
	l := allocLog(t)
	var d SyncDriver
	batch := batchOf(64<<10, 100)
	multi := append(batchOf(16<<10, 1000), batchOf(16<<10, 1000)...)
	for name, b := range map[string][]byte{"64KiB": batch, "two batches": multi} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := d.Append(l, b); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("append %s: %.1f allocations per append, want 0", name, allocs)
		}
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := d.Append(l, batch); err != nil {
			t.Fatal(err)
		}
		if err := d.Flush(l); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("append+flush: %.1f allocations, want 0", allocs)
	}
}

func TestReadDoesNotAllocate(t *testing.T) {
	l := allocLog(t)
	var d SyncDriver
	for range 100 {
		mustAppend(t, &d, l, batchOf(64<<10, 1000))
	}
	views := make([]View, 0, 4)
	var off uint64
	var err error
	allocs := testing.AllocsPerRun(200, func() {
		views, err = l.Read(off, 256<<10, views[:0])
		if err != nil || len(views) == 0 || !views[0].Resident() {
			t.Fatalf("Read(%d): %d views, %v", off, len(views), err)
		}
		off = (off + 997) % l.LogEnd()
		views = ReleaseViews(views)
	})
	if allocs != 0 {
		t.Errorf("read: %.1f allocations per read, want 0", allocs)
	}
	allocs = testing.AllocsPerRun(100, func() {
		if _, err := l.SeekTime(1700000000000 + 300); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("seek by time: %.1f allocations, want 0", allocs)
	}
}
