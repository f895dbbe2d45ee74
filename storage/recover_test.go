package storage

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringmq/ringmq/proto"
	"golang.org/x/sys/unix"
)

// reopen crashes or cleanly closes st and opens the directory again.
func reopen(t *testing.T, st *Store, clean bool) *Store {
	t.Helper()
	if clean {
		if err := st.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	} else {
		st.crash()
	}
	st2 := openTestStore(t, st.Dir(), st.opts)
	t.Cleanup(func() { st2.Close() })
	return st2
}

func openExisting(t *testing.T, st *Store, cfg LogConfig) *Log {
	t.Helper()
	l, err := st.OpenExistingLog("t", 0, cfg)
	if err != nil {
		t.Fatalf("OpenExistingLog: %v", err)
	}
	return l
}

// fill appends n random batches and returns their bytes.
func fill(t *testing.T, l *Log, rng *rand.Rand, n int) []byte {
	t.Helper()
	var d SyncDriver
	var all []byte
	for range n {
		b := randomBatch(rng, 4, 300, int64(rng.IntN(100000)))
		mustAppend(t, &d, l, b)
		all = append(all, b...)
	}
	return all
}

func TestCleanReopenScansNothing(t *testing.T) {
	cfg := testConfig()
	st, l := createTestLog(t, cfg)
	rng := rand.New(rand.NewPCG(7, 8))
	want := fill(t, l, rng, 150)
	ts, _ := l.SeekTime(50000)
	st = reopen(t, st, true)
	defer st.Close()
	if !st.WasClean() {
		t.Fatalf("clean-shutdown marker not found")
	}
	if _, err := os.Stat(filepath.Join(st.Dir(), cleanName)); !os.IsNotExist(err) {
		t.Fatalf("marker not removed at open: %v", err)
	}
	l = openExisting(t, st, cfg)
	if got := readAllBatches(t, l, 0); !bytes.Equal(got, want) {
		t.Fatalf("clean reopen lost data: %d bytes, want %d", len(got), len(want))
	}
	if s := l.Stats(); s.RecoveryScannedBytes != 0 || s.Flushed != l.LogEnd() {
		t.Fatalf("clean reopen scanned %d bytes, flushed %d of %d", s.RecoveryScannedBytes, s.Flushed, l.LogEnd())
	}
	if ts2, _ := l.SeekTime(50000); ts2 != ts {
		t.Fatalf("SeekTime after reopen %d, before %d", ts2, ts)
	}
	more := fill(t, l, rng, 20)
	if got := readAllBatches(t, l, 0); !bytes.Equal(got, append(want, more...)) {
		t.Fatalf("appends after reopen do not read back")
	}
}

func TestCrashReopenKeepsEverythingWritten(t *testing.T) {
	cfg := testConfig()
	st, l := createTestLog(t, cfg)
	rng := rand.New(rand.NewPCG(9, 10))
	want := fill(t, l, rng, 120)
	st = reopen(t, st, false)
	defer st.Close()
	if st.WasClean() {
		t.Fatalf("marker present after a crash")
	}
	l = openExisting(t, st, cfg)
	if got := readAllBatches(t, l, 0); !bytes.Equal(got, want) {
		t.Fatalf("crash reopen: %d bytes, want %d", len(got), len(want))
	}
	if s := l.Stats(); s.RecoveryScannedBytes < int64(len(want)) || s.RecoveryTruncated {
		t.Fatalf("no checkpoint past 0: scanned %d of %d bytes, truncated %v", s.RecoveryScannedBytes, len(want), s.RecoveryTruncated)
	}
	want = append(want, fill(t, l, rng, 10)...)
	if got := readAllBatches(t, l, 0); !bytes.Equal(got, want) {
		t.Fatalf("appends after recovery do not read back")
	}
}

func TestRecoveryTruncatesTornTail(t *testing.T) {
	cfg := testConfig()
	st, l := createTestLog(t, cfg)
	rng := rand.New(rand.NewPCG(11, 12))
	want := fill(t, l, rng, 30)
	end := l.LogEnd()
	s := l.active()
	path, pos := s.path(logExt), s.size
	// A torn write: a prefix of a valid batch, then garbage further on.
	torn := randomBatch(rng, 3, 200, 1)
	if _, err := unix.Pwrite(s.file.fd, torn[:len(torn)/2], pos); err != nil {
		t.Fatal(err)
	}
	unix.Pwrite(s.file.fd, []byte("garbage"), pos+1000)
	st = reopen(t, st, false)
	defer st.Close()
	l = openExisting(t, st, cfg)
	if l.LogEnd() != end || !l.Stats().RecoveryTruncated {
		t.Fatalf("end %d (want %d), truncated %v", l.LogEnd(), end, l.Stats().RecoveryTruncated)
	}
	if got := readAllBatches(t, l, 0); !bytes.Equal(got, want) {
		t.Fatalf("torn tail: read %d bytes, want %d", len(got), len(want))
	}
	data, _ := os.ReadFile(path)
	if !isZero(data[pos:]) {
		t.Fatalf("bytes after the truncation point were not cleared")
	}
}

// A write that landed after a hole (an earlier write never happened) must
// not come back when later appends fill the hole with batches of the same
// size and record count.
func TestStaleBatchAfterHoleNotResurrected(t *testing.T) {
	cfg := testConfig()
	st, l := createTestLog(t, cfg)
	var d SyncDriver
	b := func(v string) []byte { return makeBatch(batchSpec{ts: []int64{1}, values: [][]byte{[]byte(v)}}) }
	mustAppend(t, &d, l, b("a"))
	op1, _ := prepareNow(l, b("b"))
	op2, _ := prepareNow(l, b("c"))
	d.write(op2.Fd, op2.Buf, op2.Pos) // op1 is never written
	st = reopen(t, st, false)
	l = openExisting(t, st, cfg)
	if l.LogEnd() != 1 {
		t.Fatalf("end %d after a hole, want 1", l.LogEnd())
	}
	mustAppend(t, &d, l, b("B")) // same size as op1: op2's bytes would line up
	st = reopen(t, st, false)
	defer st.Close()
	l = openExisting(t, st, cfg)
	if l.LogEnd() != 2 {
		t.Fatalf("end %d: a stale batch came back", l.LogEnd())
	}
	_ = op1
}

func TestCorruptIndexesAreRebuilt(t *testing.T) {
	cfg := testConfig()
	st, l := createTestLog(t, cfg)
	rng := rand.New(rand.NewPCG(13, 14))
	want := fill(t, l, rng, 200)
	var seeks []uint64
	for ts := int64(0); ts < 100000; ts += 7919 {
		off, _ := l.SeekTime(ts)
		seeks = append(seeks, off)
	}
	segs := l.Segments(nil)
	st = reopen(t, st, true)
	defer st.Close()
	// Scribble over every index of the first three segments.
	for _, s := range segs[:3] {
		for _, ext := range []string{indexExt, timeIndexExt} {
			p := strings.TrimSuffix(s.Path, logExt) + ext
			junk := make([]byte, 64)
			for i := range junk {
				junk[i] = byte(rng.Uint32())
			}
			if err := os.WriteFile(p, junk, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	os.Remove(strings.TrimSuffix(segs[3].Path, logExt) + indexExt)
	l = openExisting(t, st, cfg)
	if got := readAllBatches(t, l, 0); !bytes.Equal(got, want) {
		t.Fatalf("reads after index rebuild differ")
	}
	for i, ts := 0, int64(0); ts < 100000; i, ts = i+1, ts+7919 {
		if off, _ := l.SeekTime(ts); off != seeks[i] {
			t.Fatalf("SeekTime(%d) = %d after rebuild, was %d", ts, off, seeks[i])
		}
	}
	if got := readAllBatches(t, l, 0); !bytes.Equal(got, want) {
		t.Fatalf("reads after index rebuild differ")
	}
}

// TestCorruptionBeforeRecoveryPointIsReported damages a batch header that
// recovery walks before the recovery point: the partition opens, reports
// the damage, refuses reads of the damaged offsets and serves everything
// else; the other partition is unaffected.
func TestCorruptionBeforeRecoveryPointIsReported(t *testing.T) {
	cfg := testConfig()
	st := openTestStore(t, t.TempDir(), StoreOptions{})
	rng := rand.New(rand.NewPCG(15, 16))
	var d SyncDriver
	var logs []*Log
	var data [][]byte
	for p := range uint32(2) {
		l, err := st.CreateLog("t", p, cfg)
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, fill(t, l, rng, 60))
		if err := d.Flush(l); err != nil {
			t.Fatal(err)
		}
		if err := l.WriteCheckpoint(); err != nil {
			t.Fatal(err)
		}
		logs = append(logs, l)
	}
	// Damage the header of the last batch before partition 0's recovery
	// point (the batch recovery walks to reach it).
	s := logs[0].active()
	rel, pos := s.idx.offsetEntry(s.idx.n - 1)
	off := s.base + uint64(rel)
	end := logs[0].LogEnd()
	path := s.path(logExt)
	st = reopen(t, st, false)
	defer st.Close()
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	f.WriteAt([]byte{0xff, 0xff, 0xff, 0xff}, int64(pos)+8)
	f.Close()
	l, err := st.OpenExistingLog("t", 0, cfg)
	if err != nil {
		t.Fatalf("open of damaged partition: %v", err)
	}
	checkDamaged(t, l, path, off, end)
	if got := readAround(t, l); !bytes.Equal(got, withoutRange(t, data[0], off, l)) {
		t.Fatalf("the intact part reads %d bytes, want %d", len(got), len(withoutRange(t, data[0], off, l)))
	}
	l1, err := st.OpenExistingLog("t", 1, cfg)
	if err != nil {
		t.Fatalf("the other partition must open: %v", err)
	}
	if n := len(l1.Corruptions(nil)); n != 0 {
		t.Fatalf("the other partition reports %d corruptions", n)
	}
}

// checkDamaged checks l reports one damaged range in path starting at
// offset off, that reading it is ErrCorrupt, and that the log end is end.
func checkDamaged(t *testing.T, l *Log, path string, off, end uint64) Corruption {
	t.Helper()
	cs := l.Corruptions(nil)
	if len(cs) != 1 || cs[0].Path != path || cs[0].FromOffset != off || l.Stats().CorruptRanges != 1 {
		t.Fatalf("corruptions %+v, want one in %s from offset %d", cs, path, off)
	}
	if _, err := l.Read(off, 1<<20, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Read(%d) of damaged data: %v, want ErrCorrupt", off, err)
	}
	if l.LogEnd() != end {
		t.Fatalf("log end %d, want %d: data after the damage was dropped", l.LogEnd(), end)
	}
	return cs[0]
}

// readAround reads the whole log, stepping over the damaged ranges.
func readAround(t *testing.T, l *Log) []byte {
	t.Helper()
	var out []byte
	cs := l.Corruptions(nil)
	for off := l.LogStart(); off < l.LogEnd(); {
		views, err := l.Read(off, 3000, nil)
		if errors.Is(err, ErrCorrupt) {
			skipped := false
			for _, c := range cs {
				if c.FromOffset <= off && off < c.ToOffset {
					off, skipped = c.ToOffset, true
				}
			}
			if !skipped {
				t.Fatalf("Read(%d): %v, outside every reported range %+v", off, err, cs)
			}
			continue
		}
		if err != nil || len(views) == 0 {
			t.Fatalf("Read(%d): %v, %d views", off, err, len(views))
		}
		for i := range views {
			out = append(out, views[i].Bytes()...)
			off = lastNext(t, views[i].Bytes())
		}
		ReleaseViews(views)
	}
	return out
}

// withoutRange returns the batches of all whose offsets are outside the
// damaged range of l that starts at off.
func withoutRange(t *testing.T, all []byte, off uint64, l *Log) []byte {
	t.Helper()
	var to uint64
	for _, c := range l.Corruptions(nil) {
		if c.FromOffset == off {
			to = c.ToOffset
		}
	}
	var out []byte
	var next uint64
	for rest := all; len(rest) > 0; {
		h, r, err := proto.ValidateBatch(rest)
		if err != nil {
			t.Fatal(err)
		}
		if next < off || next >= to {
			out = append(out, rest[:h.Size()]...)
		}
		next += uint64(h.LastOffsetDelta) + 1
		rest = r
	}
	return out
}

// TestTruncatedSealedSegmentIsReported cuts a flushed segment short: the
// partition opens, reports the lost range, and keeps every later segment.
func TestTruncatedSealedSegmentIsReported(t *testing.T) {
	cfg := testConfig()
	st, l := createTestLog(t, cfg)
	data := fill(t, l, rand.New(rand.NewPCG(17, 18)), 100)
	var d SyncDriver
	d.Flush(l)
	l.WriteCheckpoint()
	segs := l.Segments(nil)
	path, end := segs[1].Path, l.LogEnd()
	st = reopen(t, st, false)
	defer st.Close()
	if err := os.Truncate(path, 100); err != nil {
		t.Fatal(err)
	}
	l, err := st.OpenExistingLog("t", 0, cfg)
	if err != nil {
		t.Fatalf("open with a truncated flushed segment: %v", err)
	}
	c := checkDamaged(t, l, path, segs[1].Base, end)
	if c.ToOffset != segs[2].Base {
		t.Fatalf("damage reported up to offset %d, want %d", c.ToOffset, segs[2].Base)
	}
	if got := readAround(t, l); !bytes.Equal(got, withoutRange(t, data, segs[1].Base, l)) {
		t.Fatalf("the intact part reads %d bytes", len(got))
	}
}

// TestFlippedByteAfterLostCheckpointKeepsLaterSegments flips one payload
// byte in a flushed segment in the middle of the log and deletes the
// checkpoint: recovery must report the one damaged batch and keep every
// later segment, not take it for a torn tail.
func TestFlippedByteAfterLostCheckpointKeepsLaterSegments(t *testing.T) {
	cfg := testConfig()
	st, l := createTestLog(t, cfg)
	data := fill(t, l, rand.New(rand.NewPCG(19, 20)), 200)
	var d SyncDriver
	if err := d.Flush(l); err != nil {
		t.Fatal(err)
	}
	segs := l.Segments(nil)
	if len(segs) < 5 {
		t.Fatalf("want at least 5 segments, have %d", len(segs))
	}
	victim := segs[1]
	views, err := l.Read(victim.Base+1, 1, nil) // a batch inside the segment
	if err != nil {
		t.Fatal(err)
	}
	h, _ := proto.ParseBatchHeader(views[0].Bytes())
	batchPos := views[0].Pos()
	ReleaseViews(views)
	end := l.LogEnd()
	st = reopen(t, st, false)
	defer st.Close()
	if err := os.Remove(filepath.Join(l.Dir(), checkpointName)); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(victim.Path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	flipAt := batchPos + int64(h.Size()) - 3 // a payload byte
	f.ReadAt(b[:], flipAt)
	b[0] ^= 0x40
	f.WriteAt(b[:], flipAt)
	f.Close()
	l, err = st.OpenExistingLog("t", 0, cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if n := len(l.Segments(nil)); n != len(segs) {
		t.Fatalf("%d segments after recovery, had %d: recovery deleted data past the damage", n, len(segs))
	}
	c := checkDamaged(t, l, victim.Path, h.BaseOffset, end)
	if c.ToOffset != h.NextOffset() {
		t.Fatalf("damage reported up to offset %d, want %d (one batch)", c.ToOffset, h.NextOffset())
	}
	if got := readAround(t, l); !bytes.Equal(got, withoutRange(t, data, h.BaseOffset, l)) {
		t.Fatalf("the intact part reads %d bytes", len(got))
	}
}

func TestSecondStoreOnDirectoryFails(t *testing.T) {
	dir := t.TempDir()
	st := openTestStore(t, dir, StoreOptions{})
	defer st.Close()
	_, err := OpenStore(dir, StoreOptions{})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second OpenStore: %v; want ErrLocked naming %s", err, dir)
	}
}

func TestRecoveryScansOnlyPastRecoveryPoint(t *testing.T) {
	cfg := testConfig()
	rng := rand.New(rand.NewPCG(19, 20))
	for _, batches := range []int{50, 500} {
		st, l := createTestLog(t, cfg)
		fill(t, l, rng, batches)
		var d SyncDriver
		if err := d.Flush(l); err != nil {
			t.Fatal(err)
		}
		if err := l.WriteCheckpoint(); err != nil {
			t.Fatal(err)
		}
		size := l.Stats().Bytes
		tail := fill(t, l, rng, 5)
		st = reopen(t, st, false)
		l = openExisting(t, st, cfg)
		scanned := l.Stats().RecoveryScannedBytes
		// The tail, plus one header read where the data ends.
		if scanned < int64(len(tail)) || scanned > int64(len(tail))+proto.BatchHeaderSize {
			t.Fatalf("log of %d bytes with a %d-byte unflushed tail: recovery scanned %d bytes", size, len(tail), scanned)
		}
		st.Close()
	}
}

func TestLogsClosedUncleanlyMeanNoMarker(t *testing.T) {
	cfg := testConfig()
	st, l := createTestLog(t, cfg)
	if _, err := prepareNow(l, makeBatch(batchSpec{ts: []int64{1}, values: [][]byte{nil}})); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err == nil {
		t.Fatalf("Close with an append in flight must report it")
	}
	if err := st.MarkClean(); err == nil {
		t.Fatalf("MarkClean after an unclean close must fail")
	}
	st = reopen(t, st, true)
	defer st.Close()
	if st.WasClean() {
		t.Fatalf("marker written although a log closed uncleanly")
	}
}

// A timestamp spike that got no time index entry (it came within
// index_interval_bytes of the previous entry) must survive a crash: the
// checkpoint carries the segment's running max.
func TestCrashKeepsUnindexedMaxTimestamp(t *testing.T) {
	cfg := testConfig()
	cfg.IndexIntervalBytes = 4096
	st, l := createTestLog(t, cfg)
	appendAt(t, l, 100, 50)
	appendAt(t, l, 5000, 50) // the spike: a raise without an entry
	for l.active().size < 5000 {
		appendAt(t, l, 200, 200)
	}
	var d SyncDriver
	if err := d.Flush(l); err != nil {
		t.Fatal(err)
	}
	if err := l.WriteCheckpoint(); err != nil {
		t.Fatal(err)
	}
	st = reopen(t, st, false)
	l = openExisting(t, st, cfg)
	if off, err := l.SeekTime(3000); err != nil || off != 1 {
		t.Fatalf("SeekTime(3000) after crash = %d, %v; want 1", off, err)
	}
	if ts := l.Segments(nil)[0].MaxTimestamp; ts != 5000 {
		t.Fatalf("segment max timestamp %d after crash, want 5000", ts)
	}
}

// Reopening must not rebuild time index entries from the middle of a
// segment: an unindexed spike before the rebuilt part would be missing
// from their running max, and a seek to a time below the spike would skip
// it.
func TestReopenKeepsTimeIndexSound(t *testing.T) {
	for _, clean := range []bool{true, false} {
		cfg := testConfig()
		cfg.IndexIntervalBytes = 4096
		st, l := createTestLog(t, cfg)
		appendAt(t, l, 100, 50)
		appendAt(t, l, 3000, 50) // unindexed raise
		for l.active().size < 4500 {
			appendAt(t, l, 200, 200)
		}
		appendAt(t, l, 5000, 50) // indexed raise after the last offset entry
		appendAt(t, l, 200, 50)
		if err := rollNow(l); err != nil {
			t.Fatal(err)
		}
		var d SyncDriver
		d.Flush(l)
		l.WriteCheckpoint()
		st = reopen(t, st, clean)
		l = openExisting(t, st, cfg)
		if off, err := l.SeekTime(2500); err != nil || off != 1 {
			t.Fatalf("clean %v: SeekTime(2500) = %d, %v; want 1", clean, off, err)
		}
	}
}

func TestCorruptCheckpointMeansFullVerification(t *testing.T) {
	cfg := testConfig()
	st, l := createTestLog(t, cfg)
	want := fill(t, l, rand.New(rand.NewPCG(21, 22)), 80)
	var d SyncDriver
	d.Flush(l)
	l.WriteCheckpoint()
	ckpt := filepath.Join(l.Dir(), checkpointName)
	st = reopen(t, st, false)
	b, err := os.ReadFile(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 1 // the fields still look right; only the CRC says no
	if err := os.WriteFile(ckpt, b, 0o644); err != nil {
		t.Fatal(err)
	}
	l = openExisting(t, st, cfg)
	if got := readAllBatches(t, l, 0); !bytes.Equal(got, want) {
		t.Fatalf("data lost with a corrupt checkpoint")
	}
	if s := l.Stats().RecoveryScannedBytes; s < int64(len(want)) {
		t.Fatalf("corrupt checkpoint: scanned %d of %d bytes", s, len(want))
	}
}

func TestPartitionsOpenInParallel(t *testing.T) {
	cfg := testConfig()
	st := openTestStore(t, crashTempDir(t), StoreOptions{})
	defer st.Close()
	errs := make(chan error, 8)
	for p := range uint32(8) {
		go func() {
			l, err := st.OpenLog("t", p, cfg)
			if err == nil {
				_, err = st.OpenLog("t", p, cfg) // already open
				if err == nil {
					err = errors.New("second open succeeded")
				} else {
					err = l.Close()
				}
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if ps, err := st.Partitions(); err != nil || len(ps) != 8 {
		t.Fatalf("Partitions: %v, %v", ps, err)
	}
}
