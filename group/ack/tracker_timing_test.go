package ack

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkMemoryWindow1M reports the tracker's memory with 1,000,000
// records in the in-flight window, half of them acked at random (and the
// share that stays after all acks but one per 1,000). The baseline is the
// 16-byte slot per offset of the window ring.
func BenchmarkMemoryWindow1M(b *testing.B) {
	const window = 1_000_000
	for _, acked := range []float64{0.5, 0.999} {
		b.Run(fmt.Sprintf("acked=%v", acked), func(b *testing.B) {
			var perRecord, bitmap float64
			for range b.N {
				before := heapInUse()
				tr, held := steadyTracker(b, window)
				rng := rand.New(rand.NewPCG(7, 7))
				rng.Shuffle(len(held), func(i, j int) { held[i], held[j] = held[j], held[i] })
				for _, off := range held[:int(acked*window)] {
					if err := tr.Ack(1, off); err != nil {
						b.Fatal(err)
					}
				}
				tr.Ready()
				tr.Advance()
				held = nil
				after := heapInUse()
				perRecord = float64(after-before) / window
				bitmap = float64(tr.done.GetSizeInBytes()) / window
				runtime.KeepAlive(tr)
			}
			b.ReportMetric(perRecord, "B/record")
			b.ReportMetric(bitmap, "bitmap-B/record")
		})
	}
}

// BenchmarkAck: ack one record at random in a window of 4,096 and hand
// out the next (the steady state of a shared subscription).
func BenchmarkAck(b *testing.B) {
	const window = 4096
	tr, held := steadyTracker(b, window)
	rng := rand.New(rand.NewPCG(1, 1))
	next := uint64(window)
	dst := make([]Range, 0, 8)
	b.ReportAllocs()
	for n := range b.N {
		i := rng.IntN(len(held))
		tr.Ack(1, held[i])
		dst, _ = tr.Acquire(dst[:0], 1, t0, 1, next+1, nil)
		if len(dst) == 0 {
			held[i] = held[len(held)-1]
			held = held[:len(held)-1]
			if len(held) == 0 {
				b.Fatal("window drained")
			}
			continue
		}
		held[i] = dst[0].Start
		next++
		if n%64 == 0 {
			tr.Ready()
			tr.Advance()
		}
	}
}

// BenchmarkSnapshotRestore: encode and restore the state of a 100,000
// record window with random acks.
func BenchmarkSnapshotRestore(b *testing.B) {
	const window = 100_000
	tr, held := steadyTracker(b, window)
	rng := rand.New(rand.NewPCG(3, 3))
	for _, off := range held {
		if rng.IntN(2) == 0 {
			tr.Ack(1, off)
		}
	}
	var buf []byte
	b.ReportAllocs()
	for range b.N {
		s := tr.Snapshot()
		buf = AppendSnapshot(buf[:0], &s)
		if _, err := Restore(tr.cfg, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf))/window, "snapshot-B/record")
	_ = time.Second
}
