package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/golang/snappy"
)

func TestValidateRecordsAcceptsBuilderOutput(t *testing.T) {
	batch := compressibleBatch(rand.New(rand.NewPCG(5, 6)), 50)
	for _, codec := range allCodecs {
		if err := ValidateRecords(CompressBatch(nil, batch, codec)); err != nil {
			t.Errorf("%v: %v", codec, err)
		}
	}
	if err := ValidateRecords(goldenBatch()); err != nil {
		t.Fatal(err)
	}
}

// TestValidateRecordsTable: every way records can contradict a valid
// header is refused with ErrInvalidRecords.
func TestValidateRecordsTable(t *testing.T) {
	ok := func(off int64) []byte { return rawRecord(0, off, []byte("k"), []byte("v"), 0, nil, 0) }
	header := append(appendVarBytes(nil, []byte("h")), appendVarBytes(nil, []byte("v"))...)
	cases := []struct {
		name  string
		count uint32
		recs  [][]byte
	}{
		{"count above records", 3, [][]byte{ok(0), ok(1)}},
		{"count below records", 1, [][]byte{ok(0), ok(1)}},
		{"record length zero", 1, [][]byte{{0}}},
		{"record length past section", 1, [][]byte{rawRecord(0, 0, nil, nil, 0, nil, 3)}},
		{"record cut inside", 1, [][]byte{rawRecord(0, 0, []byte("key"), nil, 0, nil, -3)}},
		{"bytes left in record", 1, [][]byte{rawRecord(0, 0, nil, nil, 0, []byte{9}, 0)}},
		{"offset delta skips", 2, [][]byte{ok(0), ok(2)}},
		{"offset delta repeats", 2, [][]byte{ok(0), ok(0)}},
		{"key length below -1", 1, [][]byte{{4, 0, 0, 0, 3}}},
		{"header count past record", 1, [][]byte{rawRecord(0, 0, nil, nil, 5, header, 0)}},
		{"header count negative", 1, [][]byte{rawRecord(0, 0, nil, nil, -1, nil, 0)}},
		{"null header key", 1, [][]byte{rawRecord(0, 0, nil, nil, 1, []byte{1, 0}, 0)}},
		{"bad varint", 1, [][]byte{bytes.Repeat([]byte{0xFF}, 11)}},
		{"trailing bytes", 1, [][]byte{ok(0), {0, 0}}},
	}
	for _, c := range cases {
		batch := craftBatch(0, c.count, c.recs...)
		if _, _, err := ValidateBatch(batch); err != nil {
			t.Fatalf("%s: crafted batch does not validate: %v", c.name, err)
		}
		if err := ValidateRecords(batch); !errors.Is(err, ErrInvalidRecords) {
			t.Errorf("%s: ValidateRecords = %v, want ErrInvalidRecords", c.name, err)
		}
	}
	valid := craftBatch(0, 2, ok(0), rawRecord(0, 1, nil, nil, 1, header, 0))
	if err := ValidateRecords(valid); err != nil {
		t.Fatal(err)
	}
	for _, codec := range allCodecs[1:] {
		garbage := craftBatch(uint16(codec), 1, []byte("not a compressed stream"))
		if err := ValidateRecords(garbage); !errors.Is(err, ErrInvalidRecords) {
			t.Errorf("%v garbage: %v", codec, err)
		}
		lying := CompressBatch(nil, craftBatch(0, 1, ok(0), ok(1)), codec)
		if err := ValidateRecords(lying); !errors.Is(err, ErrInvalidRecords) {
			t.Errorf("%v with a lying count: %v", codec, err)
		}
	}
}

func TestValidateRecordsAllocs(t *testing.T) {
	batch := compressibleBatch(rand.New(rand.NewPCG(7, 8)), 100)
	if n := testing.AllocsPerRun(100, func() {
		if err := ValidateRecords(batch); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per uncompressed batch", n)
	}
}

// TestSnappyForms: snappy batches are written in Kafka's xerial framing,
// several chunks for large sections, and a single raw block (what
// librdkafka and ringmq version 1 wrote) reads too.
func TestSnappyForms(t *testing.T) {
	batch := compressibleBatch(rand.New(rand.NewPCG(9, 10)), 2000)
	h, _ := ParseBatchHeader(batch)
	records := BatchRecords(batch, &h)
	if len(records) < 2*xerialBlockSize {
		t.Fatalf("test batch of %d bytes is too small for several chunks", len(records))
	}
	framed := CompressBatch(nil, batch, CodecSnappy)
	section := framed[BatchHeaderSize:]
	if !bytes.HasPrefix(section, []byte("\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01")) {
		t.Fatalf("snappy section starts %x, want the xerial header", section[:16])
	}
	first := binary.BigEndian.Uint32(section[16:])
	if n, err := snappy.DecodedLen(section[20 : 20+first]); err != nil || n != xerialBlockSize {
		t.Fatalf("first chunk decodes to %d bytes (%v), want %d", n, err, xerialBlockSize)
	}
	raw := withRecords(CodecSnappy, h.RecordCount, snappy.Encode(nil, records))
	for name, b := range map[string][]byte{"xerial": framed, "raw block": raw} {
		got, err := DecompressRecords(nil, b)
		if err != nil || !bytes.Equal(got, records) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, cut := range []int{10, 18, len(section) - 1} {
		if _, err := DecompressRecords(nil, withRecords(CodecSnappy, h.RecordCount, section[:cut])); !errors.Is(err, ErrCorrupt) {
			t.Errorf("xerial cut at %d: %v", cut, err)
		}
	}
}

// FuzzValidateRecords: whatever ValidateRecords accepts, every consumer
// reads: the record iterator yields exactly record_count records, without
// error. Inputs are records sections (uncompressed and under every codec)
// with a record count taken from the input.
func FuzzValidateRecords(f *testing.F) {
	good := goldenBatch()
	f.Add(uint8(4), good[BatchHeaderSize:])
	f.Add(uint8(1), rawRecord(0, 0, nil, nil, 1, []byte{2, 'h', 1}, 0))
	f.Fuzz(func(t *testing.T, count uint8, section []byte) {
		if count == 0 {
			return
		}
		batches := [][]byte{craftBatch(0, uint32(count), section)}
		for _, codec := range allCodecs[1:] {
			batches = append(batches, CompressBatch(nil, batches[0], codec))
		}
		for _, batch := range batches {
			err := ValidateRecords(batch)
			if err != nil {
				if !errors.Is(err, ErrInvalidRecords) {
					t.Fatalf("unclassified error %v", err)
				}
				continue
			}
			it, _, err := NewBatchIter(nil, batch)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for ; it.Next(); n++ {
				_ = it.Record().Headers(nil)
			}
			if it.Err() != nil || n != int(count) {
				t.Fatalf("accepted batch reads %d of %d records: %v", n, count, it.Err())
			}
		}
	})
}
