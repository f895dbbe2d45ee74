package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ringmq/ringmq/proto"
)

// The golden sparse indexes: the .index and .timeindex of a sealed segment
// written by the current code from goldenIndexBatches, one entry a line.
const (
	goldenOffsetIndex = "testdata/index-v1.hex"
	goldenTimeIndex   = "testdata/timeindex-v1.hex"
)

// goldenIndexBatches is a fixed history: batches of 1-3 records whose
// timestamps sometimes go back in time, so that the time index skips them.
func goldenIndexBatches() [][]byte {
	tss := [][]int64{{1000}, {1005, 1010}, {990}, {1020, 1015, 1030}, {1030}, {1025},
		{1040, 1041}, {1100}, {1050, 1060, 1070}, {1200}}
	var out [][]byte
	for i, ts := range tss {
		spec := batchSpec{ts: ts}
		for j := range ts {
			spec.values = append(spec.values, []byte(fmt.Sprintf("value-%d-%d", i, j)))
		}
		out = append(out, makeBatch(spec))
	}
	return out
}

// writeGoldenSegment appends goldenIndexBatches to a new log with an index
// entry every 100 bytes, seals the segment with a roll and a flush and
// returns the sealed segment's three files.
func writeGoldenSegment(t *testing.T) (logData, idx, tidx []byte) {
	cfg := testConfig()
	cfg.IndexIntervalBytes = 100
	_, l := createTestLog(t, cfg)
	var d SyncDriver
	for _, b := range goldenIndexBatches() {
		mustAppend(t, &d, l, b)
	}
	if err := rollNow(l); err != nil {
		t.Fatal(err)
	}
	if err := d.Flush(l); err != nil { // the seal cuts the files once the data is durable
		t.Fatal(err)
	}
	seg := l.segs[0]
	read := func(ext string) []byte {
		b, err := os.ReadFile(seg.path(ext))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return read(logExt), read(indexExt), read(timeIndexExt)
}

// writeIndexHex writes an index file as commented hex, one entry a line.
func writeIndexHex(t *testing.T, path, title string, b []byte, esize int, describe func(e []byte) string) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "# %s, written by the current code from goldenIndexBatches (see index.go).\n", title)
	sb.WriteString("# Regenerate: go test ./storage -run TestIndexGolden -args -rewrite\n")
	for ; len(b) >= esize; b = b[esize:] {
		fmt.Fprintf(&sb, "%-26x # %s\n", b[:esize], describe(b[:esize]))
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// batchStarts walks a segment's batches: base offset, file position and
// max timestamp of each.
type batchStart struct {
	base  uint64
	pos   uint32
	maxTs int64
}

func batchStarts(t *testing.T, data []byte) []batchStart {
	var out []batchStart
	for pos := 0; pos < len(data); {
		h, rest, err := proto.ValidateBatch(data[pos:])
		if err != nil {
			if bytes.Count(data[pos:], []byte{0}) == len(data)-pos {
				break // the zero tail of a pre-sized file
			}
			t.Fatalf("batch at %d: %v", pos, err)
		}
		out = append(out, batchStart{h.BaseOffset, uint32(pos), h.MaxTimestamp})
		pos = len(data) - len(rest)
	}
	return out
}

// TestIndexGolden: the current code writes exactly the checked-in index
// files, and the checked-in entries, read through the index's own
// accessors, point at the right batches of the same history: each offset
// entry at the batch with that offset, each time entry at the batch that
// raised the running max timestamp to that value.
func TestIndexGolden(t *testing.T) {
	logData, idx, tidx := writeGoldenSegment(t)
	if *rewrite {
		writeIndexHex(t, goldenOffsetIndex, ".index version 1: rel_offset u32 | position u32", idx, offsetEntrySize,
			func(e []byte) string {
				return fmt.Sprintf("rel_offset %d position %d", binary.LittleEndian.Uint32(e), binary.LittleEndian.Uint32(e[4:]))
			})
		writeIndexHex(t, goldenTimeIndex, ".timeindex version 1: max_timestamp i64 | rel_offset u32", tidx, timeEntrySize,
			func(e []byte) string {
				return fmt.Sprintf("max_timestamp %d rel_offset %d", int64(binary.LittleEndian.Uint64(e)), binary.LittleEndian.Uint32(e[8:]))
			})
	}
	goldIdx, goldTidx := readHex(t, goldenOffsetIndex), readHex(t, goldenTimeIndex)
	if !bytes.Equal(idx, goldIdx) {
		t.Errorf(".index bytes differ from %s:\n got  %x\n want %x", goldenOffsetIndex, idx, goldIdx)
	}
	if !bytes.Equal(tidx, goldTidx) {
		t.Errorf(".timeindex bytes differ from %s:\n got  %x\n want %x", goldenTimeIndex, tidx, goldTidx)
	}

	starts := batchStarts(t, logData)
	byPos := map[uint32]batchStart{}
	for _, s := range starts {
		byPos[s.pos] = s
	}
	ox := index{m: goldIdx, esize: offsetEntrySize}
	n := ox.validOffsetPrefix(int64(len(logData)))
	if n != ox.capacity() || n < 3 {
		t.Fatalf("%d of %d golden offset entries valid, want all and at least 3", n, ox.capacity())
	}
	for i := range n {
		rel, pos := ox.offsetEntry(i)
		if s, ok := byPos[pos]; !ok || s.base != uint64(rel) {
			t.Errorf("offset entry %d (rel %d, pos %d): batch there %+v, %v", i, rel, pos, s, ok)
		}
	}

	tx := index{m: goldTidx, esize: timeEntrySize}
	n = tx.validTimePrefix(starts[len(starts)-1].base + 1)
	if n != tx.capacity() || n < 3 {
		t.Fatalf("%d of %d golden time entries valid, want all and at least 3", n, tx.capacity())
	}
	var running int64
	var want []string
	for _, s := range starts {
		if s.maxTs > running {
			running = s.maxTs
			want = append(want, fmt.Sprintf("(%d, %d)", running, s.base))
		}
	}
	var got []string
	for i := range n {
		ts, rel := tx.timeEntry(i)
		got = append(got, fmt.Sprintf("(%d, %d)", ts, rel))
	}
	// The time index is sparse too: every entry must be one of the batches
	// that raised the running max, and the last one must be the final max.
	for _, g := range got {
		if !strings.Contains(strings.Join(want, " "), g) {
			t.Errorf("time entry %s is not a batch that raised the max timestamp (those are %v)", g, want)
		}
	}
	if got[len(got)-1] != want[len(want)-1] {
		t.Errorf("last time entry %s, want the final max %s", got[len(got)-1], want[len(want)-1])
	}
}
