package storage

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/ringmq/ringmq/internal/ringtest"
)

// diskFullConfig indexes every batch, so that every append writes index
// entries into the mapped index files.
func diskFullConfig() LogConfig {
	c := testConfig()
	c.SegmentBytes = 64 << 10
	c.IndexIntervalBytes = 0
	c.Preallocate = false
	return c
}

// noFault turns a fault on a mapped file (SIGBUS: a write to a page the
// file system could not allocate) into a test failure instead of a crash.
func noFault(t *testing.T) {
	old := debug.SetPanicOnFault(true)
	t.Cleanup(func() { debug.SetPanicOnFault(old) })
}

func failOnFault(t *testing.T) {
	if r := recover(); r != nil {
		t.Fatalf("fault on a full disk: %v\n%s", r, debug.Stack())
	}
}

// appendUntilFull appends random batches until an append fails and
// returns the bytes of the acknowledged ones and the error.
func appendUntilFull(t *testing.T, l *Log, rng *rand.Rand) ([]byte, error) {
	var d SyncDriver
	var acked []byte
	for range 100000 {
		b := randomBatch(rng, 4, 400, 1000)
		if _, err := d.Append(l, b); err != nil {
			return acked, err
		}
		acked = append(acked, b...)
	}
	t.Fatalf("the disk never filled up")
	return nil, nil
}

// TestFullDiskFencesAndResumes fills a small tmpfs under a log: the append
// that finds no space fails and fences the log (no SIGBUS from the index
// mapping), reads go on, and once space is freed the log resumes without a
// reopen and nothing acknowledged is lost.
func TestFullDiskFencesAndResumes(t *testing.T) {
	dir := ringtest.MountTmpfs(t, 1<<20)
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	cfg := diskFullConfig()
	st := openTestStore(t, filepath.Join(dir, "data"), StoreOptions{})
	defer st.Close()
	l, err := st.CreateLog("t", 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var d SyncDriver
	before := fill(t, l, rng, 20)
	filler := filepath.Join(dir, "filler")
	ringtest.FillDisk(t, filler, 0)

	noFault(t)
	defer failOnFault(t)
	// A roll starts a segment whose index pages the disk has no room for.
	if err := rollNow(l); err != nil {
		t.Logf("roll on a full disk: %v", err)
	}
	acked, err := appendUntilFull(t, l, rng)
	acked = append(before, acked...)
	if !errors.Is(err, ErrFenced) {
		t.Fatalf("append on a full disk: %v, want ErrFenced", err)
	}
	if got := readAllBatches(t, l, 0); !bytes.Equal(got, acked) {
		t.Fatalf("fenced log reads %d bytes, want the %d acknowledged", len(got), len(acked))
	}
	if l.Resumable() {
		if err := l.ResumeNow(); err == nil {
			t.Fatalf("resume succeeded with the disk still full")
		}
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	l.WaitBackground() // a rename of the roll lane may still be in flight
	if !l.Resumable() {
		t.Fatalf("fenced log with nothing in flight is not resumable")
	}
	if err := l.ResumeNow(); err != nil {
		t.Fatalf("resume after space came back: %v", err)
	}
	for range 20 {
		b := randomBatch(rng, 4, 400, 1000)
		mustAppend(t, &d, l, b)
		acked = append(acked, b...)
	}
	if err := d.Flush(l); err != nil {
		t.Fatal(err)
	}
	if got := readAllBatches(t, l, 0); !bytes.Equal(got, acked) {
		t.Fatalf("after resume the log reads %d bytes, want %d", len(got), len(acked))
	}
	st.crash()
	st2 := openTestStore(t, st.Dir(), StoreOptions{})
	defer st2.Close()
	l2 := openExisting(t, st2, cfg)
	if got := readAllBatches(t, l2, 0); !bytes.Equal(got, acked) {
		t.Fatalf("after a crash the log reads %d bytes, want %d", len(got), len(acked))
	}
}

// TestStartOnFullDisk reopens a log after a crash with its disk full: the
// open succeeds, reads serve everything, appends are refused with
// ErrFenced, and the log resumes once space is freed.
func TestStartOnFullDisk(t *testing.T) {
	dir := ringtest.MountTmpfs(t, 1<<20)
	rng := rand.New(rand.NewPCG(3, 4))
	cfg := diskFullConfig()
	st := openTestStore(t, filepath.Join(dir, "data"), StoreOptions{})
	l, err := st.CreateLog("t", 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	acked := fill(t, l, rng, 200) // several segments
	var d SyncDriver
	if err := d.Flush(l); err != nil {
		t.Fatal(err)
	}
	acked = append(acked, fill(t, l, rng, 5)...) // past the recovery point
	st.crash()
	filler := filepath.Join(dir, "filler")
	ringtest.FillDisk(t, filler, 0)

	noFault(t)
	defer failOnFault(t)
	st2, err := OpenStore(st.Dir(), StoreOptions{})
	if err != nil {
		t.Fatalf("OpenStore on a full disk: %v", err)
	}
	defer st2.Close()
	l2, err := st2.OpenExistingLog("t", 0, cfg)
	if err != nil {
		t.Fatalf("open on a full disk: %v", err)
	}
	if got := readAllBatches(t, l2, 0); !bytes.Equal(got, acked) {
		t.Fatalf("log opened on a full disk reads %d bytes, want %d", len(got), len(acked))
	}
	// Appends fit what is allocated already (AllocateNext allocated the
	// active segment before the crash), then fail.
	more, err := appendUntilFull(t, l2, rng)
	if !errors.Is(err, ErrFenced) {
		t.Fatalf("append on a full disk: %v, want ErrFenced", err)
	}
	acked = append(acked, more...)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := l2.ResumeNow(); err != nil {
		t.Fatalf("resume after space came back: %v", err)
	}
	acked = append(acked, fill(t, l2, rng, 5)...)
	if got := readAllBatches(t, l2, 0); !bytes.Equal(got, acked) {
		t.Fatalf("after resume the log reads %d bytes, want %d", len(got), len(acked))
	}
}
