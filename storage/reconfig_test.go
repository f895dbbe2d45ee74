package storage

import (
	"bytes"
	"errors"
	"testing"
)

// TestReconfigure: a raised segment size takes effect at the next roll; a
// batch that fits the new size but not the empty active segment made
// before is refused cleanly (no panic), and appends go on afterwards.
func TestReconfigure(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 4096
	_, l := createTestLog(t, cfg)
	var d SyncDriver
	big := makeBatch(batchSpec{ts: []int64{1}, values: [][]byte{bytes.Repeat([]byte("b"), 6000)}})
	if _, err := d.Append(l, big); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("6 KB batch into 4 KiB segments: %v", err)
	}
	bad := cfg
	bad.SegmentBytes = 1
	if err := l.Reconfigure(bad); err == nil {
		t.Fatal("Reconfigure accepted segment_bytes 1")
	}
	cfg.SegmentBytes = 64 << 10
	if err := l.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	// The active segment is empty and 4 KiB: refused, not a panic.
	if _, err := d.Append(l, big); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("6 KB batch into the old empty 4 KiB segment: %v", err)
	}
	small := makeBatch(batchSpec{ts: []int64{2}, values: [][]byte{[]byte("s")}})
	mustAppend(t, &d, l, small)
	mustAppend(t, &d, l, big) // rolls into a 64 KiB segment
	if got := readAllBatches(t, l, 0); !bytes.Equal(got, append(append([]byte(nil), small...), big...)) {
		t.Fatalf("read back %d bytes", len(got))
	}
}
