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
