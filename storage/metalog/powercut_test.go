package metalog

import (
	"bytes"
	"fmt"
	"os"
	"testing"

	"github.com/ringmq/ringmq/storage/vfs"
)

// A commit synced in a store whose directory was just created survives a
// power cut that keeps nothing else: the directory's own name was made
// durable too (its parent fsync'd), not only the files in it.
func TestPowerCutKeepsSyncedCommitInNewDir(t *testing.T) {
	mem := vfs.NewMem()
	s, err := Open("/data/meta", Options{FS: mem})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CommitOffset("g", "t", 0, OffsetCommit{Offset: 42}); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open("/data/meta", Options{FS: mem.Crash(nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if c, ok := s2.FetchOffset("g", "t", 0); !ok || c.Offset != 42 {
		t.Fatalf("after a power cut: commit %+v, found %v; want offset 42", c, ok)
	}
}

// A power cut can lose a sector of the log's unsynced tail and keep a
// later one. Open must take that for a torn tail (cut at the lost sector,
// keep the prefix before it), not refuse the store as corrupt.
func TestLostSectorInTailIsTorn(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if err := s.Put(fmt.Sprintf("k%02d", i), bytes.Repeat([]byte{'v'}, 30)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(logPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 3*vfs.SectorSize {
		t.Fatalf("log of %d bytes: too short for the test", len(b))
	}
	clear(b[vfs.SectorSize : 2*vfs.SectorSize]) // lost; the sectors after it were kept
	writeFile(t, logPath(dir), b)

	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatalf("open after a lost sector: %v", err)
	}
	defer s.Close()
	n := 0
	for i := range 40 {
		if _, ok := s.Get(fmt.Sprintf("k%02d", i)); ok {
			if n != i {
				t.Fatalf("k%02d present after k%02d was lost: not a prefix", i, n)
			}
			n++
		}
	}
	if n == 0 || n == 40 {
		t.Fatalf("%d of 40 keys kept; want the ones before the lost sector", n)
	}
}
