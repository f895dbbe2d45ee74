package replica

import (
	"testing"
)

// BenchmarkProducePath is one produce part through the replica: plan,
// complete, Ready (with the flush of a sync topic completing at once),
// Advance. The baseline is the part's own bookkeeping in the reactor
// today (an insertion into a sorted slice per ack), which this replaces.
func BenchmarkProducePath(b *testing.B) {
	for _, c := range []struct {
		name string
		cfg  Config
	}{{"sync", syncConfig()}, {"interval", intervalConfig()}} {
		for _, level := range []Level{AckLeader, AckAll} {
			b.Run(c.name+"/"+level.String(), func(b *testing.B) {
				r, err := New(c.cfg, Offsets{})
				if err != nil {
					b.Fatal(err)
				}
				r.Tick(t0)
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					base := uint64(i)
					r.AppendPlanned(Append{Base: base, Last: base, Bytes: 1024, Level: level, Token: Token(i)})
					r.AppendCompleted(base)
					rd := r.Ready()
					flush, upTo := rd.Flush, rd.FlushUpTo
					r.Advance()
					if flush {
						r.FlushCompleted(upTo)
						r.Ready()
						r.Advance()
					}
				}
				if r.Offsets().HighWatermark == 0 && b.N > 1 {
					b.Fatal("HW never moved")
				}
			})
		}
	}
}
