package storage

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// appendAt appends one batch of n records with timestamp ts and value size.
func appendAt(t *testing.T, l *Log, ts int64, size int) []byte {
	t.Helper()
	var d SyncDriver
	b := makeBatch(batchSpec{ts: []int64{ts}, values: [][]byte{make([]byte, size)}})
	mustAppend(t, &d, l, b)
	return b
}

// segmentsAtTimes makes one segment per timestamp (rolling after each) and
// flushes them.
func segmentsAtTimes(t *testing.T, l *Log, times ...int64) {
	t.Helper()
	for _, ts := range times {
		appendAt(t, l, ts, 500)
		if err := rollNow(l); err != nil {
			t.Fatal(err)
		}
	}
	var d SyncDriver
	if err := d.Flush(l); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRetentionByTime(t *testing.T) {
	cfg := testConfig()
	cfg.RetentionMs = 1000
	_, l := createTestLog(t, cfg)
	segmentsAtTimes(t, l, 1000, 2000, 1500, 3000, 4000)
	paths := l.Segments(nil)
	// At 3600 the segments whose newest record is older than 2600 go,
	// oldest first, up to the first one that is not (3000).
	if err := l.EnforceRetention(time.UnixMilli(3600)); err != nil {
		t.Fatal(err)
	}
	if l.LogStart() != 3 || l.Stats().DeletedSegments != 3 {
		t.Fatalf("start %d, deleted %d; want 3, 3", l.LogStart(), l.Stats().DeletedSegments)
	}
	if _, err := l.Read(2, 100, nil); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read of a deleted offset: %v", err)
	}
	waitFor(t, "deleted files to be unlinked", func() bool {
		_, err := os.Stat(paths[0].Path + deletedSuffix)
		return os.IsNotExist(err)
	})
	// The active segment is never deleted, however old.
	if err := l.EnforceRetention(time.UnixMilli(1e9)); err != nil {
		t.Fatal(err)
	}
	if got := len(l.Segments(nil)); got != 1 || l.LogStart() != l.LogEnd() {
		t.Fatalf("%d segments, start %d, end %d after expiring everything", got, l.LogStart(), l.LogEnd())
	}
}

func TestRetentionBySizeOnlyDeletesFlushed(t *testing.T) {
	cfg := testConfig()
	cfg.RetentionBytes = 1500
	_, l := createTestLog(t, cfg)
	for range 4 {
		appendAt(t, l, 1, 500)
		rollNow(l)
	}
	if err := l.EnforceRetention(time.UnixMilli(0)); err != nil || l.LogStart() != 0 {
		t.Fatalf("unflushed segments deleted: start %d, %v", l.LogStart(), err)
	}
	var d SyncDriver
	d.Flush(l)
	if err := l.EnforceRetention(time.UnixMilli(0)); err != nil {
		t.Fatal(err)
	}
	// Four segments of about 560 bytes: without the oldest about 1680
	// bytes remain (≥ 1500), without two only about 1120, so one goes.
	st := l.Stats()
	if l.LogStart() != 1 || st.Bytes < cfg.RetentionBytes {
		t.Fatalf("start %d, %d bytes left; want start 1 and at least %d bytes", l.LogStart(), st.Bytes, cfg.RetentionBytes)
	}
}

func TestViewOutlivesDeletedSegment(t *testing.T) {
	cfg := testConfig()
	cfg.RetentionMs = 0
	_, l := createTestLog(t, cfg)
	first := appendAt(t, l, 1, 300)
	rollNow(l)
	appendAt(t, l, 2, 300)
	var d SyncDriver
	d.Flush(l)
	views, err := l.Read(0, 1000, nil)
	if err != nil || len(views) != 2 {
		t.Fatalf("Read: %d views, %v", len(views), err)
	}
	f := views[0].f
	if err := l.EnforceRetention(time.UnixMilli(100)); err != nil || l.LogStart() != 1 {
		t.Fatalf("retention: start %d, %v", l.LogStart(), err)
	}
	if !bytes.Equal(views[0].Bytes(), first) {
		t.Fatalf("view of a deleted segment changed")
	}
	// The worker closes the deleted segment, dropping the log's reference.
	for deadline := time.Now().Add(30 * time.Second); f.refs.Load() != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("deleted segment has %d references, want the view's only", f.refs.Load())
		}
		<-time.After(time.Millisecond)
	}
	ReleaseViews(views)
	if n := f.refs.Load(); n != 0 {
		t.Fatalf("%d references after release", n)
	}
}

func testArchive(t *testing.T, archiveRoot string) {
	cfg := testConfig()
	cfg.ArchiveAfter = time.Second
	dir := t.TempDir()
	opts := StoreOptions{ArchiveDir: archiveRoot}
	st := openTestStore(t, dir, opts)
	l, err := st.CreateLog("t", 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	segmentsAtTimes(t, l, 1000, 2000, 5000)
	want := readAllBatches(t, l, 0)
	views, _ := l.Read(0, 100, nil)
	if err := l.EnforceRetention(time.UnixMilli(4000)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two segments archived", func() bool {
		l.EnforceRetention(time.UnixMilli(4000))
		return l.Stats().Segments[SegmentArchived] == 2
	})
	if got := readAllBatches(t, l, 0); !bytes.Equal(got, want) {
		t.Fatalf("reads after archiving differ")
	}
	if !bytes.Equal(views[0].Bytes(), want[:views[0].Len()]) {
		t.Fatalf("a view taken before archiving changed")
	}
	ReleaseViews(views)
	for _, s := range l.Segments(nil)[:2] {
		if filepath.Dir(s.Path) != filepath.Join(archiveRoot, "topics", "t", "0") {
			t.Fatalf("archived segment at %s", s.Path)
		}
		if _, err := os.Stat(filepath.Join(dir, "topics", "t", "0", filepath.Base(s.Path))); !os.IsNotExist(err) {
			t.Fatalf("archived segment still in the partition directory: %v", err)
		}
	}
	for _, clean := range []bool{true, false} {
		st = reopen(t, st, clean)
		l = openExisting(t, st, cfg)
		if got := readAllBatches(t, l, 0); !bytes.Equal(got, want) || l.Stats().Segments[SegmentArchived] != 2 {
			t.Fatalf("after reopen (clean %v): %d archived, reads equal %v", clean, l.Stats().Segments[SegmentArchived], bytes.Equal(got, want))
		}
	}
	cfg.RetentionMs = 1000
	l.Close()
	l = openExisting(t, st, cfg)
	if err := l.EnforceRetention(time.UnixMilli(4000)); err != nil || l.LogStart() != 2 {
		t.Fatalf("retention of archived segments: start %d, %v", l.LogStart(), err)
	}
	st.Close()
}

func TestArchiveSameFileSystem(t *testing.T) { testArchive(t, t.TempDir()) }

// TestArchiveOtherFileSystem copies instead of renaming when the archive is
// on another file system (tmpfs at /dev/shm, when the temp dir is not).
func TestArchiveOtherFileSystem(t *testing.T) {
	root := crashTempDir(t)
	testArchive(t, root)
}
