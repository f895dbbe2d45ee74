package proto

import (
	"math/rand/v2"
	"testing"
)

// The cost of ValidateRecords at produce, per 64 KiB batch. Baseline:
// BenchmarkValidateBatch64KiB (header and CRC, what produce checked
// before) over the same bytes; for compressed batches the baseline is the
// decompression alone (BenchmarkDecompressOnly), which dominates.

func BenchmarkValidateRecords64KiB(b *testing.B) {
	for _, size := range []int{100, 1000} {
		b.Run(sizeName(size), func(b *testing.B) {
			batch := batchOfSize(64<<10, size)
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := ValidateRecords(batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkValidateRecordsCompressed64KiB(b *testing.B) {
	batch := compressibleBatch(rand.New(rand.NewPCG(1, 1)), 200)
	for _, codec := range allCodecs[1:] {
		cb := CompressBatch(nil, batch, codec)
		b.Run(codec.String(), func(b *testing.B) {
			b.SetBytes(int64(len(batch))) // uncompressed bytes
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := ValidateRecords(cb); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecompressOnly(b *testing.B) {
	batch := compressibleBatch(rand.New(rand.NewPCG(1, 1)), 200)
	for _, codec := range allCodecs[1:] {
		cb := CompressBatch(nil, batch, codec)
		b.Run(codec.String(), func(b *testing.B) {
			b.SetBytes(int64(len(batch)))
			var scratch []byte
			for i := 0; i < b.N; i++ {
				out, err := DecompressRecords(scratch[:0], cb)
				if err != nil {
					b.Fatal(err)
				}
				scratch = out
			}
		})
	}
}
