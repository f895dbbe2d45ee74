package driver

import (
	"errors"
	"fmt"
	"io"
	"log"
	"testing"

	"github.com/ringmq/ringmq/controller"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

var quietRaft = &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)}

// crashRun drives a one-node controller over fsys: it registers a broker
// and creates topics until proposals run out or a write fails. It records
// what the node was told was durable.
type crashRun struct {
	t        *testing.T
	fsys     *memFS
	d        *Disk
	n        *controller.Node
	hs       *pb.HardState        // the last hard state Save returned nil for
	saved    map[uint64]*pb.Entry // entries Save returned nil for
	applied  map[string]uint64    // topics whose create was applied, and its index
	crashed  bool
	proposed int
}

func newCrashRun(t *testing.T, fsys *memFS) (*crashRun, error) {
	d, st, err := OpenDisk(fsys, dir, []uint64{1})
	if err != nil {
		return nil, err
	}
	d.segBytes = 300 // several segments
	n, err := controller.NewNode(controller.Config{ID: 1, ElectionTicks: 3, SnapshotEntries: 7,
		CompactKeep: 2, Logger: quietRaft}, st)
	if err != nil {
		return nil, err
	}
	h, _, _ := st.InitialState()
	return &crashRun{t: t, fsys: fsys, d: d, n: n, hs: h, saved: map[uint64]*pb.Entry{},
		applied: map[string]uint64{}}, nil
}

// drain persists and advances until no work is left or a write fails.
func (r *crashRun) drain() {
	for i := 0; i < 100 && !r.crashed && r.n.HasReady(); i++ {
		rd := r.n.Ready()
		if err := r.d.Save(rd); err != nil {
			if !errors.Is(err, errCrash) {
				r.t.Fatalf("Save: %v", err)
			}
			r.crashed = true
			return
		}
		if rd.HardState != nil {
			r.hs = rd.HardState
		}
		for _, e := range rd.Entries {
			r.saved[e.GetIndex()] = e
		}
		for _, res := range rd.Results {
			if res.Err == nil && res.Command.Type == controller.CmdCreateTopic {
				r.applied[res.Command.Topic] = res.Index
			}
		}
		r.n.Advance(rd)
	}
}

// lead ticks until the node leads and has applied an entry of its term.
func (r *crashRun) lead() {
	for i := 0; i < 100 && !r.crashed; i++ {
		r.n.Tick()
		r.drain()
		if r.n.IsLeader() && !errors.Is(r.n.Heartbeat(99, 0), controller.ErrNoLeader) {
			return
		}
	}
	if !r.crashed {
		r.t.Fatal("the one node never leads")
	}
}

func (r *crashRun) work(topics int) {
	r.lead()
	if _, ok := r.n.State().Broker(1); !ok && !r.crashed {
		if err := r.n.Propose(controller.Command{Type: controller.CmdRegisterBroker, Broker: 1, Addr: "b1"}); err != nil {
			r.t.Fatal(err)
		}
		r.drain()
	}
	for i := 0; i < topics && !r.crashed; i++ {
		name := fmt.Sprintf("t%03d", r.proposed)
		r.proposed++
		if err := r.n.Propose(controller.Command{Type: controller.CmdCreateTopic, Topic: name,
			Partitions: 1, Replicas: 1}); err != nil {
			r.t.Fatalf("propose %s: %v", name, err)
		}
		r.drain()
	}
}

// Cut the write stream at every k-th write (a torn write), restart from
// what is on disk and check Raft's invariants: the hard state never goes
// back, no entry reported durable is lost or changed, every applied topic
// creation is there again, and the log takes new writes.
func TestCrashAtEveryWrite(t *testing.T) {
	const topics = 25
	full := newMemFS()
	r, err := newCrashRun(t, full)
	if err != nil {
		t.Fatal(err)
	}
	r.work(topics)
	if r.crashed || len(r.applied) != topics {
		t.Fatalf("uncut run: crashed %v, %d topics applied", r.crashed, len(r.applied))
	}
	total := full.ops
	t.Logf("an uncut run makes %d writes", total)
	for k := 1; k <= total; k++ {
		fsys := newMemFS()
		fsys.cutAt = k
		r, err := newCrashRun(t, fsys)
		if err != nil {
			if !errors.Is(err, errCrash) && !errors.Is(err, errCrash) {
				t.Fatalf("k=%d: open: %v", k, err)
			}
			fsys.restart()
			if _, err := newCrashRun(t, fsys); err != nil {
				t.Fatalf("k=%d: reopen after a crash in bootstrap: %v", k, err)
			}
			continue
		}
		r.work(topics)
		if !r.crashed {
			t.Fatalf("k=%d: the cut never happened", k)
		}
		fsys.restart()
		r2, err := newCrashRun(t, fsys)
		if err != nil {
			t.Fatalf("k=%d: reopen: %v", k, err)
		}
		checkRestart(t, k, r, r2)
	}
}

func checkRestart(t *testing.T, k int, before, after *crashRun) {
	st := after.n.Status().HardState
	if st.GetTerm() < before.hs.GetTerm() || st.GetCommit() < before.hs.GetCommit() ||
		(st.GetTerm() == before.hs.GetTerm() && st.GetVote() != before.hs.GetVote()) {
		t.Fatalf("k=%d: hard state went back: %v, durable before: %v", k, st.String(), before.hs.String())
	}
	for idx, e := range before.saved {
		got, err := after.d.entry(idx)
		if errors.Is(err, raft.ErrCompacted) {
			continue // covered by the snapshot
		}
		if err != nil || got.GetTerm() != e.GetTerm() || string(got.GetData()) != string(e.GetData()) {
			t.Fatalf("k=%d: durable entry %d (term %d) lost or changed: %v, %v", k, idx, e.GetTerm(), got, err)
		}
	}
	after.proposed = 1000 // new names
	after.work(3)
	if after.crashed {
		t.Fatalf("k=%d: writes fail after restart", k)
	}
	for name, idx := range before.applied {
		if _, ok := after.n.State().Topic(name); !ok {
			t.Fatalf("k=%d: topic %s, applied at %d, lost", k, name, idx)
		}
	}
	if err := after.n.State().CheckInvariants(); err != nil {
		t.Fatalf("k=%d: %v", k, err)
	}
	// What was written after recovery reads back.
	commit := after.n.Status().HardState.GetCommit()
	_, ms, err := OpenDisk(after.fsys, dir, nil)
	if err != nil {
		t.Fatalf("k=%d: reopen after new writes: %v", k, err)
	}
	if last, _ := ms.LastIndex(); last < commit {
		t.Fatalf("k=%d: reopen after new writes: last index %d < commit %d", k, last, commit)
	}
}
