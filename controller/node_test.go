package controller

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// single drives a one-node cluster: storage is its durable part.
type single struct {
	t       *testing.T
	st      *raft.MemoryStorage
	n       *Node
	cfg     Config
	results []Result
}

func newSingle(t *testing.T, cfg Config) *single {
	st := raft.NewMemoryStorage()
	if _, err := Bootstrap(st, []uint64{1}); err != nil {
		t.Fatal(err)
	}
	cfg.ID, cfg.Logger = 1, quietRaft
	s := &single{t: t, st: st, cfg: cfg}
	s.restart()
	return s
}

func (s *single) restart() {
	n, err := NewNode(s.cfg, s.st)
	if err != nil {
		s.t.Fatal(err)
	}
	s.n = n
}

func (s *single) drain() {
	for i := 0; s.n.HasReady(); i++ {
		if i == 100 {
			s.t.Fatal("Ready never drains")
		}
		rd := s.n.Ready()
		s.results = append(s.results, rd.Results...)
		s.n.Advance(rd)
	}
}

func (s *single) tick(n int) {
	for range n {
		s.n.Tick()
		s.drain()
	}
}

// lead ticks until the node leads (bounded).
func (s *single) lead() {
	for i := 0; !s.n.IsLeader(); i++ {
		if i == 100 {
			s.t.Fatal("no leader after 100 ticks")
		}
		s.tick(1)
	}
}

// do proposes c and returns its result.
func (s *single) do(c Command) error {
	s.t.Helper()
	s.results = nil
	if err := s.n.Propose(c); err != nil {
		return err
	}
	s.drain()
	for _, r := range s.results {
		if r.Command.Type == c.Type && r.Command.Proposer == 1 {
			return r.Err
		}
	}
	s.t.Fatalf("no result for %s", c.Type)
	return nil
}

func TestNodeLiveness(t *testing.T) {
	s := newSingle(t, Config{SessionTicks: 5})
	if err := s.n.Heartbeat(1, 1); !errors.Is(err, ErrNotController) {
		t.Fatalf("heartbeat before leading: %v", err)
	}
	s.lead()
	if err := s.do(reg(1)); err != nil {
		t.Fatal(err)
	}
	b, _ := s.n.State().Broker(1)
	err := s.n.Propose(create("a", 2, 2))
	if !errors.Is(err, ErrNotEnoughBrokers) || !strings.Contains(err.Error(), "2 > 1 live brokers") {
		t.Fatalf("R=2 on one broker: %v", err)
	}
	if err := s.do(create("a", 2, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.n.Heartbeat(1, b.Epoch-1); !errors.Is(err, ErrStaleBrokerEpoch) {
		t.Fatalf("heartbeat with a stale epoch: %v", err)
	}
	// Heartbeats keep the broker alive past several sessions.
	for range 20 {
		if err := s.n.Heartbeat(1, b.Epoch); err != nil {
			t.Fatal(err)
		}
		s.tick(2)
	}
	if b, _ := s.n.State().Broker(1); !b.Alive {
		t.Fatal("heartbeating broker fenced")
	}
	// Silence: fenced after the session, its partitions offline.
	s.tick(7)
	if b, _ := s.n.State().Broker(1); b.Alive {
		t.Fatalf("broker silent for 7 ticks (session 5) still alive")
	}
	if p := part(t, s.n.State(), "a", 0); p.Leader != NoLeader || p.LeaderEpoch != 1 {
		t.Fatalf("a/0 %+v, want offline at leader epoch 1", p)
	}
	if err := s.n.Heartbeat(1, b.Epoch); !errors.Is(err, ErrBrokerFenced) {
		t.Fatalf("heartbeat of a fenced broker: %v", err)
	}
	if err := s.do(reg(1)); err != nil {
		t.Fatal(err)
	}
	if p := part(t, s.n.State(), "a", 0); p.Leader != 1 || p.LeaderEpoch != 2 {
		t.Fatalf("a/0 %+v, want broker 1 back as leader at leader epoch 2", p)
	}
}

// TestNodeRestart checks that a node restarted from its storage (snapshot
// plus log, compacted) rebuilds the same state.
func TestNodeRestart(t *testing.T) {
	s := newSingle(t, Config{SnapshotEntries: 4, CompactKeep: 2})
	s.lead()
	for _, c := range []Command{reg(1), reg(2), reg(3), create("a", 3, 2), create("b", 1, 3), create("c", 2, 1)} {
		if err := s.do(c); err != nil {
			t.Fatal(err)
		}
	}
	if first, _ := s.st.FirstIndex(); first < 3 {
		t.Fatalf("log not compacted: first index %d", first)
	}
	want := s.n.State()
	s.restart()
	s.lead()
	// The restarted node has also applied its new term's empty entry:
	// everything but the applied index must be equal.
	got, _, _ := ParseSnapshot(AppendSnapshot(nil, s.n.State()))
	if got.Applied() <= want.Applied() {
		t.Fatalf("restarted node applied %d, before the restart %d", got.Applied(), want.Applied())
	}
	got.applied = want.Applied()
	if !got.Equal(want) {
		t.Fatalf("restarted state %+v differs from %+v", got.Brokers(), want.Brokers())
	}
	if c, _ := s.n.State().Topic("c"); c == nil || len(c.Partitions) != 2 {
		t.Fatalf("topic c after restart: %+v", c)
	}
}

func TestNodeStepRefusesCorruptSnapshot(t *testing.T) {
	s := newSingle(t, Config{})
	m := &pb.Message{Type: pb.MsgSnap.Enum(), From: new(uint64(2)), To: new(uint64(1)),
		Snapshot: &pb.Snapshot{Data: []byte("not a snapshot"), Metadata: &pb.SnapshotMetadata{Index: new(uint64(9))}}}
	if err := s.n.Step(m); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt snapshot: %v", err)
	}
}

// TestNodePreferredLeaderReturns: a preferred replica that was fenced,
// registered again and was added back to the ISR gets its leadership back
// when AutoPreferredLeader is on, and not when it is off.
func TestNodePreferredLeaderReturns(t *testing.T) {
	for _, auto := range []bool{true, false} {
		t.Run(fmt.Sprintf("auto=%v", auto), func(t *testing.T) {
			s := newSingle(t, Config{SessionTicks: 5, AutoPreferredLeader: auto})
			s.lead()
			for _, c := range []Command{reg(1), reg(2), create("a", 2, 2)} {
				if err := s.do(c); err != nil {
					t.Fatal(err)
				}
			}
			if p := part(t, s.n.State(), "a", 0); p.Leader != 1 {
				t.Fatalf("a/0 %+v, want preferred leader 1", p)
			}
			b2, _ := s.n.State().Broker(2)
			for range 8 { // broker 1 falls silent, broker 2 heartbeats
				if err := s.n.Heartbeat(2, b2.Epoch); err != nil {
					t.Fatal(err)
				}
				s.tick(1)
			}
			if p := part(t, s.n.State(), "a", 0); p.Leader != 2 || p.LeaderEpoch != 1 {
				t.Fatalf("a/0 %+v, want leader 2 at epoch 1 after broker 1 was fenced", p)
			}
			if err := s.do(reg(1)); err != nil {
				t.Fatal(err)
			}
			b1, _ := s.n.State().Broker(1)
			p := part(t, s.n.State(), "a", 0)
			if err := s.do(Command{Type: CmdExpandISR, Topic: "a", PartitionEpoch: p.PartitionEpoch, Broker: 1, BrokerEpoch: b1.Epoch}); err != nil {
				t.Fatal(err)
			}
			if err := errors.Join(s.n.Heartbeat(1, b1.Epoch), s.n.Heartbeat(2, b2.Epoch)); err != nil {
				t.Fatal(err)
			}
			s.tick(2)
			p = part(t, s.n.State(), "a", 0)
			if auto && (p.Leader != 1 || p.LeaderEpoch != 2) {
				t.Fatalf("a/0 %+v, want broker 1 back as leader at epoch 2", p)
			}
			if !auto && p.Leader != 2 {
				t.Fatalf("a/0 %+v, want broker 2 still leading with the switch off", p)
			}
		})
	}
}
