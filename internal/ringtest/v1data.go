package ringtest

import (
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ringmq/ringmq/proto"
)

// V1Data is the checked-in version-1 data directory (written by the last
// server of batch version 1; see storage/testdata/v1data/README.md),
// relative to the repository root.
const V1Data = "storage/testdata/v1data"

// V1Record is one record the version-1 data directory holds.
type V1Record struct {
	Partition uint32
	Offset    uint64
	Timestamp int64
	Key       []byte // nil: null
	Value     []byte // nil: null
	Headers   []proto.Header
}

// CopyV1Data copies the version-1 data directory (root: the path of the
// repository root from the test's package) to a new temporary directory
// and returns it with the records it holds.
func CopyV1Data(t testing.TB, root string) (string, []V1Record) {
	t.Helper()
	src := filepath.Join(root, V1Data)
	dst := t.TempDir()
	err := filepath.WalkDir(filepath.Join(src, "datadir"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(filepath.Join(src, "datadir"), path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(filepath.Join(src, "records.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var recs []V1Record
	for i, line := range strings.Split(strings.TrimSpace(string(text)), "\n") {
		r, err := parseV1Record(line)
		if err != nil {
			t.Fatalf("records.txt line %d: %v", i+1, err)
		}
		recs = append(recs, r)
	}
	return dst, recs
}

func parseV1Record(line string) (V1Record, error) {
	var r V1Record
	f := strings.Fields(line)
	if len(f) < 5 || !strings.HasPrefix(f[3], "key=") || !strings.HasPrefix(f[4], "value=") {
		return r, fmt.Errorf("malformed %q", line)
	}
	p, err1 := strconv.ParseUint(f[0], 10, 32)
	off, err2 := strconv.ParseUint(f[1], 10, 64)
	ts, err3 := strconv.ParseInt(f[2], 10, 64)
	key, err4 := hexOrNull(f[3][len("key="):])
	value, err5 := hexOrNull(f[4][len("value="):])
	for _, err := range []error{err1, err2, err3, err4, err5} {
		if err != nil {
			return r, err
		}
	}
	r = V1Record{Partition: uint32(p), Offset: off, Timestamp: ts, Key: key, Value: value}
	for _, h := range f[5:] {
		k, v, ok := strings.Cut(strings.TrimPrefix(h, "h:"), "=")
		hv, err := hexOrNull(v)
		if !ok || err != nil {
			return r, fmt.Errorf("malformed header %q", h)
		}
		r.Headers = append(r.Headers, proto.Header{Key: k, Value: hv})
	}
	return r, nil
}

func hexOrNull(s string) ([]byte, error) {
	if s == "null" {
		return nil, nil
	}
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if b == nil && err == nil {
		b = []byte{}
	}
	return b, err
}

// CheckV1Records compares records read back (each partition's, in offset
// order) with what the version-1 data directory holds, telling null from
// empty.
func CheckV1Records(t testing.TB, got, want []V1Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("read %d records, the version-1 data holds %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		ok := g.Partition == w.Partition && g.Offset == w.Offset && g.Timestamp == w.Timestamp &&
			sameBytes(g.Key, w.Key) && sameBytes(g.Value, w.Value) && len(g.Headers) == len(w.Headers)
		for j := 0; ok && j < len(w.Headers); j++ {
			ok = g.Headers[j].Key == w.Headers[j].Key && sameBytes(g.Headers[j].Value, w.Headers[j].Value)
		}
		if !ok {
			t.Fatalf("record %d: got %+v\nwant %+v", i, g, w)
		}
	}
}

func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && string(a) == string(b) }

// AppendV1Records decodes whole version-2 batches b of partition p and
// appends their records to dst.
func AppendV1Records(t testing.TB, dst []V1Record, p uint32, b []byte) []V1Record {
	t.Helper()
	var scratch []byte
	for len(b) > 0 {
		h, rest, err := proto.ValidateBatch(b)
		if err != nil {
			t.Fatalf("partition %d: %v", p, err)
		}
		var it proto.RecordIter
		it, scratch, err = proto.NewBatchIter(scratch, b[:h.Size()])
		if err != nil {
			t.Fatal(err)
		}
		for it.Next() {
			r := it.Record()
			dst = append(dst, V1Record{Partition: p, Offset: r.Offset, Timestamp: r.Timestamp,
				Key: clone(r.Key), Value: clone(r.Value), Headers: r.Headers(nil)})
			for i := range dst[len(dst)-1].Headers {
				dst[len(dst)-1].Headers[i].Value = clone(dst[len(dst)-1].Headers[i].Value)
			}
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		b = rest
	}
	return dst
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}
