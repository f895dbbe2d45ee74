package replica

import (
	"fmt"
	"testing"
)

// BenchmarkIdempotentProducePath is BenchmarkProducePath/interval/acks=1
// with an idempotent batch: CheckProducer before the plan, and the batch
// joining its producer's state when it becomes visible. The baseline is
// that benchmark in the same run; the difference is the cost of
// idempotence per produce part.
func BenchmarkIdempotentProducePath(b *testing.B) {
	for _, producers := range []int{1, 1000} {
		b.Run(fmt.Sprintf("producers=%d", producers), func(b *testing.B) {
			r, err := New(intervalConfig(), Offsets{})
			if err != nil {
				b.Fatal(err)
			}
			r.Tick(t0)
			seqs := make([]int32, producers)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				id := i % producers
				pb := ProducerBatch{ProducerID: int64(id), BaseSeq: seqs[id], Count: 1}
				if _, err := r.CheckProducer(pb); err != nil {
					b.Fatal(err)
				}
				seqs[id]++
				base := uint64(i)
				r.AppendPlanned(Append{Base: base, Last: base, Bytes: 1024, Level: AckLeader, Token: Token(i), Producer: pb})
				r.AppendCompleted(base)
				r.Ready()
				r.Advance()
			}
		})
	}
}

// BenchmarkProducerSnapshot encodes and decodes the snapshot of 1000
// producers with five batches each.
func BenchmarkProducerSnapshot(b *testing.B) {
	var s ProducerState
	var off uint64
	for i := 0; i < 5; i++ {
		for id := int64(0); id < 1000; id++ {
			if err := s.Replay(LogBatch{ProducerBatch: ProducerBatch{ProducerID: id, BaseSeq: int32(i), Count: 1}, BaseOffset: off, LastOffset: off}); err != nil {
				b.Fatal(err)
			}
			off++
		}
	}
	snap := s.Snapshot()
	enc := AppendProducerSnapshot(nil, &snap)
	b.Run("append", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		b.ReportAllocs()
		buf := make([]byte, 0, len(enc))
		for b.Loop() {
			buf = AppendProducerSnapshot(buf[:0], &snap)
		}
	})
	b.Run("parse", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := ParseProducerSnapshot(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}
