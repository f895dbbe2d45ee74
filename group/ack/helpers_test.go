package ack

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

var t0 = time.Unix(1_000_000, 0)

// at is t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

func baseConfig() Config {
	return Config{Topic: "orders", Partition: 3, AckTimeout: 10 * time.Second, MaxUnacked: 100}
}

func mustNew(t testing.TB, cfg Config, start uint64) *Tracker {
	t.Helper()
	tr, err := New(cfg, start)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// metas is a Source backed by a map (missing offsets: zero Meta).
type metas map[uint64]Meta

func (m metas) Meta(off uint64) Meta { return m[off] }

// keyOf is a Source whose key hash is a function of the offset.
type keyOf func(off uint64) uint32

func (k keyOf) Meta(off uint64) Meta { return Meta{KeyHash: k(off)} }

// fmtRanges writes ranges as "0-2x1 5x2" (offsets, x delivery count).
func fmtRanges(rs []Range) string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteByte(' ')
		}
		if r.End-r.Start == 1 {
			fmt.Fprintf(&b, "%dx%d", r.Start, r.Deliveries)
		} else {
			fmt.Fprintf(&b, "%d-%dx%d", r.Start, r.End-1, r.Deliveries)
		}
	}
	return b.String()
}

func offsets(rs []Range) []uint64 {
	var out []uint64
	for _, r := range rs {
		for o := r.Start; o < r.End; o++ {
			out = append(out, o)
		}
	}
	return out
}

// acquire calls Acquire and fails the test on an error.
func acquire(t testing.TB, tr *Tracker, m Member, now time.Time, max int, logEnd uint64, src Source) []Range {
	t.Helper()
	rs, err := tr.Acquire(nil, m, now, max, logEnd, src)
	if err != nil {
		t.Fatalf("acquire by %d: %v", m, err)
	}
	return rs
}

// persist runs Ready/Advance and appends the log to disk; it returns the
// dead letters handed out.
func persist(tr *Tracker, disk *[]byte) []DeadLetter {
	if !tr.HasReady() {
		return nil
	}
	rd := tr.Ready()
	if rd.Snapshot {
		*disk = (*disk)[:0]
	}
	*disk = append(*disk, rd.Log...)
	dls := append([]DeadLetter(nil), rd.DeadLetters...)
	tr.Advance()
	return dls
}
