package metalog

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files and fuzz seeds under testdata")

const (
	goldenLog  = "testdata/golden/meta.log.hex"
	goldenSnap = "testdata/golden/meta.snapshot.hex"
	seedDir    = "testdata/fuzz/FuzzMetaLog"
)

// writeGoldenStore writes the fixed history the golden files hold: a
// snapshot, then a log on top of it.
func writeGoldenStore(t *testing.T) string {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{CompactBytes: -1})
	steps := []func() error{
		func() error { return s.Put("cluster/id", []byte("ringmq-golden")) },
		func() error { return s.PutTopic("orders", []byte{1, 2, 3}) },
		func() error {
			return s.CommitOffset("billing", "orders", 3, OffsetCommit{Offset: 42, Metadata: "m", CommitTimeMs: 1700000000000})
		},
		func() error { return s.Put("tmp", []byte("x")) },
		s.Compact,
		func() error { return s.Delete("tmp") },
		func() error {
			return s.CommitOffset("billing", "orders", 3, OffsetCommit{Offset: 43, CommitTimeMs: 1700000001000})
		},
		func() error { return s.PutTopic("audit", nil) },
		func() error { return s.Put("cluster/empty", nil) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	mustClose(t, s)
	return dir
}

// TestGolden checks that the current code writes exactly the checked-in
// files, and reads them back to the contents they were written with (spelled
// out here, not derived from the writer). Regenerate with -rewrite.
func TestGolden(t *testing.T) {
	dir := writeGoldenStore(t)
	logB, snapB := readFile(t, logPath(dir)), readFile(t, snapPath(dir))
	if *rewrite {
		writeHex(t, goldenLog, "meta.log: records back to back", logB, 0)
		writeHex(t, goldenSnap, "meta.snapshot: header, put records, end record", snapB, snapshotHeaderSize)
		writeSeeds(t, logB, snapB)
	}
	if g := readHex(t, goldenLog); !bytes.Equal(g, logB) {
		t.Errorf("meta.log bytes differ from %s:\n got  %x\n want %x", goldenLog, logB, g)
	}
	if g := readHex(t, goldenSnap); !bytes.Equal(g, snapB) {
		t.Errorf("meta.snapshot bytes differ from %s:\n got  %x\n want %x", goldenSnap, snapB, g)
	}

	readDir := t.TempDir()
	writeFile(t, logPath(readDir), readHex(t, goldenLog))
	writeFile(t, snapPath(readDir), readHex(t, goldenSnap))
	s := mustOpen(t, readDir, Options{})
	defer mustClose(t, s)
	var keys []string
	s.Range("cluster/", func(k string, _ []byte) bool { keys = append(keys, k); return true })
	if want := []string{"cluster/empty", "cluster/id"}; !slices.Equal(keys, want) {
		t.Errorf("cluster keys %q, want %q", keys, want)
	}
	if v, _ := s.Get("cluster/id"); string(v) != "ringmq-golden" {
		t.Errorf("cluster/id = %q", v)
	}
	if _, ok := s.Get("tmp"); ok {
		t.Error("tmp survived its delete")
	}
	if c, ok := s.FetchOffset("billing", "orders", 3); !ok || c != (OffsetCommit{Offset: 43, CommitTimeMs: 1700000001000}) {
		t.Errorf("billing offset = %+v, %v", c, ok)
	}
	topics := s.Topics()
	if len(topics) != 2 || topics[0].Name != "audit" || len(topics[0].Config) != 0 ||
		topics[1].Name != "orders" || !bytes.Equal(topics[1].Config, []byte{1, 2, 3}) {
		t.Errorf("topics = %q", topics)
	}
}

// writeHex writes b as hex, one record per line, with a comment naming it.
func writeHex(t *testing.T, path, title string, b []byte, start int) {
	var out strings.Builder
	fmt.Fprintf(&out, "# %s (see doc.go). Regenerate: go test ./storage/metalog/ -run TestGolden -rewrite\n", title)
	if start > 0 {
		fmt.Fprintf(&out, "# header: magic %q, version %d\n%x\n", b[:start-1], b[start-1], b[:start])
	}
	names := map[byte]string{opPut: "put", opDelete: "delete", opEnd: "end"}
	for off := start; off < len(b); {
		r, rest, err := parseRecord(b[off:])
		if err != nil {
			t.Fatalf("%s at %d: %v", path, off, err)
		}
		n := len(b) - off - len(rest)
		fmt.Fprintf(&out, "# @%d %s key %+q value %+q\n%x\n", off, names[r.op], r.key, r.value, b[off:off+n])
		off += n
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, []byte(out.String()))
}

// readHex reads a file written by writeHex: '#' starts a comment, the rest
// is hex digits and white space.
func readHex(t *testing.T, path string) []byte {
	var digits strings.Builder
	for _, line := range strings.Split(string(readFile(t, path)), "\n") {
		line, _, _ = strings.Cut(line, "#")
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(digits.String())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

// writeSeeds writes the fuzz seed corpus from the golden files.
func writeSeeds(t *testing.T, logB, snapB []byte) {
	mod := func(b []byte, f func([]byte) []byte) []byte { return f(append([]byte(nil), b...)) }
	offs := recordOffsets(t, logB)
	seeds := []struct {
		name      string
		log, snap []byte
		fixCRC    bool
	}{
		{"empty", nil, nil, false},
		{"log-only", logB, nil, false},
		{"snapshot-and-log", logB, snapB, false},
		{"torn-tail", logB[:len(logB)-3], snapB, false},
		{"zero-tail", append(slices.Clone(logB), make([]byte, 32)...), snapB, false},
		{"corrupt-middle", mod(logB, func(b []byte) []byte { b[offs[1]+9] ^= 0x40; return b }), snapB, false},
		{"corrupt-snapshot", logB, mod(snapB, func(b []byte) []byte { b[len(b)-20] ^= 1; return b }), false},
		{"fixed-crc-bad-op", mod(logB, func(b []byte) []byte { b[offs[1]+9] = 7; return b }), snapB, true},
	}
	if err := os.MkdirAll(seedDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%+q)\n[]byte(%+q)\nbool(%v)\n", s.log, s.snap, s.fixCRC)
		writeFile(t, filepath.Join(seedDir, s.name), []byte(body))
	}
}

func recordOffsets(t *testing.T, b []byte) []int {
	var offs []int
	for off := 0; off < len(b); {
		_, rest, err := parseRecord(b[off:])
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, off)
		off = len(b) - len(rest)
	}
	return offs
}
