package ack

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
)

var rewrite = flag.Bool("rewrite", false, "regenerate the golden files under testdata")

const goldenPath = "testdata/frames-v1.hex"

// goldenRecords are the frames of the golden file, one of each kind.
func goldenRecords() []Record {
	done := roaring.New()
	done.AddRange(2, 5)
	done.Add(70000)
	return []Record{
		{Kind: KindSnapshot, Snapshot: Snapshot{Floor: 1000, Done: done, Entries: []Entry{
			{Offset: 1000, Deliveries: 2},
			{Offset: 1001, Deliveries: 5, Dead: true, LastError: "timeout"},
			{Offset: 1010, Deliveries: 1},
		}}},
		{Kind: KindAcquired, Acquired: []AcquiredRun{{Start: 1011, End: 1050, Count: 1}, {Start: 1000, End: 1001, Count: 3}}},
		{Kind: KindDone, Done: []Run{{Start: 1000, End: 1001}, {Start: 1010, End: 1020}}},
		{Kind: KindDeadLetter, DeadLetter: Entry{Offset: 1030, Deliveries: 4, Dead: true, LastError: "bad payload"}},
	}
}

func appendRecord(dst []byte, r *Record) []byte {
	switch r.Kind {
	case KindSnapshot:
		return AppendSnapshot(dst, &r.Snapshot)
	case KindAcquired:
		return AppendAcquired(dst, r.Acquired)
	case KindDone:
		return AppendDone(dst, r.Done)
	case KindDeadLetter:
		return AppendDeadLetter(dst, r.DeadLetter)
	}
	panic("unknown kind")
}

func writeHex(b *strings.Builder, comment string, data []byte) {
	fmt.Fprintf(b, "# %s\n", comment)
	for len(data) > 0 {
		n := min(32, len(data))
		b.WriteString(hex.EncodeToString(data[:n]))
		b.WriteByte('\n')
		data = data[n:]
	}
}

func readHex(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, line := range strings.Split(string(raw), "\n") {
		if line = strings.TrimSpace(line); line == "" || line[0] == '#' {
			continue
		}
		b, err := hex.DecodeString(line)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, b...)
	}
	return out
}

// TestGolden: the checked-in frames (written by version 1) still parse to
// the same records, and encoding those records gives the same bytes.
// Regenerate with go test ./group/ack -run Golden -rewrite (only for a
// new version).
func TestGolden(t *testing.T) {
	recs := goldenRecords()
	var enc []byte
	var b strings.Builder
	b.WriteString("# ack tracker frames, version 1: len u32 LE | crc32c u32 LE | version | kind | body\n")
	for i := range recs {
		start := len(enc)
		enc = appendRecord(enc, &recs[i])
		writeHex(&b, fmt.Sprintf("kind %d", recs[i].Kind), enc[start:])
	}
	if *rewrite {
		if err := os.WriteFile(goldenPath, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden := readHex(t, goldenPath)
	if !bytes.Equal(golden, enc) {
		t.Fatalf("encoding changed:\n got %x\nwant %x", enc, golden)
	}
	src := golden
	for i := range recs {
		rec, rest, err := Parse(src)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !recordsEqual(&rec, &recs[i]) {
			t.Fatalf("frame %d: parsed %+v, want %+v", i, rec, recs[i])
		}
		src = rest
	}
	if len(src) != 0 {
		t.Fatalf("%d bytes left", len(src))
	}
}

func recordsEqual(a, b *Record) bool {
	if a.Kind != b.Kind {
		return false
	}
	if a.Kind == KindSnapshot {
		return a.Snapshot.Floor == b.Snapshot.Floor && a.Snapshot.Done.Equals(b.Snapshot.Done) &&
			reflect.DeepEqual(a.Snapshot.Entries, b.Snapshot.Entries)
	}
	return reflect.DeepEqual(a, b)
}

// TestParseDamage: every truncation of a frame is ErrTruncated, every
// flipped bit ErrCorrupt (or ErrVersion, or ErrTruncated when it hits the
// length), never a panic and never a record.
func TestParseDamage(t *testing.T) {
	recs := goldenRecords()
	for i := range recs {
		frame := appendRecord(nil, &recs[i])
		for n := range len(frame) {
			if _, _, err := Parse(frame[:n]); !errors.Is(err, ErrTruncated) {
				t.Fatalf("kind %d cut at %d: %v, want ErrTruncated", recs[i].Kind, n, err)
			}
		}
		for bit := range 8 * len(frame) {
			bad := bytes.Clone(frame)
			bad[bit/8] ^= 1 << (bit % 8)
			_, _, err := Parse(bad)
			if err == nil {
				t.Fatalf("kind %d with bit %d flipped parsed", recs[i].Kind, bit)
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrTruncated) {
				t.Fatalf("kind %d bit %d: unclassified error %v", recs[i].Kind, bit, err)
			}
		}
	}
	bad := appendRecord(nil, &recs[1])
	bad[8] = 2 // version
	fixCRC(bad)
	if _, _, err := Parse(bad); !errors.Is(err, ErrVersion) {
		t.Fatalf("version 2: %v", err)
	}
}

func fixCRC(frame []byte) {
	body := frame[frameHeader:]
	frame[4], frame[5], frame[6], frame[7] = 0, 0, 0, 0
	c := crc32Castagnoli(body)
	frame[4], frame[5], frame[6], frame[7] = byte(c), byte(c>>8), byte(c>>16), byte(c>>24)
}

// FuzzParse: no input makes Parse panic or read past its frame; what
// parses re-encodes to a frame that parses to the same record (varints
// may have longer encodings than ours).
func FuzzParse(f *testing.F) {
	recs := goldenRecords()
	for i := range recs {
		f.Add(appendRecord(nil, &recs[i]))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Let the fuzzer reach the body: fix up the header.
		if len(data) >= frameHeader {
			data = bytes.Clone(data)
			n := len(data) - frameHeader
			data[0], data[1], data[2], data[3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
			fixCRC(data)
		}
		rec, rest, err := Parse(data)
		if err != nil {
			return
		}
		if len(rest) != 0 {
			t.Fatalf("%d bytes past a frame that fills the input", len(rest))
		}
		again := appendRecord(nil, &rec)
		rec2, rest, err := Parse(again)
		if err != nil || len(rest) != 0 || !recordsEqual(&rec, &rec2) {
			t.Fatalf("re-encoded %x from %x: %+v, %v", again, data, rec2, err)
		}
	})
}

func crc32Castagnoli(b []byte) uint32 { return crc32Checksum(b) }
