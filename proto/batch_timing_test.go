package proto

import (
	"hash/crc32"
	"testing"
)

// Baseline for these numbers: BenchmarkCRC32C64KiB, the checksum alone over
// the same bytes ValidateBatch checks (ValidateBatch should be within a few
// percent of it).

func BenchmarkBatchBuilderAppend(b *testing.B) {
	for _, size := range []int{100, 1024} {
		b.Run(sizeName(size), func(b *testing.B) {
			key, val := []byte("key-000000"), make([]byte, size)
			var bb BatchBuilder
			buf := make([]byte, 0, 1<<20+2*size)
			bb.Reset(buf)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if bb.Size() >= 1<<20 {
					buf = bb.Finish()
					bb.Reset(buf)
				}
				bb.Append(int64(i), key, val, nil)
			}
		})
	}
}

func sizeName(n int) string {
	if n >= 1024 {
		return itoa(n>>10) + "KiB"
	}
	return itoa(n) + "B"
}

func batchOfSize(total, recordSize int) []byte {
	var bb BatchBuilder
	bb.Reset(nil)
	val := make([]byte, recordSize)
	for bb.Size()+recordSize+16 <= total {
		bb.Append(1_700_000_000_000, nil, val, nil)
	}
	return bb.Finish()
}

func BenchmarkValidateBatch64KiB(b *testing.B) {
	batch := batchOfSize(64<<10, 1000)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, err := ValidateBatch(batch); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCRC32C64KiB(b *testing.B) {
	batch := batchOfSize(64<<10, 1000)
	tab := crc32.MakeTable(crc32.Castagnoli)
	b.SetBytes(int64(len(batch)))
	for i := 0; i < b.N; i++ {
		_ = crc32.Checksum(batch[offAttributes:], tab)
	}
}

func BenchmarkRecordIter64KiB(b *testing.B) {
	batch := batchOfSize(64<<10, 100)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		it, _ := NewRecordIter(batch)
		for it.Next() {
		}
	}
}

// Request decoding on the server's hot path, into a warm struct.
func BenchmarkDecodeRequest(b *testing.B) {
	for _, mt := range dataMsgTypes() {
		if mt.name != "ProduceRequest" && mt.name != "FetchRequest" {
			continue
		}
		b.Run(mt.name, func(b *testing.B) {
			body := mt.samples[0].AppendTo(nil)
			m := mt.new()
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := m.Decode(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
