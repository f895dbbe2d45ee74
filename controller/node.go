package controller

import (
	"errors"
	"fmt"
	"slices"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// Config sets up a Node. Ticks are the driver's clock: it calls Tick at a
// fixed interval (say 100 ms) and every timeout here counts them.
type Config struct {
	ID             uint64 // this node's Raft id, equal to its broker id; >= 1
	ElectionTicks  int    // Raft election timeout; default 10
	HeartbeatTicks int    // Raft heartbeat interval; default 1
	// SessionTicks is the broker session timeout: the controller leader
	// fences a broker it has not heard from for longer. Default 30.
	SessionTicks uint64
	// SnapshotEntries: after this many entries applied since the last
	// snapshot, the node snapshots its state and compacts the log. Default
	// 1000 (0 means the default).
	SnapshotEntries uint64
	// CompactKeep entries stay in the log behind a snapshot, so that a
	// slightly lagging follower catches up without a snapshot. Default 100.
	CompactKeep uint64
	// AutoPreferredLeader: the controller leader moves a partition's
	// leadership back to its preferred replica (the first) once that
	// replica is alive and in the ISR.
	AutoPreferredLeader bool
	Logger              raft.Logger // nil: raft's default logger
}

func (c *Config) setDefaults() {
	if c.ElectionTicks == 0 {
		c.ElectionTicks = 10
	}
	if c.HeartbeatTicks == 0 {
		c.HeartbeatTicks = 1
	}
	if c.SessionTicks == 0 {
		c.SessionTicks = 30
	}
	if c.SnapshotEntries == 0 {
		c.SnapshotEntries = 1000
	}
	if c.CompactKeep == 0 {
		c.CompactKeep = 100
	}
}

// Result is the outcome of one applied command: Err is nil or the reason
// the state refused it. A driver answers the request it was waiting for
// when Command.Proposer is its own node id.
type Result struct {
	Index   uint64
	Command Command
	Err     error
}

// Ready is the work a driver does for a Node, in this order: persist
// Snapshot, Entries and HardState durably (and LocalSnapshot, after which
// log entries up to CompactIndex may be dropped), call Advance, then send
// Messages; answer waiting requests from Results at any point.
type Ready struct {
	HardState *pb.HardState // nil: unchanged
	Entries   []*pb.Entry   // to append; they replace any entries from their first index on
	Snapshot  *pb.Snapshot  // from the leader: replaces the state and the log before it
	Messages  []*pb.Message // to send once the above is durable
	Results   []Result      // commands applied to State in this Ready
	// LocalSnapshot is the state at its index, taken to bound the log.
	LocalSnapshot *pb.Snapshot
	CompactIndex  uint64 // entries up to here are covered by LocalSnapshot and may be dropped

	raw raft.Ready
}

type partitionKey struct {
	topic string
	index int32
}

// Node is one controller replica: a RawNode and the metadata State it
// applies committed commands to. Storage is the in-memory image of what the
// driver has persisted (Advance writes to it). Not safe for concurrent use:
// one goroutine drives it.
type Node struct {
	cfg       Config
	rn        *raft.RawNode
	storage   *raft.MemoryStorage
	state     *State
	confState *pb.ConfState
	snapIndex uint64 // index of the latest snapshot in storage
	lastTerm  uint64 // term of the last applied entry

	leader   bool
	now      uint64           // ticks since start
	lastSeen map[int32]uint64 // leader only: tick of each alive broker's last heartbeat
	pending  map[partitionKey]int32
}

// Bootstrap writes the initial snapshot of a new cluster into empty
// storage: index 1, term 1, the voters peers and an empty state. Every
// node of a new cluster bootstraps with the same peers; the driver
// persists the returned snapshot.
func Bootstrap(st *raft.MemoryStorage, peers []uint64) (*pb.Snapshot, error) {
	first, _ := st.FirstIndex()
	last, _ := st.LastIndex()
	if first != 1 || last != 0 {
		return nil, fmt.Errorf("controller: bootstrap into storage holding entries %d..%d", first, last)
	}
	if len(peers) == 0 || slices.Contains(peers, 0) {
		return nil, fmt.Errorf("%w: peers %v", ErrInvalid, peers)
	}
	snap := &pb.Snapshot{
		Data: AppendSnapshot(nil, NewState(1)),
		Metadata: &pb.SnapshotMetadata{
			Index: new(uint64(1)), Term: new(uint64(1)),
			ConfState: &pb.ConfState{Voters: slices.Clone(peers)},
		},
	}
	if err := st.ApplySnapshot(snap); err != nil {
		return nil, err
	}
	return snap, nil
}

// NewNode starts a node over storage, which holds what this node persisted
// (at least the bootstrap snapshot): the state is decoded from its
// snapshot and Raft replays the committed entries after it.
func NewNode(cfg Config, st *raft.MemoryStorage) (*Node, error) {
	cfg.setDefaults()
	snap, err := st.Snapshot()
	if err != nil {
		return nil, err
	}
	if raft.IsEmptySnap(snap) {
		return nil, errors.New("controller: storage has no snapshot; bootstrap it first")
	}
	state, _, err := ParseSnapshot(snap.GetData())
	if err != nil {
		return nil, fmt.Errorf("controller: stored snapshot: %w", err)
	}
	idx := snap.GetMetadata().GetIndex()
	if state.Applied() != idx {
		return nil, fmt.Errorf("%w: data at %d, raft index %d", ErrSnapshotIndexMismatch, state.Applied(), idx)
	}
	rn, err := raft.NewRawNode(&raft.Config{
		ID:              cfg.ID,
		ElectionTick:    cfg.ElectionTicks,
		HeartbeatTick:   cfg.HeartbeatTicks,
		Storage:         st,
		Applied:         idx,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 256,
		CheckQuorum:     true,
		PreVote:         true,
		Logger:          cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	return &Node{
		cfg: cfg, rn: rn, storage: st, state: state,
		confState: snap.GetMetadata().GetConfState(),
		snapIndex: idx, lastTerm: snap.GetMetadata().GetTerm(),
		lastSeen: map[int32]uint64{}, pending: map[partitionKey]int32{},
	}, nil
}

// State is the applied metadata; read it, never change it.
func (n *Node) State() *State { return n.state }

// Status is the Raft status: term, leader, commit and applied index.
func (n *Node) Status() raft.BasicStatus { return n.rn.BasicStatus() }

// IsLeader reports whether this node leads the Raft group (the controller).
func (n *Node) IsLeader() bool { return n.leader }

// Step feeds a message received from a peer. A snapshot whose data does not
// decode is refused before Raft sees it.
func (n *Node) Step(m *pb.Message) error {
	if m.GetType() == pb.MsgSnap {
		if _, _, err := ParseSnapshot(m.GetSnapshot().GetData()); err != nil {
			return fmt.Errorf("controller: snapshot from %d: %w", m.GetFrom(), err)
		}
	}
	return n.rn.Step(m)
}

// ReportUnreachable and ReportSnapshot pass transport outcomes to Raft.
func (n *Node) ReportUnreachable(id uint64) { n.rn.ReportUnreachable(id) }

// ReportSnapshot reports whether a MsgSnap reached its peer.
func (n *Node) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	n.rn.ReportSnapshot(id, status)
}

// Propose submits c (Proposer is set to this node); its Result arrives in
// a later Ready once committed. Topic creation and deletion are checked
// against this node's view first, for a clear early error; Apply checks
// again.
func (n *Node) Propose(c Command) error {
	c.Proposer = n.cfg.ID
	switch c.Type {
	case CmdCreateTopic, CmdDeleteTopic, CmdAlterTopic, CmdAddPartitions:
		if err := n.state.Validate(c); err != nil {
			return err
		}
	}
	if err := n.rn.Propose(AppendCommand(nil, c)); err != nil {
		if errors.Is(err, raft.ErrProposalDropped) {
			return ErrNoLeader
		}
		return err
	}
	return nil
}

// Heartbeat records that broker id, registered at epoch, is alive. Only
// the controller leader takes heartbeats (ErrNotController elsewhere, and
// ErrNoLeader while a new leader has not yet applied its predecessors'
// commands: retry); a fenced broker or a stale epoch gets ErrBrokerFenced or
// ErrStaleBrokerEpoch and must register again.
func (n *Node) Heartbeat(id int32, epoch uint64) error {
	if !n.leader {
		return ErrNotController
	}
	if !n.caughtUp() {
		return ErrNoLeader
	}
	if err := n.state.checkBroker(id, epoch); err != nil {
		return err
	}
	n.lastSeen[id] = n.now
	return nil
}

// LastHeartbeat is the tick of broker id's last heartbeat on this leader.
func (n *Node) LastHeartbeat(id int32) (uint64, bool) {
	t, ok := n.lastSeen[id]
	return t, ok
}

// Now is the number of ticks since the node started.
func (n *Node) Now() uint64 { return n.now }

// Campaign starts an election now rather than after the election timeout.
// The driver calls it at start when this node is the only voter (a
// one-node cluster leads at once).
func (n *Node) Campaign() error { return n.rn.Campaign() }

// Tick advances Raft's clock and, on the leader, makes the liveness and
// preferred-leader decisions by proposing commands.
func (n *Node) Tick() {
	n.rn.Tick()
	n.now++
	if n.leader && n.caughtUp() {
		n.fenceSilent()
		if n.cfg.AutoPreferredLeader {
			n.electPreferred()
		}
	}
}

// caughtUp reports whether this leader has applied an entry of its own
// term, so that its State holds every command committed before it led: a
// new leader must not judge a broker's epoch (or liveness) from a view
// that lacks its latest registration.
func (n *Node) caughtUp() bool {
	return n.lastTerm == n.rn.BasicStatus().HardState.GetTerm()
}

// fenceSilent proposes to fence each alive broker silent for longer than
// the session timeout. A broker first seen by this leader gets a full
// session (a new leader has heard nobody yet). After proposing, the broker
// gets another session before the proposal is repeated (it may be lost).
func (n *Node) fenceSilent() {
	for _, id := range n.state.brokerIDs() {
		b := n.state.brokers[id]
		if !b.Alive {
			delete(n.lastSeen, id)
			continue
		}
		last, ok := n.lastSeen[id]
		if !ok {
			n.lastSeen[id] = n.now
			continue
		}
		if n.now-last > n.cfg.SessionTicks {
			n.lastSeen[id] = n.now
			_ = n.Propose(Command{Type: CmdFenceBroker, Broker: id, BrokerEpoch: b.Epoch})
		}
	}
}

// electPreferred proposes to give each partition back to its preferred
// replica when that replica is alive and in the ISR, once per partition
// epoch.
func (n *Node) electPreferred() {
	n.state.forEachPartition(func(topic string, i int32, p *Partition) {
		pref := p.Replicas[0]
		if p.Leader == pref || !slices.Contains(p.ISR, pref) || !n.state.alive(pref) {
			return
		}
		k := partitionKey{topic, i}
		if e, ok := n.pending[k]; ok && e == p.PartitionEpoch {
			return
		}
		n.pending[k] = p.PartitionEpoch
		_ = n.Propose(Command{Type: CmdElectLeader, Topic: topic, Partition: i,
			PartitionEpoch: p.PartitionEpoch, Broker: pref})
	})
}

// HasReady reports whether Ready has work.
func (n *Node) HasReady() bool { return n.rn.HasReady() }

// Ready returns the next batch of work and applies the committed commands
// in it to State (State is volatile: after a crash it is rebuilt from what
// was persisted).
func (n *Node) Ready() Ready {
	raw := n.rn.Ready()
	rd := Ready{HardState: raw.HardState, Entries: raw.Entries, Messages: raw.Messages, raw: raw}
	if raw.SoftState != nil {
		n.setLeader(raw.SoftState.RaftState == raft.StateLeader)
	}
	if !raft.IsEmptySnap(raw.Snapshot) {
		rd.Snapshot = raw.Snapshot
		n.installSnapshot(raw.Snapshot)
	}
	for _, e := range raw.CommittedEntries {
		rd.Results = n.apply(e, rd.Results)
	}
	if applied := n.state.Applied(); applied-n.snapIndex >= n.cfg.SnapshotEntries {
		rd.LocalSnapshot = &pb.Snapshot{
			Data: AppendSnapshot(nil, n.state),
			Metadata: &pb.SnapshotMetadata{
				Index: new(applied), Term: new(n.lastTerm), ConfState: n.confState,
			},
		}
		if applied > n.cfg.CompactKeep {
			rd.CompactIndex = applied - n.cfg.CompactKeep
		}
	}
	return rd
}

func (n *Node) setLeader(leader bool) {
	if leader && !n.leader {
		clear(n.lastSeen)
		clear(n.pending)
	}
	n.leader = leader
}

func (n *Node) installSnapshot(snap *pb.Snapshot) {
	state, _, err := ParseSnapshot(snap.GetData())
	if err != nil { // Step checked it
		panic(fmt.Sprintf("BUG: controller: snapshot at %d: %v", snap.GetMetadata().GetIndex(), err))
	}
	n.state = state
	n.confState = snap.GetMetadata().GetConfState()
	n.snapIndex = snap.GetMetadata().GetIndex()
	n.lastTerm = snap.GetMetadata().GetTerm()
}

func (n *Node) apply(e *pb.Entry, results []Result) []Result {
	n.lastTerm = e.GetTerm()
	idx := e.GetIndex()
	if e.GetType() != pb.EntryNormal {
		panic(fmt.Sprintf("BUG: controller: conf change at %d; membership is static", idx))
	}
	if len(e.GetData()) == 0 { // a new leader's empty entry
		n.state.skip(idx)
		return results
	}
	c, _, err := ParseCommand(e.GetData())
	if err != nil {
		n.state.skip(idx)
		return append(results, Result{Index: idx, Err: err})
	}
	err = n.state.Apply(idx, c)
	if err == nil && c.Type == CmdRegisterBroker {
		n.lastSeen[c.Broker] = n.now
	}
	return append(results, Result{Index: idx, Command: c, Err: err})
}

// Advance records rd as persisted: it mirrors rd into storage and lets
// Raft move on. Call it after the driver made rd durable.
func (n *Node) Advance(rd Ready) {
	if rd.Snapshot != nil {
		must(n.storage.ApplySnapshot(rd.Snapshot))
	}
	if rd.HardState != nil {
		must(n.storage.SetHardState(rd.HardState))
	}
	must(n.storage.Append(rd.Entries))
	if s := rd.LocalSnapshot; s != nil {
		_, err := n.storage.CreateSnapshot(s.GetMetadata().GetIndex(), s.GetMetadata().GetConfState(), s.GetData())
		must(err)
		n.snapIndex = s.GetMetadata().GetIndex()
		if first, _ := n.storage.FirstIndex(); rd.CompactIndex >= first {
			must(n.storage.Compact(rd.CompactIndex))
		}
	}
	n.rn.Advance(rd.raw)
}

func must(err error) {
	if err != nil {
		panic("BUG: controller: storage: " + err.Error())
	}
}
