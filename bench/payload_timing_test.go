package bench

import (
	"testing"

	"github.com/ringmq/ringmq/proto"
)

// BenchmarkStamp is the producer's per-batch cost (patch send times, redo
// the CRC); the baseline is building the same batch record by record.
func BenchmarkStamp(b *testing.B) {
	for _, size := range []int{100, 1024} {
		n := DefaultBatchBytes / size
		b.Run(sizeName(size), func(b *testing.B) {
			tpl := newTemplate(n, size)
			b.SetBytes(int64(n * size))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				tpl.stamp(n, int64(i), 0)
			}
		})
		b.Run(sizeName(size)+"/baseline-build", func(b *testing.B) {
			payload := fillerPayload(size)
			var bb proto.BatchBuilder
			buf := make([]byte, 0, 2*DefaultBatchBytes)
			b.SetBytes(int64(n * size))
			b.ReportAllocs()
			for b.Loop() {
				bb.Reset(buf)
				for range n {
					bb.Append(0, nil, payload, nil)
				}
				buf = bb.Finish()[:0]
			}
		})
	}
}

func sizeName(n int) string {
	if n >= 1024 {
		return "1KiB"
	}
	return "100B"
}
