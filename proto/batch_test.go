package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// rawRecord encodes one record by hand, so tests can write what the builder
// never would. lenAdjust is added to the record's length field.
func rawRecord(tsDelta, offDelta int64, key, value []byte, headerCount int64, headers []byte, lenAdjust int64) []byte {
	body := []byte{0}
	body = binary.AppendVarint(body, tsDelta)
	body = binary.AppendVarint(body, offDelta)
	body = appendVarBytes(body, key)
	body = appendVarBytes(body, value)
	body = binary.AppendVarint(body, headerCount)
	body = append(body, headers...)
	out := binary.AppendVarint(nil, int64(len(body))+lenAdjust)
	return append(out, body...)
}

// craftBatch wraps a records section in a header with a valid CRC.
func craftBatch(attrs uint16, count uint32, records ...[]byte) []byte {
	b := make([]byte, BatchHeaderSize)
	for _, r := range records {
		b = append(b, r...)
	}
	return FinishBatch(b, attrs, count, 1000, 1000, -1, -1, -1)
}

func TestValidateBatchTable(t *testing.T) {
	good := sampleBatch(3)
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	put32 := func(off int, v uint32) []byte {
		return mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[off:], v); return b })
	}
	cases := []struct {
		name  string
		batch []byte
		want  error
		msg   string
	}{
		{"valid", good, nil, ""},
		{"empty", nil, ErrShortBatch, ""},
		{"header cut", good[:BatchHeaderSize-1], ErrShortBatch, ""},
		{"torn tail", good[:len(good)-1], ErrShortBatch, ""},
		{"header only", good[:BatchHeaderSize], ErrShortBatch, ""},
		{"bad magic", mutate(func(b []byte) []byte { b[offMagic] = 3; return b }), ErrCorrupt, "magic"},
		{"version 1", mutate(func(b []byte) []byte { b[offMagic], b[v1OffMagic] = 1, 1; return b }), ErrBatchVersion, "upgrade the producer"},
		{"crc mismatch", mutate(func(b []byte) []byte { b[len(b)-3] ^= 1; return b }), ErrCorrupt, "crc"},
		{"crc field flipped", mutate(func(b []byte) []byte { b[offCRC] ^= 0x80; return b }), ErrCorrupt, "crc"},
		{"attributes flipped", mutate(func(b []byte) []byte { b[offAttributes+1] ^= byte(AttrLogAppendTime); return b }), ErrCorrupt, "crc"},
		{"length below header", put32(offBatchLength, BatchHeaderSize-batchLengthOverhead-1), ErrCorrupt, "batch_length"},
		{"length above max", put32(offBatchLength, MaxBatchSize+1), ErrCorrupt, "batch_length"},
		{"record count 0", put32(offRecordCount, 0), ErrCorrupt, "record_count"},
		{"last offset delta", put32(offLastOffsetDelta, 5), ErrCorrupt, "last_offset_delta"},
		{"unknown attribute", craftBatch(1<<6, 1, rawRecord(0, 0, nil, nil, 0, nil, 0)), ErrCorrupt, "attributes"},
		{"unknown codec", craftBatch(5, 1, rawRecord(0, 0, nil, nil, 0, nil, 0)), ErrCorrupt, "attributes"},
	}
	for _, c := range cases {
		h, rest, err := ValidateBatch(c.batch)
		switch {
		case c.want == nil && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want == nil && (len(rest) != 0 || h.RecordCount != 3 || h.Size() != len(good)):
			t.Errorf("%s: header %+v rest %d", c.name, h, len(rest))
		case c.want != nil && (!errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg)):
			t.Errorf("%s: err = %v, want %v containing %q", c.name, err, c.want, c.msg)
		}
	}
}

func TestValidateBatchesBackToBack(t *testing.T) {
	a, b := sampleBatch(1), sampleBatch(4)
	SetBaseOffset(b, 1) // not covered by the CRC
	stream := append(append([]byte(nil), a...), b...)
	h1, rest, err := ValidateBatch(stream)
	if err != nil || h1.NextOffset() != 1 || len(rest) != len(b) {
		t.Fatalf("first: %+v %v", h1, err)
	}
	h2, rest, err := ValidateBatch(rest)
	if err != nil || h2.BaseOffset != 1 || h2.LastOffset() != 4 || len(rest) != 0 {
		t.Fatalf("second: %+v rest %d %v", h2, len(rest), err)
	}
}

func TestRecordIterCorruptRecords(t *testing.T) {
	ok := rawRecord(0, 0, []byte("k"), []byte("v"), 0, nil, 0)
	cases := []struct {
		name  string
		count uint32
		recs  [][]byte
	}{
		{"records missing", 3, [][]byte{ok, rawRecord(0, 1, nil, nil, 0, nil, 0)}},
		{"record length zero", 1, [][]byte{{0}}},
		{"record length negative", 1, [][]byte{binary.AppendVarint(nil, -5)}},
		{"record length past section", 1, [][]byte{rawRecord(0, 0, nil, nil, 0, nil, 3)}},
		{"record cut inside", 1, [][]byte{rawRecord(0, 0, []byte("key"), nil, 0, nil, -3)}},
		{"offset delta past last", 2, [][]byte{ok, rawRecord(0, 2, nil, nil, 0, nil, 0)}},
		{"offset delta negative", 1, [][]byte{rawRecord(0, -1, nil, nil, 0, nil, 0)}},
		{"header count negative", 1, [][]byte{rawRecord(0, 0, nil, nil, -1, nil, 0)}},
		{"header count past record", 1, [][]byte{rawRecord(0, 0, nil, nil, 5, []byte{0}, 0)}},
		{"key length below -1", 1, [][]byte{{4, 0, 0, 0, 3}}},
		{"bad varint", 1, [][]byte{bytes.Repeat([]byte{0xFF}, 11)}},
	}
	for _, c := range cases {
		batch := craftBatch(0, c.count, c.recs...)
		if _, _, err := ValidateBatch(batch); err != nil {
			t.Fatalf("%s: crafted batch does not validate: %v", c.name, err)
		}
		it, err := NewRecordIter(batch)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for it.Next() {
		}
		if !errors.Is(it.Err(), ErrCorrupt) {
			t.Errorf("%s: Err() = %v, want ErrCorrupt", c.name, it.Err())
		}
	}
}

func TestRecordIterCompressedAndShort(t *testing.T) {
	lz4 := craftBatch(uint16(CodecLZ4), 1, []byte("compressed bytes"))
	if _, _, err := ValidateBatch(lz4); err != nil {
		t.Fatal(err)
	}
	if _, err := NewRecordIter(lz4); err == nil || !strings.Contains(err.Error(), "compressed") {
		t.Fatalf("NewRecordIter(lz4) = %v", err)
	}
	h, _ := ParseBatchHeader(lz4)
	it := NewRecordIterRecords(h, rawRecord(0, 0, nil, []byte("v"), 0, nil, 0))
	if !it.Next() || string(it.Record().Value) != "v" || it.Next() || it.Err() != nil {
		t.Fatalf("NewRecordIterRecords: %v", it.Err())
	}
	good := sampleBatch(2)
	if _, err := NewRecordIter(good[:len(good)-1]); !errors.Is(err, ErrShortBatch) {
		t.Fatalf("NewRecordIter(torn) = %v", err)
	}
	if _, err := NewRecordIter(good[:10]); !errors.Is(err, ErrShortBatch) {
		t.Fatalf("NewRecordIter(10 bytes) = %v", err)
	}
}

func TestBatchBuilderRecords(t *testing.T) {
	var b BatchBuilder
	b.Append(50, nil, []byte{}, nil) // Append without Reset starts a batch
	b.Append(40, []byte{}, nil, []Header{{Key: "a", Value: nil}, {Key: "", Value: []byte("x")}})
	b.Append(90, []byte("k"), []byte("v"), nil)
	batch := b.Finish()
	h, _, err := ValidateBatch(batch)
	if err != nil || h.FirstTimestamp != 50 || h.MaxTimestamp != 90 || h.ProducerID != -1 || b.Count() != 3 || b.Size() != len(batch) {
		t.Fatalf("%+v %v", h, err)
	}
	it, _ := NewRecordIter(batch)
	var got []Record
	var hdrs []Header
	for it.Next() {
		r := *it.Record()
		got = append(got, r)
		hdrs = r.Headers(hdrs)
	}
	if it.Err() != nil || len(got) != 3 {
		t.Fatalf("%d records, %v", len(got), it.Err())
	}
	if got[0].Key != nil || got[0].Value == nil || len(got[0].Value) != 0 || got[0].Timestamp != 50 {
		t.Errorf("record 0: %+v", got[0])
	}
	if got[1].Key == nil || got[1].Value != nil || got[1].Timestamp != 40 || got[1].Offset != 1 {
		t.Errorf("record 1: %+v", got[1])
	}
	if len(hdrs) != 2 || hdrs[0].Key != "a" || hdrs[0].Value != nil || hdrs[1].Key != "" || string(hdrs[1].Value) != "x" {
		t.Errorf("headers: %+v", hdrs)
	}
}

func TestBatchBuilderReuseAllocs(t *testing.T) {
	var b BatchBuilder
	buf := make([]byte, 0, 64<<10)
	key, val := []byte("key"), make([]byte, 100)
	allocs := testing.AllocsPerRun(50, func() {
		b.Reset(buf)
		for i := 0; i < 100; i++ {
			b.Append(int64(i), key, val, nil)
		}
		buf = b.Finish()
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per batch, want 0", allocs)
	}
}

func TestFinishEmptyBatchPanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.HasPrefix(r.(string), "BUG:") {
			t.Fatalf("recover() = %v, want a BUG: panic", r)
		}
	}()
	var b BatchBuilder
	b.Reset(nil)
	b.Finish()
}
