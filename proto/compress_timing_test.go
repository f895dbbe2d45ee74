package proto

import (
	"math/rand/v2"
	"testing"
)

// Baseline: BenchmarkCompressCopy64KiB copies the same batch (what
// CompressBatch with CodecNone does); each codec's compress and decompress
// are compared with it. The batch is moderately compressible (repetitive
// values and keys), like typical JSON-ish event payloads.

func benchBatch64KiB() []byte {
	rng := rand.New(rand.NewPCG(7, 7))
	var b BatchBuilder
	b.Reset(nil)
	for b.Size() < 64<<10 {
		b.Append(1_700_000_000_000, []byte("user-"+itoa(rng.IntN(1000))),
			[]byte(`{"event":"click","page":"/product/`+itoa(rng.IntN(5000))+`","session":"`+itoa(rng.IntN(1e6))+`"}`), nil)
	}
	return append([]byte(nil), b.Finish()...)
}

func BenchmarkCompressCopy64KiB(b *testing.B) {
	batch := benchBatch64KiB()
	var dst []byte
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		dst = CompressBatch(dst[:0], batch, CodecNone)
	}
}

func BenchmarkCompressBatch64KiB(b *testing.B) {
	batch := benchBatch64KiB()
	for _, codec := range allCodecs[1:] {
		b.Run(codec.String(), func(b *testing.B) {
			var dst []byte
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			for b.Loop() {
				dst = CompressBatch(dst[:0], batch, codec)
			}
			b.ReportMetric(float64(len(batch))/float64(len(dst)), "ratio")
		})
	}
}

func BenchmarkDecompressRecords64KiB(b *testing.B) {
	batch := benchBatch64KiB()
	for _, codec := range allCodecs[1:] {
		b.Run(codec.String(), func(b *testing.B) {
			cb := CompressBatch(nil, batch, codec)
			var scratch []byte
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			for b.Loop() {
				out, err := DecompressRecords(scratch, cb)
				if err != nil {
					b.Fatal(err)
				}
				scratch = out
			}
		})
	}
}
