package proto

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "regenerate the golden files and fuzz seeds under testdata")

const goldenBatchPath = "testdata/batch_v2.hex"

type goldenRecord struct {
	ts         int64
	key, value []byte
	headers    []Header
}

// goldenRecords covers keys, a nil key, an empty key, a nil value, headers
// (one with a nil value) and timestamps that go backwards.
var goldenRecords = []goldenRecord{
	{1_700_000_000_000, []byte("user-1"), []byte("created"), nil},
	{1_700_000_000_250, nil, []byte("no key"), []Header{{Key: "trace", Value: []byte("a1b2")}}},
	{1_699_999_999_990, []byte{}, nil, []Header{{Key: "k", Value: []byte("v")}, {Key: "empty", Value: nil}}},
	{1_700_000_001_000, []byte("user-2"), []byte("deleted"), nil},
}

func goldenBatch() []byte {
	var b BatchBuilder
	b.Reset(nil)
	b.SetProducer(42, 3, 7)
	for _, r := range goldenRecords {
		b.Append(r.ts, r.key, r.value, r.headers)
	}
	return b.Finish()
}

func TestGoldenBatch(t *testing.T) {
	want := renderBatchHex(goldenBatch())
	if *rewrite {
		if err := os.WriteFile(goldenBatchPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text, err := os.ReadFile(goldenBatchPath)
	if err != nil {
		t.Fatal(err)
	}
	data, err := parseHexFile(string(text))
	if err != nil {
		t.Fatal(err)
	}
	checkGoldenBatch(t, data)
	if !bytes.Equal(data, goldenBatch()) {
		t.Fatalf("BatchBuilder output differs from %s: the batch format must not change "+
			"(a new layout needs a new BatchMagic and a new golden file)", goldenBatchPath)
	}
	if string(text) != want {
		t.Fatalf("%s comments are stale: regenerate with go test -run TestGoldenBatch -rewrite", goldenBatchPath)
	}
}

// checkGoldenBatch reads the stored bytes with today's decoder.
func checkGoldenBatch(t *testing.T, data []byte) {
	t.Helper()
	h, rest, err := ValidateBatch(data)
	if err != nil || len(rest) != 0 {
		t.Fatalf("ValidateBatch: %v (rest %d)", err, len(rest))
	}
	wantH := BatchHeader{
		BatchLength: uint32(len(data) - 12), LeaderEpoch: -1, Magic: 2, CRC: h.CRC, LastOffsetDelta: 3,
		FirstTimestamp: 1_700_000_000_000, MaxTimestamp: 1_700_000_001_000,
		ProducerID: 42, ProducerEpoch: 3, BaseSequence: 7, RecordCount: 4,
	}
	if h != wantH {
		t.Fatalf("header %+v\nwant   %+v", h, wantH)
	}
	it, err := NewRecordIter(data)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; it.Next(); i++ {
		r, w := it.Record(), goldenRecords[i]
		hs := r.Headers(nil)
		if r.Offset != uint64(i) || r.Timestamp != w.ts || !sameBytes(r.Key, w.key) ||
			!sameBytes(r.Value, w.value) || len(hs) != len(w.headers) || (len(hs) > 0 && !reflect.DeepEqual(hs, w.headers)) {
			t.Fatalf("record %d: %+v headers %+v\nwant %+v", i, r, hs, w)
		}
	}
	if it.Err() != nil {
		t.Fatal(it.Err())
	}
}

// sameBytes is bytes.Equal that also tells nil from empty.
func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

// parseHexFile reads hex digits, ignoring white space and '#' comments.
func parseHexFile(text string) ([]byte, error) {
	var digits strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	return hex.DecodeString(digits.String())
}

func TestParseHexFile(t *testing.T) {
	got, err := parseHexFile("# comment\n01 02 # two bytes\n\n  0a0B\n")
	if err != nil || !bytes.Equal(got, []byte{1, 2, 10, 11}) {
		t.Fatalf("%x %v", got, err)
	}
	if _, err := parseHexFile("012"); err == nil {
		t.Fatal("odd digit count accepted")
	}
}

// hexWriter renders bytes as annotated hex, one field per line.
type hexWriter struct {
	sb  strings.Builder
	b   []byte
	pos int
}

func (w *hexWriter) field(n int, format string, args ...any) {
	v := w.b[w.pos : w.pos+n]
	w.pos += n
	comment := fmt.Sprintf(format, args...)
	for first := true; first || len(v) > 0; first = false {
		chunk := v[:min(len(v), 16)]
		v = v[len(chunk):]
		line := fmt.Sprintf("%-32s", hex.EncodeToString(chunk))
		if first {
			line += " # " + comment
		}
		w.sb.WriteString(strings.TrimRight(line, " ") + "\n")
	}
}

func (w *hexWriter) varint(name string) int64 {
	v, n := binary.Varint(w.b[w.pos:])
	w.field(n, "%s %d (varint)", name, v)
	return v
}

func (w *hexWriter) varBytes(name string) {
	if n := w.varint(name + " length"); n > 0 {
		w.field(int(n), "%s %q", name, w.b[w.pos:w.pos+int(n)])
	}
}

func renderBatchHex(batch []byte) string {
	w := &hexWriter{b: batch}
	h, _ := ParseBatchHeader(batch)
	w.sb.WriteString("# ringmq record batch version 2 = Kafka RecordBatch v2, big-endian (layout: proto/batch.go, proto/record.go).\n" +
		"# Written by BatchBuilder; regenerate with: go test ./proto -run TestGoldenBatch -rewrite\n" +
		"# Never edit by hand: TestGoldenBatch reads these bytes with the current decoder.\n")
	w.field(8, "base_offset %d", h.BaseOffset)
	w.field(4, "batch_length %d", h.BatchLength)
	w.field(4, "partition_leader_epoch %d", h.LeaderEpoch)
	w.field(1, "magic %d", h.Magic)
	w.field(4, "crc32c %#08x over the rest of the batch", h.CRC)
	w.field(2, "attributes %#x", h.Attributes)
	w.field(4, "last_offset_delta %d", h.LastOffsetDelta)
	w.field(8, "base_timestamp %d", h.FirstTimestamp)
	w.field(8, "max_timestamp %d", h.MaxTimestamp)
	w.field(8, "producer_id %d", h.ProducerID)
	w.field(2, "producer_epoch %d", h.ProducerEpoch)
	w.field(4, "base_sequence %d", h.BaseSequence)
	w.field(4, "record_count %d", h.RecordCount)
	for i := 0; i < int(h.RecordCount); i++ {
		fmt.Fprintf(&w.sb, "# record %d\n", i)
		w.varint("length")
		w.field(1, "attributes")
		w.varint("timestamp_delta")
		w.varint("offset_delta")
		w.varBytes("key")
		w.varBytes("value")
		for j, n := 0, w.varint("header_count"); j < int(n); j++ {
			w.varBytes(fmt.Sprintf("header %d key", j))
			w.varBytes(fmt.Sprintf("header %d value", j))
		}
	}
	return w.sb.String()
}
