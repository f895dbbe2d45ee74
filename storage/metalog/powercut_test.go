package metalog

import (
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
