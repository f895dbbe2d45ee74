package storage

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/ringmq/ringmq/proto"
	"golang.org/x/sys/unix"
)

const (
	fuzzSegmentBytes = 16 << 10
	fuzzBatches      = 6
)

// fuzzValidBatches are the batches every FuzzRecoverSegment run starts
// with (offsets 0.., patched as the log assigns them).
func fuzzValidBatches() [][]byte {
	rng := rand.New(rand.NewPCG(42, 42))
	var out [][]byte
	next := uint64(0)
	for range fuzzBatches {
		b := randomBatch(rng, 3, 120, 1000)
		proto.SetBaseOffset(b, next)
		proto.SetLeaderEpoch(b, 0) // as the append stamps it (epoch 0 by default)
		h, _ := proto.ParseBatchHeader(b)
		next = h.NextOffset()
		out = append(out, b)
	}
	return out
}

// longestValidPrefix is the oracle: the batches recovery must keep from
// the bytes of a segment based at offset 0.
func longestValidPrefix(disk []byte) (end int, next uint64) {
	for end < len(disk) {
		h, _, err := proto.ValidateBatch(disk[end:])
		if err != nil || h.BaseOffset != next || h.LastOffset() > maxRelOffset {
			break
		}
		end += h.Size()
		next = h.NextOffset()
	}
	return end, next
}

// FuzzRecoverSegment writes fuzzBatches valid batches, checkpoints after
// rp of them, cuts the segment at position cut (clamped to lie between the
// recovery point and the end of the data), writes tail there, crashes and
// reopens. Recovery must not panic or fail,
// and must keep exactly the longest valid prefix of the segment's bytes.
func FuzzRecoverSegment(f *testing.F) {
	valid := fuzzValidBatches()
	f.Fuzz(func(t *testing.T, tail []byte, cut uint16, rp uint8) {
		cfg := testConfig()
		cfg.SegmentBytes = fuzzSegmentBytes
		cfg.Preallocate = false
		dir := crashTempDir(t)
		st := openTestStore(t, dir, StoreOptions{})
		l, err := st.CreateLog("t", 0, cfg)
		if err != nil {
			t.Fatal(err)
		}
		var d SyncDriver
		var disk []byte
		rpPos := 0
		for i, b := range valid {
			if i == int(rp)%(fuzzBatches+1) {
				d.Flush(l)
				l.WriteCheckpoint()
				rpPos = len(disk)
			}
			mustAppend(t, &d, l, bytes.Clone(b))
			disk = append(disk, b...)
		}
		at := max(rpPos, min(int(cut), len(disk)))
		tail = tail[:min(len(tail), fuzzSegmentBytes-at)]
		path := l.active().path(logExt)
		st.crash()

		disk = append(disk[:at], tail...)
		disk = append(disk, make([]byte, fuzzSegmentBytes-len(disk))...) // the file's zeros
		fd, err := unix.Open(path, unix.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		unix.Pwrite(fd, make([]byte, fuzzSegmentBytes-at), int64(at))
		unix.Pwrite(fd, tail, int64(at))
		unix.Close(fd)

		st = openTestStore(t, dir, StoreOptions{})
		defer st.Close()
		l, err = st.OpenExistingLog("t", 0, cfg)
		if err != nil {
			t.Fatalf("recovery failed: %v", err)
		}
		end, next := longestValidPrefix(disk)
		if l.LogEnd() != next {
			t.Fatalf("recovered log ends at offset %d, longest valid prefix at %d", l.LogEnd(), next)
		}
		if got := readAllBatches(t, l, 0); !bytes.Equal(got, disk[:end]) {
			t.Fatalf("recovered %d bytes, longest valid prefix is %d", len(got), end)
		}
	})
}

// TestWriteFuzzSeeds regenerates the checked-in seed corpus of
// FuzzRecoverSegment (go test ./storage -run FuzzSeeds -args -rewrite).
func TestWriteFuzzSeeds(t *testing.T) {
	if !*rewrite {
		t.Skip("run with -rewrite to regenerate testdata/fuzz/FuzzRecoverSegment")
	}
	valid := fuzzValidBatches()
	var all []byte
	for _, b := range valid {
		all = append(all, b...)
	}
	h, _ := proto.ParseBatchHeader(valid[len(valid)-1])
	nextBatch := func(base uint64) []byte {
		b := randomBatch(rand.New(rand.NewPCG(7, 7)), 3, 100, 2000)
		proto.SetBaseOffset(b, base)
		return b
	}
	good := nextBatch(h.NextOffset())
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-3] ^= 0x40
	garbage := make([]byte, 300)
	for i := range garbage {
		garbage[i] = byte(i*7 + 3)
	}
	end := uint16(len(all))
	seeds := []struct {
		name string
		tail []byte
		cut  uint16
		rp   uint8
	}{
		{"clean-end", nil, end, 0},
		{"zeros", make([]byte, 200), end, 3},
		{"garbage", garbage, end, 6},
		{"next-batch", good, end, 2},
		{"next-batch-then-torn", append(bytes.Clone(good), good[:40]...), end, 4},
		{"wrong-offset", nextBatch(h.NextOffset() + 5), end, 1},
		{"bad-crc", badCRC, end, 5},
		{"header-only", good[:proto.BatchHeaderSize], end, 0},
		{"torn-last-batch", nil, end - 30, 0},
		{"garbage-at-recovery-point", garbage, 0, 3},
		{"mid-batch-cut-and-batch", good, end - 100, 2},
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzRecoverSegment")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\nuint16(%d)\nuint8(%d)\n", strconv.Quote(string(s.tail)), s.cut, s.rp)
		if err := os.WriteFile(filepath.Join(dir, s.name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
