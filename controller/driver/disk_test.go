package driver

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ringmq/ringmq/controller"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

const dir = "/c"

func ents(term uint64, from, to uint64) []*pb.Entry {
	var es []*pb.Entry
	for i := from; i <= to; i++ {
		es = append(es, &pb.Entry{Index: new(i), Term: new(term), Type: pb.EntryNormal.Enum(),
			Data: fmt.Appendf(nil, "t%d-i%d", term, i)})
	}
	return es
}

func hs(term, vote, commit uint64) *pb.HardState {
	return &pb.HardState{Term: new(term), Vote: new(vote), Commit: new(commit)}
}

func open(t *testing.T, fsys FS) (*Disk, *raft.MemoryStorage) {
	t.Helper()
	d, st, err := OpenDisk(fsys, dir, []uint64{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	return d, st
}

// logOf lists the storage's entries as "term:index".
func logOf(t *testing.T, st *raft.MemoryStorage) []string {
	t.Helper()
	first, _ := st.FirstIndex()
	last, _ := st.LastIndex()
	if last < first {
		return nil
	}
	es, err := st.Entries(first, last+1, 1<<40)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if want := fmt.Sprintf("t%d-i%d", e.GetTerm(), e.GetIndex()); string(e.GetData()) != want {
			t.Fatalf("entry %d holds %q, want %q", e.GetIndex(), e.GetData(), want)
		}
		out = append(out, fmt.Sprintf("%d:%d", e.GetTerm(), e.GetIndex()))
	}
	return out
}

func save(t *testing.T, d *Disk, rd controller.Ready) {
	t.Helper()
	if err := d.Save(rd); err != nil {
		t.Fatal(err)
	}
}

func TestDiskBootstrapAppendTruncateReload(t *testing.T) {
	m := newMemFS()
	d, st := open(t, m)
	if first, _ := st.FirstIndex(); first != 2 || len(Voters(st)) != 3 {
		t.Fatalf("bootstrap: first index %d voters %v", first, Voters(st))
	}
	save(t, d, controller.Ready{Entries: ents(2, 2, 10), HardState: hs(2, 1, 5)})
	// A new leader replaces the tail from 7 on.
	save(t, d, controller.Ready{Entries: ents(3, 7, 8), HardState: hs(3, 2, 6)})
	d.Close()
	_, st = open(t, m)
	got := fmt.Sprint(logOf(t, st))
	if want := "[2:2 2:3 2:4 2:5 2:6 3:7 3:8]"; got != want {
		t.Fatalf("log after reload %s, want %s", got, want)
	}
	h, _, _ := st.InitialState()
	if h.GetTerm() != 3 || h.GetVote() != 2 || h.GetCommit() != 6 {
		t.Fatalf("hard state %v", h.String())
	}
}

func TestDiskSegmentsCompactAndReplace(t *testing.T) {
	m := newMemFS()
	d, _ := open(t, m)
	big := make([]byte, segmentBytes/4)
	for i := uint64(2); i <= 12; i++ { // about 3 segments
		save(t, d, controller.Ready{Entries: []*pb.Entry{{Index: new(i), Term: new(uint64(2)), Data: big}}})
	}
	if len(d.segs) < 3 {
		t.Fatalf("%d segments, want at least 3", len(d.segs))
	}
	// Cut across segments.
	save(t, d, controller.Ready{Entries: ents(3, 4, 5)})
	if n, _ := m.ReadDir(dir + "/log"); len(n) != 1 || d.last != 5 {
		t.Fatalf("after cutting at 4: segments %v, last %d", n, d.last)
	}
	for i := uint64(6); i <= 14; i++ {
		save(t, d, controller.Ready{Entries: []*pb.Entry{{Index: new(i), Term: new(uint64(3)), Data: big}}})
	}
	snapData := controller.AppendSnapshot(nil, controller.NewState(10))
	save(t, d, controller.Ready{LocalSnapshot: &pb.Snapshot{Data: snapData, Metadata: &pb.SnapshotMetadata{
		Index: new(uint64(10)), Term: new(uint64(3)), ConfState: &pb.ConfState{Voters: []uint64{1, 2, 3}}}},
		CompactIndex: 9, HardState: hs(3, 0, 10)})
	d.Close()
	d, st := open(t, m)
	if first, _ := st.FirstIndex(); first != 11 {
		t.Fatalf("first index after snapshot at 10: %d", first)
	}
	if last, _ := st.LastIndex(); last != 14 {
		t.Fatalf("last index %d, want 14", last)
	}
	// A leader's snapshot replaces the log.
	snapData = controller.AppendSnapshot(nil, controller.NewState(20))
	save(t, d, controller.Ready{Snapshot: &pb.Snapshot{Data: snapData, Metadata: &pb.SnapshotMetadata{
		Index: new(uint64(20)), Term: new(uint64(4)), ConfState: &pb.ConfState{Voters: []uint64{1, 2, 3}}}},
		HardState: hs(4, 0, 20)})
	save(t, d, controller.Ready{Entries: ents(4, 21, 22), HardState: hs(4, 0, 22)})
	d.Close()
	_, st = open(t, m)
	if got := fmt.Sprint(logOf(t, st)); got != "[4:21 4:22]" {
		t.Fatalf("log after the leader's snapshot %s", got)
	}
}

// A crash after a leader's snapshot is durable and before the old log is
// removed: the stale log (another term at the snapshot's index) is dropped.
func TestDiskStaleLogBehindSnapshot(t *testing.T) {
	m := newMemFS()
	d, _ := open(t, m)
	save(t, d, controller.Ready{Entries: ents(2, 2, 8)})
	snap := &pb.Snapshot{Data: controller.AppendSnapshot(nil, controller.NewState(5)),
		Metadata: &pb.SnapshotMetadata{Index: new(uint64(5)), Term: new(uint64(3)),
			ConfState: &pb.ConfState{Voters: []uint64{1, 2, 3}}}}
	if err := d.writeSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	d.Close()
	_, st := open(t, m)
	if got := logOf(t, st); len(got) != 0 {
		t.Fatalf("stale entries kept: %v", got)
	}
}

func TestDiskTornTailAndCorruption(t *testing.T) {
	setup := func() (*memFS, string) {
		m := newMemFS()
		d, _ := open(t, m)
		save(t, d, controller.Ready{Entries: ents(2, 2, 6), HardState: hs(2, 1, 4)})
		d.Close()
		names, _ := m.ReadDir(dir + "/log")
		return m, dir + "/log/" + names[0]
	}
	frame := len(AppendEntry(nil, ents(2, 6, 6)[0]))
	tests := []struct {
		name    string
		damage  func(b []byte) []byte
		want    string // the log after reopening, or "" for ErrCorrupt
		corrupt bool
	}{
		{"cut in the last frame", func(b []byte) []byte { return b[:len(b)-3] }, "[2:2 2:3 2:4 2:5]", false},
		{"cut in the last header", func(b []byte) []byte { return b[:len(b)-frame+5] }, "[2:2 2:3 2:4 2:5]", false},
		{"zeros after the last frame", func(b []byte) []byte { return append(b, make([]byte, 100)...) }, "[2:2 2:3 2:4 2:5 2:6]", false},
		{"bad checksum of the last frame", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, "[2:2 2:3 2:4 2:5]", false},
		{"flipped byte mid-log", func(b []byte) []byte { b[frame+10] ^= 1; return b }, "", true},
		{"garbage after the last frame", func(b []byte) []byte { return append(b, 1, 2, 3, 4, 5, 6, 7, 8, 9) }, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, seg := setup()
			b, _ := m.ReadFile(seg)
			m.files[seg] = tt.damage(b)
			d, st, err := OpenDisk(m, dir, []uint64{1, 2, 3})
			if tt.corrupt {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("OpenDisk = %v, want ErrCorrupt", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(logOf(t, st)); got != tt.want {
				t.Fatalf("log %s, want %s", got, tt.want)
			}
			// The tail was cut off on disk: appending goes on from there.
			last, _ := st.LastIndex()
			save(t, d, controller.Ready{Entries: ents(2, last+1, last+1)})
			d.Close()
			if _, st, err = OpenDisk(m, dir, []uint64{1, 2, 3}); err != nil || len(logOf(t, st)) != int(last) {
				t.Fatalf("reopen after append: %v, %v", err, logOf(t, st))
			}
		})
	}
	// A hard state committing past the log is corruption too.
	m, seg := setup()
	m.files[seg] = nil
	if _, _, err := OpenDisk(m, dir, []uint64{1, 2, 3}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("commit past the log: %v, want ErrCorrupt", err)
	}
}

// entry reads entry index back from the disk's files (for tests).
func (d *Disk) entry(index uint64) (*pb.Entry, error) {
	_, st, err := OpenDisk(d.fs, d.dir, nil)
	if err != nil {
		return nil, err
	}
	first, _ := st.FirstIndex()
	if index < first {
		return nil, raft.ErrCompacted
	}
	es, err := st.Entries(index, index+1, 1<<40)
	if err != nil {
		return nil, err
	}
	return es[0], nil
}
