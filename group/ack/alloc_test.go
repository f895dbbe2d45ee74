package ack

import (
	"math/rand/v2"
	"testing"
	"time"
)

// steadyTracker returns a shared tracker with a full window of records
// handed out to member 1, and the offsets it holds.
func steadyTracker(t testing.TB, window int) (*Tracker, []uint64) {
	cfg := baseConfig()
	cfg.MaxUnacked = window
	cfg.AckTimeout = time.Hour
	cfg.SnapshotEvery = 1 << 30
	tr := mustNew(t, cfg, 0)
	rs := acquire(t, tr, 1, t0, window, uint64(window), nil)
	tr.Ready()
	tr.Advance()
	return tr, offsets(rs)
}

// TestAllocsSteadyState: acking a record, handing out the next one into
// a reused slice and emitting the delta frames allocate nothing in the
// steady state (amortized: the bitmap gains a container every 65,536
// offsets).
func TestAllocsSteadyState(t *testing.T) {
	const window = 1024
	tr, held := steadyTracker(t, window)
	rng := rand.New(rand.NewPCG(1, 1))
	next := uint64(window)
	dst := make([]Range, 0, 8)
	ack := func() {
		// ack a random held record, then hand out the next one
		i := rng.IntN(len(held))
		if err := tr.Ack(1, held[i]); err != nil {
			t.Fatal(err)
		}
		var err error
		dst, err = tr.Acquire(dst[:0], 1, t0, 1, next+1, nil)
		if err != nil || len(dst) == 0 {
			// the floor has not moved: the window is full
			held[i] = held[len(held)-1]
			held = held[:len(held)-1]
			if len(held) == 0 {
				t.Fatal("window drained")
			}
			return
		}
		held[i] = dst[0].Start
		next++
	}
	for range 10_000 {
		ack() // warm up: reach a steady window shape
	}
	if n := testing.AllocsPerRun(2000, ack); n != 0 {
		t.Errorf("Ack+Acquire: %v allocations per run, want 0", n)
	}
	if n := testing.AllocsPerRun(200, func() {
		ack()
		tr.Ready()
		tr.Advance()
	}); n != 0 {
		t.Errorf("Ack+Acquire+Ready: %v allocations per run, want 0", n)
	}
}
