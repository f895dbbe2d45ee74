package storage

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ringmq/ringmq/storage/vfs"
)

// openMemLog creates partition t/0 in a new data directory on mem.
func openMemLog(t *testing.T, mem *vfs.Mem, cfg LogConfig) (*Store, *Log, SyncDriver) {
	t.Helper()
	st := openTestStore(t, "/data", StoreOptions{FS: mem})
	l, err := st.OpenLog("t", 0, cfg)
	if err != nil {
		t.Fatalf("OpenLog: %v", err)
	}
	return st, l, SyncDriver{WriteAt: mem.Pwrite, Sync: mem.Fdatasync}
}

// Records flushed in a data directory the store has just created survive
// a power cut that keeps nothing else: the directory names leading to the
// partition (topics/ in the data directory) are durable, not only the
// partition's own.
func TestPowerCutKeepsFlushedRecordsInNewDataDir(t *testing.T) {
	mem := vfs.NewMem()
	st, l, d := openMemLog(t, mem, testConfig())
	rng := rand.New(rand.NewPCG(1, 2))
	var want []byte
	for range 5 {
		op := mustAppend(t, &d, l, randomBatch(rng, 3, 50, 1000))
		want = append(want, op.Buf...)
	}
	if err := d.Flush(l); err != nil {
		t.Fatal(err)
	}
	st.crash()

	st, l, _ = openMemLog(t, mem.Crash(nil), testConfig())
	defer st.Close()
	if got := readAllBatches(t, l, 0); !bytes.Equal(got, want) || l.LogEnd() == 0 {
		t.Fatalf("after a power cut the log holds [%d, %d), %d bytes; want the %d flushed bytes",
			l.LogStart(), l.LogEnd(), len(got), len(want))
	}
}

// A power cut can keep a later segment's unsynced data and lose an
// earlier one's (the disk writes back in any order). Past the recovery
// point nothing was acknowledged, so recovery must end the log where the
// earlier segment's data stops, not report damage and serve the later
// segment after a gap.
func TestPowerCutLosingAnEarlierSegmentEndsTheLog(t *testing.T) {
	mem := vfs.NewMem()
	cfg := testConfig()
	st, l, d := openMemLog(t, mem, cfg)
	rng := rand.New(rand.NewPCG(3, 4))
	for range 3 {
		mustAppend(t, &d, l, randomBatch(rng, 3, 50, 1000))
	}
	if err := rollNow(l); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		mustAppend(t, &d, l, randomBatch(rng, 3, 50, 1000))
	}
	// The disk happened to write back the new segment and the directory,
	// not the first segment.
	if err := mem.Fdatasync(l.active().file.fd); err != nil {
		t.Fatal(err)
	}
	if err := vfs.SyncDir(mem, l.Dir()); err != nil {
		t.Fatal(err)
	}
	st.crash()

	st, l, _ = openMemLog(t, mem.Crash(nil), cfg)
	defer st.Close()
	if c := l.Corruptions(nil); len(c) > 0 {
		t.Fatalf("recovery after a power cut reported damage: %s", c[0].String())
	}
	if l.LogStart() != 0 || l.LogEnd() != 0 {
		t.Fatalf("log [%d, %d) after losing its first segment's data; want [0, 0)", l.LogStart(), l.LogEnd())
	}
}

// Archiving moves flushed (acknowledged) segments into a directory tree
// it creates under ArchiveDir; a power cut must not take back those
// directories' names, and with them the archived records.
func TestPowerCutKeepsArchivedSegments(t *testing.T) {
	mem := vfs.NewMem()
	cfg := testConfig()
	cfg.ArchiveAfter = time.Second
	opts := StoreOptions{FS: mem, ArchiveDir: "/archive"}
	st := openTestStore(t, "/data", opts)
	l, err := st.OpenLog("t", 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := SyncDriver{WriteAt: mem.Pwrite, Sync: mem.Fdatasync}
	rng := rand.New(rand.NewPCG(5, 6))
	var want []byte
	for i := range 6 {
		op := mustAppend(t, &d, l, randomBatch(rng, 3, 50, 1000))
		want = append(want, op.Buf...)
		if i == 2 {
			if err := rollNow(l); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := d.Flush(l); err != nil {
		t.Fatal(err)
	}
	now := time.UnixMilli(1_000_000)
	if err := l.EnforceRetention(now); err != nil { // starts the move
		t.Fatal(err)
	}
	l.bg.Wait()
	if err := l.EnforceRetention(now); err != nil { // installs it
		t.Fatal(err)
	}
	if segs := l.Segments(nil); segs[0].State != SegmentArchived {
		t.Fatalf("first segment %v, want archived", segs[0].State)
	}
	st.crash()

	opts.FS = mem.Crash(nil)
	st = openTestStore(t, "/data", opts)
	defer st.Close()
	l, err = st.OpenExistingLog("t", 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAllBatches(t, l, l.LogStart()); !bytes.Equal(got, want) || l.LogStart() != 0 {
		t.Fatalf("after a power cut the log holds [%d, %d), %d bytes; want [0, %d), %d bytes",
			l.LogStart(), l.LogEnd(), len(got), lastNext(t, want), len(want))
	}
}

// Retention deleting an archived segment and the data directory's segment
// after it in one pass: the two directories reach the disk in any order,
// so unless each delete is durable before the next starts, a power cut can
// keep the later delete and lose the earlier one. The archived segment then
// comes back before a gap, and recovery, with the recovery point below the
// gap, took it for a torn tail and deleted the flushed segment after it
// (long-mode seed 1297). Every crash image must keep the flushed records.
func TestPowerCutRetentionAcrossArchiveKeepsASuffix(t *testing.T) {
	mem := vfs.NewMem()
	cfg := testConfig()
	cfg.ArchiveAfter = time.Second
	cfg.RetentionMs = 100_000
	opts := StoreOptions{FS: mem, ArchiveDir: "/archive"}
	st := openTestStore(t, "/data", opts)
	l, err := st.OpenLog("t", 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := SyncDriver{WriteAt: mem.Pwrite, Sync: mem.Fdatasync}
	rng := rand.New(rand.NewPCG(7, 8))
	appendSeg := func(ts int64) {
		for range 3 {
			mustAppend(t, &d, l, randomBatch(rng, 3, 50, ts))
		}
		if err := d.Flush(l); err != nil {
			t.Fatal(err)
		}
	}
	enforce := func(ms int64) {
		if err := l.EnforceRetention(time.UnixMilli(ms)); err != nil {
			t.Fatal(err)
		}
		l.bg.Wait()
	}
	roll := func() { // and flushes the sealed segment
		if err := rollNow(l); err != nil {
			t.Fatal(err)
		}
		if err := d.Flush(l); err != nil {
			t.Fatal(err)
		}
	}
	appendSeg(1_000) // segment 0, archived below
	roll()
	enforce(3_000)   // starts the move
	enforce(3_000)   // installs it
	appendSeg(2_000) // segment 1, in the data directory
	roll()
	keepFrom := l.LogEnd()
	var want []byte
	for range 3 {
		op := mustAppend(t, &d, l, randomBatch(rng, 3, 50, 10_000_000))
		want = append(want, op.Buf...)
	}
	if err := d.Flush(l); err != nil {
		t.Fatal(err)
	}
	if segs := l.Segments(nil); len(segs) != 3 || segs[0].State != SegmentArchived {
		t.Fatalf("segments %+v, want archived, flushed, active", segs)
	}
	enforce(500_000) // deletes segments 0 and 1
	if l.LogStart() != keepFrom {
		t.Fatalf("retention left the log at %d, want %d", l.LogStart(), keepFrom)
	}
	end := l.LogEnd()
	st.crash()

	for k := range uint64(64) {
		opts.FS = mem.Crash(rand.New(rand.NewPCG(k, 1)))
		st := openTestStore(t, "/data", opts)
		l, err := st.OpenExistingLog("t", 0, cfg)
		if err != nil {
			t.Fatalf("crash image %d: %v", k, err)
		}
		if c := l.Corruptions(nil); len(c) > 0 {
			t.Fatalf("crash image %d: recovery found damage: %v", k, c[0].String())
		}
		if l.LogEnd() != end || l.LogStart() > keepFrom {
			t.Fatalf("crash image %d: the log holds [%d, %d), want [<=%d, %d)", k, l.LogStart(), l.LogEnd(), keepFrom, end)
		}
		if got := readAllBatches(t, l, keepFrom); !bytes.Equal(got, want) {
			t.Fatalf("crash image %d: %d bytes from %d, want the %d flushed", k, len(got), keepFrom, len(want))
		}
		st.Close()
	}
}
