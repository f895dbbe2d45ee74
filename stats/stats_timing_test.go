package stats

import (
	"testing"
	"time"
)

// Baseline for these: an uncontended atomic add is ~1-5 ns on this class of
// machine; the histogram takes a mutex and a log10.

func BenchmarkTopicProduced(b *testing.B) {
	tp := ForTopic("bench")
	b.ReportAllocs()
	for b.Loop() {
		tp.Produced(16, 16<<10)
	}
}

func BenchmarkTopicProducedParallel(b *testing.B) {
	tp := ForTopic("bench")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tp.Produced(16, 16<<10)
		}
	})
}

func BenchmarkAPIObserve(b *testing.B) {
	a := API("bench")
	b.ReportAllocs()
	for b.Loop() {
		a.Observe(750 * time.Microsecond)
	}
}

func BenchmarkForTopicCached(b *testing.B) {
	ForTopic("bench")
	b.ReportAllocs()
	for b.Loop() {
		ForTopic("bench")
	}
}
