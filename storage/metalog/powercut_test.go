package metalog

import (
	"bytes"
	"fmt"
	"os"
	"slices"
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

// A power cut during a compaction, once the snapshot is in place but
// before the log reset is durable, leaves the new snapshot and the old
// log. Replaying that log over the snapshot must not take keys back to
// older values: the log must hold every write the snapshot covers.
func TestPowerCutDuringCompactionKeepsAPrefix(t *testing.T) {
	run := func(mem *vfs.Mem, crashAt int) *vfs.Mem {
		s, err := Open("/meta", Options{FS: mem, CompactBytes: -1})
		if err != nil {
			t.Fatal(err)
		}
		must := func(err error) {
			if err != nil {
				t.Fatal(err)
			}
		}
		must(s.Put("a", []byte("1")))
		must(s.Sync())
		must(s.Put("a", []byte("2")))
		must(s.Put("b", []byte("1")))
		if crashAt > 0 {
			mem.CrashAtSync(mem.Syncs()+crashAt, nil)
		}
		must(s.Compact())
		return mem.Image()
	}
	probe := vfs.NewMem()
	before := probe.Syncs()
	run(probe, 0)
	allowed := []string{"a=1 ", "a=2 ", "a=2 b=1 "}
	for j := 1; j <= probe.Syncs()-before; j++ {
		img := run(vfs.NewMem(), j)
		if img == nil {
			continue // the sync happened before Compact
		}
		s, err := Open("/meta", Options{FS: img})
		if err != nil {
			t.Fatalf("crash at compaction sync %d: open: %v", j, err)
		}
		got := ""
		s.Range("", func(k string, v []byte) bool { got += k + "=" + string(v) + " "; return true })
		s.Close()
		if !slices.Contains(allowed, got) {
			t.Fatalf("crash at compaction sync %d: store holds %q, want one of %q", j, got, allowed)
		}
	}
}

// A record header can straddle a sector boundary. A power cut that loses
// the earlier sector's last write and keeps the later one leaves the
// header's first bytes zero and the rest intact: a torn tail, not
// corruption (seed 4414 of the storage power-cut test: a 10-byte record at
// offset 511 read back with length 0). A frame whose lost bytes cannot be
// filled in to match its CRC stays corruption.
func TestLostSectorInsideStraddlingHeaderIsTorn(t *testing.T) {
	for _, lost := range []int{1, 2, 3, 4} {
		for _, damaged := range []bool{false, true} {
			t.Run(fmt.Sprintf("lost=%d/damaged=%v", lost, damaged), func(t *testing.T) {
				dir := t.TempDir()
				s, err := Open(dir, Options{})
				if err != nil {
					t.Fatal(err)
				}
				// Fill up to a record that starts `lost` bytes before the
				// first sector boundary, then one more record after it.
				i := 0
				for {
					size := s.Stats().LogBytes
					if room := vfs.SectorSize - lost - int(size); room < 40 {
						// A filler record of exactly `room` bytes.
						v := bytes.Repeat([]byte{'f'}, room-int(recordSize("fill", nil)))
						if got := recordSize("fill", v); got != int64(room) {
							t.Fatalf("log at %d bytes: filler of %d bytes, want %d", size, got, room)
						}
						if err := s.Put("fill", v); err != nil {
							t.Fatal(err)
						}
						break
					}
					if err := s.Put(fmt.Sprintf("k%02d", i), []byte("v")); err != nil {
						t.Fatal(err)
					}
					i++
				}
				if size := s.Stats().LogBytes; int(size) != vfs.SectorSize-lost {
					t.Fatalf("log at %d bytes, want %d", size, vfs.SectorSize-lost)
				}
				if err := s.Put("straddler", bytes.Repeat([]byte{'s'}, 300)); err != nil {
					t.Fatal(err)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(logPath(dir))
				if err != nil {
					t.Fatal(err)
				}
				clear(b[vfs.SectorSize-lost : vfs.SectorSize]) // the earlier sector's write was lost
				if damaged {
					b[len(b)-1] ^= 0x40
				}
				writeFile(t, logPath(dir), b)

				s, err = Open(dir, Options{})
				if damaged {
					if err == nil {
						s.Close()
						t.Fatal("open succeeded over a damaged record; want corruption")
					}
					return
				}
				if err != nil {
					t.Fatalf("open after a lost sector under a straddling header: %v", err)
				}
				defer s.Close()
				if _, ok := s.Get("fill"); !ok {
					t.Fatal("the record before the lost write is gone")
				}
				if _, ok := s.Get("straddler"); ok {
					t.Fatal("the record whose header was lost is still there")
				}
			})
		}
	}
}
