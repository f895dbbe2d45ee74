package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

var allCodecs = []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}

// compressibleBatch builds a batch of n records with repetitive values,
// null and present keys, and headers, from a seeded generator.
func compressibleBatch(rng *rand.Rand, n int) []byte {
	var b BatchBuilder
	b.Reset(nil)
	b.SetProducer(9, 2, 500)
	for i := 0; i < n; i++ {
		var key []byte
		if i%3 != 0 {
			key = fmt.Appendf(nil, "user-%d", rng.IntN(100))
		}
		val := bytes.Repeat([]byte(fmt.Sprintf("event %d payload ", rng.IntN(10))), 1+rng.IntN(20))
		var hdrs []Header
		if i%2 == 0 {
			hdrs = []Header{{Key: "trace", Value: fmt.Appendf(nil, "%x", rng.Uint64())}, {Key: "empty", Value: nil}}
		}
		b.Append(1_700_000_000_000+int64(i*7), key, val, hdrs)
	}
	out := append([]byte(nil), b.Finish()...)
	SetBaseOffset(out, 12345)
	return out
}

// collectRecords decodes every record of an iterator into comparable values.
func collectRecords(t *testing.T, it RecordIter) []string {
	t.Helper()
	var out []string
	for it.Next() {
		r := it.Record()
		out = append(out, fmt.Sprintf("%d %d %q %v %q %v", r.Offset, r.Timestamp, r.Key, r.Key == nil,
			r.Value, r.Headers(nil)))
	}
	if err := it.Err(); err != nil {
		t.Fatalf("records: %v", err)
	}
	return out
}

func TestCompressRoundTrip(t *testing.T) {
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("seed %d", seed)
	for _, n := range []int{1, 7, 300} {
		batch := compressibleBatch(rng, n)
		plain, err := NewRecordIter(batch)
		if err != nil {
			t.Fatal(err)
		}
		want := collectRecords(t, plain)
		for _, codec := range allCodecs {
			t.Run(fmt.Sprintf("%v/%d", codec, n), func(t *testing.T) {
				checkCompressed(t, batch, codec, want)
			})
		}
	}
}

func checkCompressed(t *testing.T, batch []byte, codec Codec, want []string) {
	prefix := []byte("prefix")
	out := CompressBatch(append([]byte(nil), prefix...), batch, codec)
	if !bytes.HasPrefix(out, prefix) {
		t.Fatal("CompressBatch did not append to dst")
	}
	cb := out[len(prefix):]
	h, rest, err := ValidateBatch(cb)
	if err != nil || len(rest) != 0 {
		t.Fatalf("ValidateBatch: %v, %d bytes left (seed above)", err, len(rest))
	}
	orig, _ := ParseBatchHeader(batch)
	if h.Codec() != codec || h.Attributes&^AttrCodecMask != orig.Attributes&^AttrCodecMask {
		t.Errorf("attributes %#x, want codec %v over %#x", h.Attributes, codec, orig.Attributes)
	}
	h.BatchLength, h.CRC, h.Attributes = orig.BatchLength, orig.CRC, orig.Attributes
	if h != orig {
		t.Errorf("header changed:\n got %+v\nwant %+v", h, orig)
	}
	if codec != CodecNone && len(cb) >= len(batch) && len(want) > 10 {
		t.Errorf("%v: %d bytes compressed to %d", codec, len(batch), len(cb))
	}
	records, err := DecompressRecords(nil, cb)
	if err != nil || !bytes.Equal(records, batch[BatchHeaderSize:]) {
		t.Fatalf("DecompressRecords: %v, equal %v", err, bytes.Equal(records, batch[BatchHeaderSize:]))
	}
	it, scratch, err := NewBatchIter(make([]byte, 3), cb)
	if err != nil {
		t.Fatal(err)
	}
	if got := collectRecords(t, it); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("records differ:\n got %q\nwant %q", got, want)
	}
	if codec != CodecNone && cap(scratch) < len(records) {
		t.Errorf("NewBatchIter returned scratch of cap %d, want it to hold the %d records", cap(scratch), len(records))
	}
}

func TestCompressBatchRejectsBadInput(t *testing.T) {
	batch := sampleBatch(2)
	lz4 := CompressBatch(nil, batch, CodecLZ4)
	for name, f := range map[string]func(){
		"compressed input": func() { CompressBatch(nil, lz4, CodecZstd) },
		"short input":      func() { CompressBatch(nil, batch[:len(batch)-1], CodecLZ4) },
		"unknown codec":    func() { CompressBatch(nil, batch, Codec(5)) },
		"garbage":          func() { CompressBatch(nil, []byte("not a batch"), CodecLZ4) },
	} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.HasPrefix(fmt.Sprint(r), "BUG:") {
					t.Errorf("%s: recovered %v, want a BUG panic", name, r)
				}
			}()
			f()
		}()
	}
}

// withRecords returns a finished batch with codec bits codec whose records
// section is raw, as a hostile or broken producer might send.
func withRecords(codec Codec, count uint32, raw []byte) []byte {
	b := append(make([]byte, BatchHeaderSize), raw...)
	return FinishBatch(b, uint16(codec), count, 1000, 1000, -1, -1, -1)
}

func TestDecompressCorrupt(t *testing.T) {
	zeros := make([]byte, 1<<20)
	big := compressibleBatch(rand.New(rand.NewPCG(1, 2)), 50)
	cases := []struct {
		name  string
		batch []byte
		limit int
	}{
		{"lz4 garbage", withRecords(CodecLZ4, 1, []byte("not an lz4 frame")), MaxDecompressedSize},
		{"zstd garbage", withRecords(CodecZstd, 1, []byte("not a zstd frame")), MaxDecompressedSize},
		{"snappy garbage", withRecords(CodecSnappy, 1, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), MaxDecompressedSize},
		{"snappy claims 1 GiB", withRecords(CodecSnappy, 1, binary.AppendUvarint(nil, 1<<30)), MaxDecompressedSize},
		{"lz4 trailing bytes", trailing(CompressBatch(nil, big, CodecLZ4)), MaxDecompressedSize},
		{"zstd trailing bytes", trailing(CompressBatch(nil, big, CodecZstd)), MaxDecompressedSize},
		{"snappy trailing bytes", trailing(CompressBatch(nil, big, CodecSnappy)), MaxDecompressedSize},
		{"lz4 bomb", compressZeros(zeros, CodecLZ4), len(zeros) - 1},
		{"zstd bomb", compressZeros(zeros, CodecZstd), len(zeros) - 1},
		{"snappy bomb", compressZeros(zeros, CodecSnappy), len(zeros) - 1},
	}
	for _, c := range cases {
		out, err := decompressRecords(nil, c.batch, c.limit)
		if !errors.Is(err, ErrCorrupt) || out != nil {
			t.Errorf("%s: got %d bytes, %v; want ErrCorrupt", c.name, len(out), err)
		}
	}
	for _, codec := range allCodecs[1:] { // the same bombs within the limit decode
		out, err := decompressRecords(nil, compressZeros(zeros, codec), len(zeros))
		if err != nil || len(out) != len(zeros) {
			t.Errorf("%v: %d zeros at the limit: got %d bytes, %v", codec, len(zeros), len(out), err)
		}
	}
}

// trailing appends two bytes to a compressed batch's records section and
// refreshes its length and CRC.
func trailing(batch []byte) []byte {
	h, _ := ParseBatchHeader(batch)
	b := append(append([]byte(nil), batch...), 0, 0)
	return FinishBatch(b, h.Attributes, h.RecordCount, h.FirstTimestamp, h.MaxTimestamp, -1, -1, -1)
}

func compressZeros(zeros []byte, codec Codec) []byte {
	return withRecords(codec, 1, appendCompressed(nil, zeros, codec))
}

func TestCodecNames(t *testing.T) {
	for _, c := range allCodecs {
		got, err := ParseCodec(c.String())
		if err != nil || got != c {
			t.Errorf("ParseCodec(%q) = %v, %v", c.String(), got, err)
		}
	}
	if _, err := ParseCodec("brotli"); err == nil {
		t.Error("ParseCodec(brotli) succeeded")
	}
}

// FuzzDecompressRecords feeds arbitrary bytes as the records section of a
// batch under every codec, and as a whole batch. Invariants: no panic;
// failures are ErrCorrupt or ErrShortBatch; output never exceeds
// MaxDecompressedSize; records that decompress iterate without panicking.
func FuzzDecompressRecords(f *testing.F) {
	batch := compressibleBatch(rand.New(rand.NewPCG(3, 4)), 20)
	for _, codec := range allCodecs {
		cb := CompressBatch(nil, batch, codec)
		f.Add(cb[BatchHeaderSize:])
		f.Add(cb)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		inputs := [][]byte{data[:len(data):len(data)]}
		for _, codec := range allCodecs {
			inputs = append(inputs, withRecords(codec, 3, data))
		}
		var scratch []byte
		for _, in := range inputs {
			records, err := DecompressRecords(scratch, in)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrShortBatch) {
					t.Fatalf("unclassified error %v", err)
				}
				continue
			}
			if len(records) > MaxDecompressedSize {
				t.Fatalf("%d bytes decompressed, limit %d", len(records), MaxDecompressedSize)
			}
			h, _ := ParseBatchHeader(in)
			it := NewRecordIterRecords(h, records)
			for it.Next() {
				_ = it.Record().Headers(nil)
			}
			if err := it.Err(); err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("records: unclassified error %v", err)
			}
			if h.Codec() != CodecNone {
				scratch = records
			}
		}
	})
}

// TestCompressBatchKeepsBrokerFields: compressing a stored batch keeps the
// base offset and leader epoch the broker stamped.
func TestCompressBatchKeepsBrokerFields(t *testing.T) {
	batch := compressibleBatch(rand.New(rand.NewPCG(11, 12)), 10)
	SetBaseOffset(batch, 77)
	SetLeaderEpoch(batch, 5)
	for _, codec := range allCodecs {
		h, _, err := ValidateBatch(CompressBatch(nil, batch, codec))
		if err != nil || h.BaseOffset != 77 || h.LeaderEpoch != 5 || h.Codec() != codec {
			t.Fatalf("%v: %+v %v", codec, h, err)
		}
	}
}
