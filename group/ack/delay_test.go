package ack

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestDelayedNeverEarly: records with delivery times 0.5–3 s after their
// append (and some far in the future, capped by MaxDelay) are never
// handed out before their time, and are handed out at most one clock step
// after it; records without a delay are not held back by them.
func TestDelayedNeverEarly(t *testing.T) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 2))
	cfg := baseConfig()
	cfg.MaxUnacked = 5000
	cfg.MaxDelay = 5 * time.Second
	tr := mustNew(t, cfg, 0)
	const records = 3000
	src := metas{}
	due := make([]int64, records)
	appended := make([]int64, records)
	now := t0.UnixNano()
	logEnd := uint64(0)
	handed := make([]int64, records)
	const maxStep = 50 * time.Millisecond
	for step := 0; tr.Floor() < records; step++ {
		if step > 100_000 {
			t.Fatalf("seed %d: stuck at floor %d", seed, tr.Floor())
		}
		for n := rng.IntN(20); n > 0 && logEnd < records; n-- {
			off := logEnd
			appended[off], due[off] = now, now
			switch r := rng.IntN(10); {
			case r < 3:
				due[off] = now + int64(500*time.Millisecond) + rng.Int64N(int64(2500*time.Millisecond))
			case r == 3:
				due[off] = now + int64(time.Hour) // capped to 5 s
			}
			src[off] = Meta{DeliverAt: due[off], AppendTime: now}
			if due[off] > now+int64(cfg.MaxDelay) {
				due[off] = now + int64(cfg.MaxDelay)
			}
			logEnd++
		}
		rs := acquire(t, tr, Member(1+rng.IntN(3)), time.Unix(0, now), 100, logEnd, src)
		for _, off := range offsets(rs) {
			if now < due[off] {
				t.Fatalf("seed %d: offset %d handed out %v early", seed, off, time.Duration(due[off]-now))
			}
			if late := time.Duration(now - max(due[off], appended[off])); late > maxStep {
				t.Fatalf("seed %d: offset %d handed out %v late", seed, off, late)
			}
			handed[off] = now
			if err := tr.Ack(tr.slot(off).member, off); err != nil {
				t.Fatal(err)
			}
		}
		now += rng.Int64N(int64(maxStep))
	}
	overtaken := 0
	for off := range records {
		if handed[off] == 0 {
			t.Fatalf("seed %d: offset %d never handed out", seed, off)
		}
		if due[off] > appended[off] && off+1 < records && handed[off+1] < handed[off] {
			overtaken++ // a later record went first: delays do not hold back others
		}
	}
	if overtaken == 0 {
		t.Fatalf("seed %d: no delayed record was overtaken", seed)
	}
}
