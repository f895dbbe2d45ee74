package storage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/storage/vfs"
)

// v1Config is the configuration the version-1 data directory was written
// with (topic v1: segment_bytes 4096).
func v1Config() LogConfig {
	c := DefaultLogConfig()
	c.SegmentBytes = 4096
	c.SegmentMs = 0
	c.RetentionMs = -1
	c.RetentionBytes = -1
	c.Preallocate = false
	return c
}

// readV1Partitions opens both partitions of the version-1 data directory
// at dir and returns their records.
func readV1Partitions(t *testing.T, st *Store) []ringtest.V1Record {
	t.Helper()
	var got []ringtest.V1Record
	for p := uint32(0); p < 2; p++ {
		l, err := st.OpenExistingLog("v1", p, v1Config())
		if err != nil {
			t.Fatalf("open partition %d: %v", p, err)
		}
		got = ringtest.AppendV1Records(t, got, p, readAllBatches(t, l, 0))
	}
	return got
}

// TestOpenVersion1DataDir: a data directory written by the last version-1
// server opens with every record intact; its segments are version 2
// afterwards, and the partition takes appends and reopens as usual.
func TestOpenVersion1DataDir(t *testing.T) {
	dir, want := ringtest.CopyV1Data(t, "..")
	st := openTestStore(t, dir, StoreOptions{})
	ringtest.CheckV1Records(t, readV1Partitions(t, st), want)
	for _, p := range []string{"0", "1"} {
		logs, _ := filepath.Glob(filepath.Join(dir, "topics", "v1", p, "0*.log"))
		if len(logs) != 2 {
			t.Fatalf("partition %s: segments %q, want 2", p, logs)
		}
		for _, path := range logs {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := proto.ValidateBatch(b); err != nil {
				t.Fatalf("%s does not start with a version-2 batch: %v", path, err)
			}
		}
	}
	st = reopen(t, st, true)
	l, err := st.OpenExistingLog("v1", 0, v1Config())
	if err != nil {
		t.Fatal(err)
	}
	end := l.LogEnd()
	var d SyncDriver
	mustAppend(t, &d, l, makeBatch(batchSpec{ts: []int64{1}, values: [][]byte{[]byte("after the conversion")}}))
	st = reopen(t, st, false)
	got := readV1Partitions(t, st)
	if last := got[len(want[:end])]; last.Offset != end || string(last.Value) != "after the conversion" {
		t.Fatalf("record at %d after reopening: %+v", end, last)
	}
	ringtest.CheckV1Records(t, append(got[:end:end], got[end+1:]...), want)
	st.Close()
}

// crashingConvert executes conversion ops until the n-th, which it tears
// (a write stops halfway; any other op is not done), then fails every op:
// a kill at that point.
type crashingConvert struct {
	n, done int
}

var errKilled = errors.New("killed")

func (c *crashingConvert) do(op convertOp) error {
	if c.done == c.n {
		if op.kind == convWrite {
			var full int
			for _, b := range convertedBatches(op.src) {
				full += len(b)
			}
			writeConverted(vfs.OS, op.path, op.src, full/2)
		}
		c.done++
		return errKilled
	}
	if c.done > c.n {
		return errKilled
	}
	c.done++
	return syncConvert{vfs.OS}.do(op)
}

// convertedBatches is the oracle of a conversion: each version-1 batch of
// src converted on its own.
func convertedBatches(src []byte) [][]byte {
	var out [][]byte
	for len(src) > 0 {
		b, n, err := proto.ConvertBatchV1(nil, src, v1LeaderEpoch)
		if err != nil {
			break
		}
		out = append(out, b)
		src = src[n:]
	}
	return out
}

// TestConvertCrashAtEveryStep kills the conversion of the version-1 data
// directory at every step (and tears every write halfway): each segment's
// .log is then either its old version-1 bytes or its whole version-2 form,
// and the next open converts the rest and reads every record back.
func TestConvertCrashAtEveryStep(t *testing.T) {
	_, want := ringtest.CopyV1Data(t, "..")
	const noCrash = 1 << 30
	steps := convertV1DataDir(t, noCrash)
	if steps < 20 {
		t.Fatalf("the conversion took %d ops", steps)
	}
	for k := 0; k <= steps; k++ {
		t.Run(fmt.Sprint("crash at op ", k), func(t *testing.T) {
			dir, _ := ringtest.CopyV1Data(t, "..")
			originals := map[string][]byte{}
			logs, _ := filepath.Glob(filepath.Join(dir, "topics", "v1", "*", "0*.log"))
			for _, path := range logs {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				originals[path] = b
			}
			convertV1DataDirIn(t, dir, k)
			for path, old := range originals {
				now, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%s after a crash: %v", path, err)
				}
				conv := bytes.Join(convertedBatches(old), nil)
				if !bytes.Equal(now, old) && !bytes.Equal(now, conv) {
					t.Fatalf("%s is neither the version-1 segment (%d bytes) nor its version-2 form (%d bytes): %d bytes",
						path, len(old), len(conv), len(now))
				}
			}
			st := openTestStore(t, dir, StoreOptions{})
			ringtest.CheckV1Records(t, readV1Partitions(t, st), want)
			st.Close()
		})
	}
}

// convertV1DataDir converts a fresh copy of the version-1 data directory,
// crashing at op crashAt, and returns the number of ops done.
func convertV1DataDir(t *testing.T, crashAt int) int {
	dir, _ := ringtest.CopyV1Data(t, "..")
	return convertV1DataDirIn(t, dir, crashAt)
}

func convertV1DataDirIn(t *testing.T, dir string, crashAt int) int {
	t.Helper()
	ops := 0
	for p := 0; p < 2; p++ {
		pdir := filepath.Join(dir, "topics", "v1", fmt.Sprint(p))
		l := &Log{fs: vfs.OS, dir: pdir}
		refs, err := l.listSegments()
		if err != nil {
			t.Fatal(err)
		}
		c := &crashingConvert{n: crashAt - ops}
		err = convertV1(vfs.OS, pdir, refs, c)
		if c.done <= c.n && err != nil {
			t.Fatalf("conversion of partition %d failed without a crash: %v", p, err)
		}
		ops += c.done
		if err != nil {
			break // killed: the process is gone
		}
	}
	return ops
}

// TestConvertRefusesCorruptFlushedData: a bad version-1 batch in data the
// checkpoint says was flushed (a sealed segment, or the last one below its
// recovery point) fails the open with ErrCorrupt and changes no file; it is
// never cut off as a torn tail.
func TestConvertRefusesCorruptFlushedData(t *testing.T) {
	for _, seg := range []string{"00000000000000000000.log", "00000000000000000046.log"} {
		t.Run(seg, func(t *testing.T) {
			dir, _ := ringtest.CopyV1Data(t, "..")
			pdir := filepath.Join(dir, "topics", "v1", "0")
			path := filepath.Join(pdir, seg)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[200] ^= 0x10 // inside the first batches' records: a CRC mismatch
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			before := dirContents(t, pdir)
			st := openTestStore(t, dir, StoreOptions{})
			defer st.Close()
			if _, err := st.OpenExistingLog("v1", 0, v1Config()); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("open with a corrupt flushed batch: %v, want ErrCorrupt", err)
			}
			if after := dirContents(t, pdir); !equalContents(before, after) {
				t.Fatal("a refused conversion changed the partition's files")
			}
		})
	}
}

func dirContents(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

func equalContents(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
