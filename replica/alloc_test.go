package replica

import (
	"testing"
	"time"
)

// The steady-state produce path (plan, complete out of order, Ready,
// flush, Advance) and a long-poll register → wake cycle do not allocate.
func TestSteadyStateDoesNotAllocate(t *testing.T) {
	for _, cfg := range []Config{syncConfig(), intervalConfig()} {
		r, err := New(cfg, Offsets{})
		if err != nil {
			t.Fatal(err)
		}
		now := t0
		r.Tick(now)
		var next uint64
		var tok Token
		acks, rounds := 0, 0
		round := func() {
			rounds++
			// Four appends per turn, completed in reverse order, one of each
			// level plus a waiter.
			base := next
			for i, level := range []Level{AckAll, AckLeader, AckNone, AckAll} {
				tok++
				r.AppendPlanned(Append{Base: next, Last: next + uint64(i), Bytes: 100, Level: level, Token: tok})
				next += uint64(i) + 1
			}
			if r.Wait(Wait{Token: tok, Offset: base, Seen: r.HighWatermark(), MinBytes: 1, Deadline: now.Add(time.Hour)}) != WakeNone {
				t.Fatal("waiter not registered")
			}
			for b := next; b > base; {
				// bases are base, base+1, base+3, base+6
				switch b {
				case base + 10:
					b = base + 6
				case base + 6:
					b = base + 3
				case base + 3:
					b = base + 1
				default:
					b = base
				}
				r.AppendCompleted(b)
			}
			now = now.Add(time.Second)
			r.Tick(now)
			rd := r.Ready()
			acks += len(rd.Acks)
			flush, upTo := rd.Flush, rd.FlushUpTo
			r.Advance()
			if flush {
				r.FlushCompleted(upTo)
			}
			rd = r.Ready()
			acks += len(rd.Acks)
			r.Advance()
		}
		for i := 0; i < 100; i++ { // grow the queues
			round()
		}
		if allocs := testing.AllocsPerRun(1000, round); allocs != 0 {
			t.Errorf("sync=%v: %.1f allocations per round, want 0", cfg.Sync, allocs)
		}
		if acks != 4*rounds {
			t.Errorf("sync=%v: %d acks released in %d rounds", cfg.Sync, acks, rounds)
		}
		if r.Waiters() != 0 {
			t.Errorf("sync=%v: %d waiters left", cfg.Sync, r.Waiters())
		}
	}
}
