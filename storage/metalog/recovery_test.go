package metalog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// randomOp applies one random single-record operation to s and model.
func randomOp(t *testing.T, rng *rand.Rand, s *Store, model map[string]string) {
	t.Helper()
	key := fmt.Sprintf("k%d", rng.IntN(12))
	var err error
	switch r := rng.IntN(10); {
	case r < 2 && len(model) > 0:
		keys := slices.Sorted(maps.Keys(model)) // a present key: the delete writes a record
		key = keys[rng.IntN(len(keys))]
		if strings.HasPrefix(key, OffsetKeyPrefix) {
			err = s.DeleteOffset(offsetKeyParts(t, key))
		} else {
			err = s.Delete(key)
		}
		delete(model, key)
	case r < 4:
		c := OffsetCommit{Offset: rng.Uint64(), Metadata: strings.Repeat("m", rng.IntN(5))}
		group, part := fmt.Sprintf("g%d", rng.IntN(3)), uint32(rng.IntN(4))
		err = s.CommitOffset(group, "topic", part, c)
		model[string(appendOffsetKey(nil, group, "topic", part))] = string(appendOffsetValue(nil, c))
	default:
		v := make([]byte, rng.IntN(40))
		for i := range v {
			v[i] = byte(rng.IntN(256))
		}
		err = s.Put(key, v)
		model[key] = string(v)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func offsetKeyParts(t *testing.T, key string) (string, string, uint32) {
	g, tp, p, err := parseOffsetKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return g, tp, p
}

// TestCrashAtEveryByte writes records through the store, then for every
// length k of the log reopens a copy cut at k and checks that exactly the
// records wholly inside the first k bytes are there, and that the log was
// cut back to them. Every third cut also gets a zero-filled tail, as a file
// system may leave after a crash.
func TestCrashAtEveryByte(t *testing.T) {
	for _, withSnapshot := range []bool{false, true} {
		t.Run(fmt.Sprintf("snapshot=%v", withSnapshot), func(t *testing.T) {
			rng := testRand(t)
			dir := t.TempDir()
			s := mustOpen(t, dir, Options{CompactBytes: -1})
			model := map[string]string{}
			if withSnapshot {
				for i := 0; i < 30; i++ {
					randomOp(t, rng, s, model)
				}
				if err := s.Compact(); err != nil {
					t.Fatal(err)
				}
			}
			states, bounds := []map[string]string{maps.Clone(model)}, []int64{0}
			for i := 0; i < 120; i++ {
				randomOp(t, rng, s, model)
				states = append(states, maps.Clone(model))
				bounds = append(bounds, s.Stats().LogBytes)
			}
			mustClose(t, s)
			full := readFile(t, logPath(dir))
			if int64(len(full)) != bounds[len(bounds)-1] {
				t.Fatalf("log is %d bytes, store says %d", len(full), bounds[len(bounds)-1])
			}
			crashDir := t.TempDir()
			if withSnapshot {
				writeFile(t, snapPath(crashDir), readFile(t, snapPath(dir)))
			}
			for k := 0; k <= len(full); k++ {
				cut := full[:k:k]
				if k%3 == 0 {
					cut = append(cut, make([]byte, 1+k%700)...)
				}
				j := wholeRecords(cut, full, bounds)
				writeFile(t, logPath(crashDir), cut)
				s, err := Open(crashDir, Options{Logger: quiet})
				if err != nil {
					t.Fatalf("cut at %d: Open: %v", k, err)
				}
				if got := dump(s); !maps.Equal(got, states[j]) {
					t.Fatalf("cut at %d (%d records): got %q, want %q", k, j, got, states[j])
				}
				if sz := fileSize(t, logPath(crashDir)); sz != bounds[j] {
					t.Fatalf("cut at %d: log left at %d bytes, want %d", k, sz, bounds[j])
				}
				mustClose(t, s)
			}
		})
	}
}

// wholeRecords is how many records of full are wholly inside cut. A zero
// tail can complete a record whose own last bytes are zeros: that record
// then counts too, since its bytes are exactly the ones written.
func wholeRecords(cut, full []byte, bounds []int64) int {
	j := 0
	for j+1 < len(bounds) && bounds[j+1] <= int64(len(cut)) &&
		bytes.Equal(cut[bounds[j]:bounds[j+1]], full[bounds[j]:bounds[j+1]]) {
		j++
	}
	return j
}

// logOf builds a log from records and returns it with each record's offset.
func logOf(recs ...[]byte) (b []byte, offs []int) {
	for _, r := range recs {
		offs = append(offs, len(b))
		b = append(b, r...)
	}
	return b, offs
}

func putRec(k, v string) []byte { return appendRecord(nil, opPut, k, []byte(v)) }

func TestLogDamage(t *testing.T) {
	recs := make([][]byte, 10)
	for i := range recs {
		recs[i] = putRec(fmt.Sprintf("k%d", i), fmt.Sprintf("value %d", i))
	}
	good, offs := logOf(recs...)
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name    string
		log     []byte
		corrupt int // offset of the reported corruption, or -1 for a torn tail
		keep    int // records kept after a torn tail
		version bool
	}{
		{"flipped body byte in the middle", mutate(func(b []byte) []byte { b[offs[3]+12] ^= 1; return b }), offs[3], 0, false},
		{"flipped crc in the middle", mutate(func(b []byte) []byte { b[offs[3]+5] ^= 0x80; return b }), offs[3], 0, false},
		{"huge length in the middle", mutate(func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[offs[3]:], 1<<31)
			return b
		}), offs[3], 0, false},
		{"zero length in the middle", mutate(func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[offs[3]:], 0)
			return b
		}), offs[3], 0, false},
		{"zeroed record in the middle", mutate(func(b []byte) []byte {
			clear(b[offs[3]:offs[4]])
			return b
		}), offs[3], 0, false},
		{"flipped byte in the last record", mutate(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), -1, 9, false},
		{"bad last record then zeros", mutate(func(b []byte) []byte {
			b[len(b)-1] ^= 1
			return append(b, make([]byte, 4096)...)
		}), -1, 9, false},
		{"zeroed last record", mutate(func(b []byte) []byte { clear(b[offs[9]:]); return b }), -1, 9, false},
		{"short garbage after the log", append(good[:len(good):len(good)], 0xff, 0xff, 0xff), -1, 10, false},
		{"long garbage after the log", append(good[:len(good):len(good)], bytesOf(0xff, 100)...), len(good), 0, false},
		{"well-framed bad op at the end", append(good[:len(good):len(good)], appendRecord(nil, 9, "k", nil)...), len(good), 0, false},
		{"end record in the log", append(good[:len(good):len(good)], appendEndRecord(nil, 0)...), len(good), 0, false},
		{"delete with a value", append(good[:len(good):len(good)], appendRecord(nil, opDelete, "k", []byte("v"))...), len(good), 0, false},
		{"future record version", append(good[:len(good):len(good)], withVersion(putRec("k", "v"), 2)...), len(good), 0, true},
		{"undecodable offset value", append(good[:len(good):len(good)],
			appendRecord(nil, opPut, string(appendOffsetKey(nil, "g", "t", 1)), []byte("junk"))...), len(good), 0, false},
		{"malformed offset key", append(good[:len(good):len(good)],
			appendRecord(nil, opPut, "o/g\x00t", appendOffsetValue(nil, OffsetCommit{}))...), len(good), 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, logPath(dir), tc.log)
			s, err := Open(dir, Options{Logger: quiet})
			if tc.corrupt < 0 {
				if err != nil {
					t.Fatalf("torn tail: Open: %v", err)
				}
				want := map[string]string{}
				for i := 0; i < tc.keep; i++ {
					want[fmt.Sprintf("k%d", i)] = fmt.Sprintf("value %d", i)
				}
				checkContents(t, s, want)
				if sz := fileSize(t, logPath(dir)); sz != int64(offs[tc.keep-1]+len(recs[tc.keep-1])) {
					t.Fatalf("log not cut to the valid prefix: %d bytes", sz)
				}
				mustClose(t, s)
				return
			}
			checkCorrupt(t, err, logPath(dir), tc.corrupt, tc.version)
		})
	}
}

func bytesOf(c byte, n int) []byte { return []byte(strings.Repeat(string(c), n)) }

// withVersion rewrites a record's version byte and fixes its CRC.
func withVersion(rec []byte, v byte) []byte {
	rec[recordHeaderSize] = v
	binary.LittleEndian.PutUint32(rec[4:], crcOf(rec[recordHeaderSize:]))
	return rec
}

func checkCorrupt(t *testing.T, err error, file string, off int, version bool) {
	t.Helper()
	want := ErrCorrupt
	if version {
		want = ErrVersion
	}
	if !errors.Is(err, want) {
		t.Fatalf("Open: %v, want %v", err, want)
	}
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.File != file || ce.Offset != int64(off) {
		t.Fatalf("Open: %v, want a CorruptError for %s at offset %d", err, file, off)
	}
	if msg := err.Error(); !strings.Contains(msg, file) || !strings.Contains(msg, fmt.Sprintf("offset %d", off)) {
		t.Fatalf("error %q does not name the file and offset", msg)
	}
}

func TestSnapshotDamage(t *testing.T) {
	a, b := putRec("a", "1"), putRec("b", "2")
	header := appendSnapshotHeader(nil)
	snap := func(parts ...[]byte) []byte {
		out := []byte{}
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	end2 := appendEndRecord(nil, 2)
	hl := len(header)
	tests := []struct {
		name    string
		snap    []byte
		off     int
		version bool
	}{
		{"empty file", nil, 0, false},
		{"bad magic", snap([]byte("RMQMSNAX\x01"), a, b, end2), 0, false},
		{"future version", snap([]byte(snapshotMagic+"\x02"), a, b, end2), 0, true},
		{"missing end record", snap(header, a, b), hl + len(a) + len(b), false},
		{"torn end record", snap(header, a, b, end2[:5]), hl + len(a) + len(b), false},
		{"count mismatch", snap(header, a, b, appendEndRecord(nil, 3)), hl + len(a) + len(b), false},
		{"keys out of order", snap(header, b, a, end2), hl + len(b), false},
		{"duplicate key", snap(header, a, a, end2), hl + len(a), false},
		{"delete in a snapshot", snap(header, a, appendRecord(nil, opDelete, "b", nil), end2), hl + len(a), false},
		{"bytes after the end", snap(header, a, b, end2, []byte{0}), hl + len(a) + len(b), false},
		{"flipped byte", snap(header, a, flip(b, 9), end2), hl + len(a), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, snapPath(dir), tc.snap)
			_, err := Open(dir, Options{Logger: quiet})
			checkCorrupt(t, err, snapPath(dir), tc.off, tc.version)
		})
	}
	dir := t.TempDir()
	writeFile(t, snapPath(dir), snap(header, a, b, end2))
	s := mustOpen(t, dir, Options{})
	checkContents(t, s, map[string]string{"a": "1", "b": "2"})
	mustClose(t, s)
}

func flip(b []byte, i int) []byte {
	b = append([]byte(nil), b...)
	b[i] ^= 1
	return b
}

// TestCrashDuringCompaction covers the two states a compaction can leave
// behind: a tmp file never renamed, and a renamed snapshot whose log was
// never reset.
func TestCrashDuringCompaction(t *testing.T) {
	rng := testRand(t)
	t.Run("tmp file left behind", func(t *testing.T) {
		dir := t.TempDir()
		s := mustOpen(t, dir, Options{CompactBytes: -1})
		model := map[string]string{}
		for i := 0; i < 40; i++ {
			randomOp(t, rng, s, model)
		}
		if err := s.Compact(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 40; i++ {
			randomOp(t, rng, s, model)
		}
		mustClose(t, s)
		tmp := filepath.Join(dir, snapshotTmpName)
		half := readFile(t, snapPath(dir))
		writeFile(t, tmp, half[:len(half)/2]) // a snapshot cut mid-write
		s = mustOpen(t, dir, Options{})
		checkContents(t, s, model)
		mustClose(t, s)
		if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("tmp file not removed: %v", err)
		}
	})
	t.Run("snapshot renamed, log not reset", func(t *testing.T) {
		dir := t.TempDir()
		s := mustOpen(t, dir, Options{CompactBytes: -1})
		model := map[string]string{}
		for i := 0; i < 80; i++ {
			randomOp(t, rng, s, model)
		}
		oldLog := readFile(t, logPath(dir))
		if err := s.Compact(); err != nil {
			t.Fatal(err)
		}
		mustClose(t, s)
		writeFile(t, logPath(dir), oldLog) // the reset never happened
		s = mustOpen(t, dir, Options{CompactBytes: -1})
		checkContents(t, s, model)
		for i := 0; i < 40; i++ { // and the store carries on from there
			randomOp(t, rng, s, model)
		}
		mustClose(t, s)
		s = mustOpen(t, dir, Options{})
		checkContents(t, s, model)
		mustClose(t, s)
	})
}
