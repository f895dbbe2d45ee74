package replica

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// The replication simulation: three replicas of one partition (a leader
// and two followers), each a Replica driven by a fake driver over an
// in-memory log, wired through a simulated network that delays, reorders
// and drops messages, and a tiny model controller that owns leader, leader
// epoch, partition epoch and ISR the way controller/ does (leaders only
// from the ISR, epochs only grow, ISR changes fenced by partition epoch, a
// crashed broker leaves every ISR with another member). A seeded
// generator produces (acks=all and acks=1), crashes and restarts brokers
// (losing a random part of what they had not flushed), and moves
// leadership. Checked after every step:
//
//   - no acknowledged (acks=all) record is lost or changed: every replica
//     that becomes leader holds all of them, at their offsets;
//   - all replicas' logs agree below their HWs;
//   - a leader's HW never moves back while it leads in one epoch;
//   - leader epochs only grow (per replica, and along every log);
//   - a follower never truncates below its HW.
//
// At the end the faults stop and the cluster must converge: every replica
// holds the leader's log, and the HW reaches the log end.
//
//	go test ./replica -run TestReplicationSim -args -seed=N       replay one seed
//	go test ./replica -run TestReplicationSim -args -sim.long     50 seeds × 20,000 steps

var simLong = flag.Bool("sim.long", false, "run TestReplicationSim with many seeds and long runs")

func TestReplicationSim(t *testing.T) {
	// 1003 caught a follower dropping the epoch of batches it had just
	// accepted when a metadata refresh came before their append
	seeds := []uint64{1, 2, 1003, uint64(time.Now().UnixNano())}
	steps := 2000
	if *simLong {
		seeds, steps = nil, 20000
		for i := range uint64(50) {
			seeds = append(seeds, 1000+i)
		}
	}
	if *seedFlag != 0 {
		seeds = []uint64{*seedFlag}
	}
	for _, seed := range seeds {
		for _, sync := range []bool{true, false} {
			t.Run(fmt.Sprintf("%d/sync=%v", seed, sync), func(t *testing.T) {
				s := newSim(t, seed, sync)
				s.run(steps)
			})
		}
	}
}

const simTick = 10 * time.Millisecond

type simBatch struct {
	base, last uint64
	epoch      int32
	ids        []uint64 // one per offset
}

type simWrite struct {
	base    uint64
	batches []simBatch
}

type simNode struct {
	id       ID
	up       bool
	decided  bool // heard from the controller since (re)start
	rep      *Replica
	log      []simBatch // completed writes
	flushed  uint64     // durable prefix
	writes   []simWrite // in flight, completed in order
	flushing bool
	flushTo  uint64
	// leader side: produce parts in flight by token
	parts map[Token]simPart
	// follower side: fetched batches by answer token
	fetched map[Token][]simBatch
	// the driver's timeouts: the fetch out, the proposal out
	fetchSeq   int
	fetchAt    int
	proposal   ISRChange
	proposing  bool
	proposedAt int
	// checks
	epochSeen   int32
	leaderHW    uint64
	leaderEpoch int32
	leading     bool
}

type simPart struct {
	level Level
	ids   []uint64
}

func (n *simNode) logEnd() uint64 {
	if len(n.log) == 0 {
		return 0
	}
	return n.log[len(n.log)-1].last + 1
}

// recordAt returns the epoch and id of offset off in the log.
func (n *simNode) recordAt(off uint64) (int32, uint64, bool) {
	i, _ := slices.BinarySearchFunc(n.log, off, func(b simBatch, o uint64) int {
		switch {
		case b.last < o:
			return -1
		case b.base > o:
			return 1
		}
		return 0
	})
	if i == len(n.log) || n.log[i].base > off {
		return 0, 0, false
	}
	b := n.log[i]
	return b.epoch, b.ids[off-b.base], true
}

type msgKind uint8

const (
	msgFetch msgKind = iota
	msgFetchAnswer
	msgPropose
	msgBecomeLeader
	msgBecomeFollower
	msgISRChanged
	msgISRRefused
)

type simMsg struct {
	at       int
	from, to ID
	kind     msgKind
	req      FetchRequest
	ans      FetchAnswer
	batches  []simBatch
	change   ISRChange
	epoch    int32
	pepoch   int32
	leader   ID
	isr      []ID
	incarn   int // the receiver's incarnation it was sent to (a restart drops older ones)
	senderIn int
	seq      int // fetch and answer: the follower's fetch number
}

type simController struct {
	leader         ID // 0: offline
	epoch, pepoch  int32
	isr            []ID
	alive          map[ID]bool
	lastEpochGiven int32
}

type sim struct {
	t        *testing.T
	seed     uint64
	rng      *rand.Rand
	sync     bool
	step     int
	now      time.Time
	nodes    []*simNode
	incarn   map[ID]int
	msgs     []simMsg
	ctl      simController
	acked    map[uint64]uint64 // offset → id of every acks=all record acknowledged
	nextID   uint64
	nextTok  Token
	history  []string
	faults   bool
	produced int
	nAcked   int
	stats    map[string]int
}

func newSim(t *testing.T, seed uint64, sync bool) *sim {
	s := &sim{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 0x5eed)), sync: sync, now: t0,
		incarn: map[ID]int{}, acked: map[uint64]uint64{}, faults: true, stats: map[string]int{}}
	s.ctl = simController{leader: 1, epoch: 1, pepoch: 1, isr: []ID{1, 2, 3}, alive: map[ID]bool{1: true, 2: true, 3: true}, lastEpochGiven: 1}
	for id := ID(1); id <= 3; id++ {
		n := &simNode{id: id}
		s.nodes = append(s.nodes, n)
		s.start(n)
		s.assign(n)
	}
	return s
}

func (s *sim) cfg(id ID) Config {
	c := Config{ID: id, MinInsync: 2, ReplicaLagTime: 30 * simTick, CheckpointInterval: time.Second}
	if s.sync {
		c.Sync = true
	} else {
		c.FlushInterval = 5 * simTick
	}
	return c
}

// start (re)creates n's replica from its log, as a broker's open does:
// recovery fsyncs what it kept, the epoch cache is rebuilt from batches.
func (s *sim) start(n *simNode) {
	n.up, n.decided, n.leading = true, false, false
	n.flushed = n.logEnd()
	n.writes, n.flushing = nil, false
	n.parts, n.fetched = map[Token]simPart{}, map[Token][]simBatch{}
	s.incarn[n.id]++
	r, err := New(s.cfg(n.id), Offsets{Flushed: n.flushed, LogEnd: n.logEnd()})
	if err != nil {
		s.fail("new replica %d: %v", n.id, err)
	}
	var c Epochs
	for _, b := range n.log {
		if err := c.Assign(b.epoch, b.base); err != nil {
			s.fail("replica %d: log epochs: %v", n.id, err)
		}
	}
	if err := r.SetEpochs(c.Entries(nil)); err != nil {
		s.fail("replica %d: SetEpochs: %v", n.id, err)
	}
	r.Tick(s.now)
	n.rep = r
}

// assign tells n the controller's current decision for it (registration
// answers synchronously; later decisions travel as messages).
func (s *sim) assign(n *simNode) {
	c := &s.ctl
	switch {
	case c.leader == n.id:
		s.becomeLeader(n, c.epoch, c.pepoch, c.isr)
	case c.leader != 0:
		s.becomeFollower(n, c.epoch, c.leader)
	}
}

func (s *sim) fail(format string, args ...any) {
	s.t.Helper()
	h := s.history
	if len(h) > 400 {
		h = h[len(h)-400:]
	}
	s.t.Fatalf("seed %d sync=%v step %d: %s\nlast events:\n  %s\nreplay: go test ./replica -run 'TestReplicationSim' -args -seed=%d",
		s.seed, s.sync, s.step, fmt.Sprintf(format, args...), strings.Join(h, "\n  "), s.seed)
}

func (s *sim) logf(format string, args ...any) {
	s.history = append(s.history, fmt.Sprintf("%d: ", s.step)+fmt.Sprintf(format, args...))
	if len(s.history) > 400 {
		s.history = s.history[200:]
	}
}

func (s *sim) node(id ID) *simNode { return s.nodes[id-1] }

func (s *sim) send(m simMsg) {
	if s.faults && s.rng.IntN(100) < 5 {
		return // dropped
	}
	m.at = s.step + 1 + s.rng.IntN(4)
	if m.to != 0 {
		m.incarn = s.incarn[m.to]
	}
	if m.from != 0 {
		m.senderIn = s.incarn[m.from]
	}
	s.msgs = append(s.msgs, m)
}

func (s *sim) run(steps int) {
	for s.step = 0; s.step < steps; s.step++ {
		s.tick()
	}
	// heal: no faults, no produce; the cluster must converge
	s.faults = false
	for _, n := range s.nodes {
		if !n.up {
			s.restart(n)
		}
	}
	for i := 0; i < 3000 && !s.converged(); i++ {
		s.step++
		s.tick()
	}
	if !s.converged() {
		s.fail("did not converge after healing: %s", s.describe())
	}
	s.checkAckedOn(s.node(s.ctl.leader), "final leader")
	s.t.Logf("seed %d sync=%v: %d produced, %d acks=all acknowledged, final log end %d, %v",
		s.seed, s.sync, s.produced, s.nAcked, s.node(s.ctl.leader).logEnd(), s.stats)
}

func (s *sim) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "controller leader %d epoch %d pepoch %d isr %v;", s.ctl.leader, s.ctl.epoch, s.ctl.pepoch, s.ctl.isr)
	for _, n := range s.nodes {
		role, e := n.rep.Role()
		fmt.Fprintf(&b, " [%d up=%v %v e%d off=%+v isr=%v]", n.id, n.up, role, e, n.rep.Offsets(), n.rep.ISR(nil))
	}
	return b.String()
}

func (s *sim) converged() bool {
	if s.ctl.leader == 0 {
		return false
	}
	l := s.node(s.ctl.leader)
	if role, e := l.rep.Role(); role != RoleLeader || e != s.ctl.epoch {
		return false
	}
	end := l.logEnd()
	if l.rep.Offsets().HighWatermark != end || len(l.rep.ISR(nil)) != 3 {
		return false
	}
	for _, n := range s.nodes {
		if n.logEnd() != end || n.rep.Offsets().HighWatermark != end {
			return false
		}
	}
	return true
}

func (s *sim) tick() {
	s.now = s.now.Add(simTick)
	s.deliver()
	if s.faults {
		s.randomEvent()
	}
	for _, n := range s.nodes {
		if !n.up {
			continue
		}
		s.completeIO(n)
		s.timeouts(n)
		n.rep.Tick(s.now)
		s.drive(n)
	}
	s.check()
}

func (s *sim) randomEvent() {
	switch x := s.rng.IntN(1000); {
	case x < 300:
		s.produce()
	case x < 306:
		s.crash()
	case x < 312:
		s.moveLeader()
	case x < 340:
		for _, n := range s.nodes {
			if !n.up && s.rng.IntN(2) == 0 {
				s.restart(n)
				break
			}
		}
	}
}

// produce sends one batch of 1-3 records to a replica that believes it
// leads (a stale leader too: a client with an old view).
func (s *sim) produce() {
	var cands []*simNode
	for _, n := range s.nodes {
		if role, _ := n.rep.Role(); n.up && n.decided && role == RoleLeader {
			cands = append(cands, n)
		}
	}
	if len(cands) == 0 {
		return
	}
	n := cands[s.rng.IntN(len(cands))]
	level := AckAll
	if s.rng.IntN(4) == 0 {
		level = AckLeader
	}
	if err := n.rep.CheckAppend(level); err != nil {
		s.stats["produce refused"]++
		return
	}
	k := 1 + s.rng.IntN(3)
	ids := make([]uint64, k)
	for i := range ids {
		s.nextID++
		ids[i] = s.nextID
	}
	_, epoch := n.rep.Role()
	base := n.rep.next
	b := simBatch{base: base, last: base + uint64(k) - 1, epoch: epoch, ids: ids}
	s.nextTok++
	tok := s.nextTok
	n.parts[tok] = simPart{level: level, ids: ids}
	n.rep.AppendPlanned(Append{Base: b.base, Last: b.last, Bytes: 100 * k, Level: level, Token: tok})
	n.writes = append(n.writes, simWrite{base: base, batches: []simBatch{b}})
	s.produced += k
	s.logf("produce %v %d-%d e%d to %d", level, b.base, b.last, epoch, n.id)
}

// crash stops a replica: writes in flight are lost, and of what it wrote
// but did not flush a random prefix survives.
func (s *sim) crash() {
	n := s.nodes[s.rng.IntN(3)]
	if !n.up {
		return
	}
	up := 0
	for _, m := range s.nodes {
		if m.up {
			up++
		}
	}
	if up < 2 {
		return
	}
	n.up = false
	if s.sync {
		// a power cut: of what was written but not flushed, a random
		// prefix survives (flush=interval topics only survive a process
		// crash, which keeps the page cache: acks=all there does not
		// claim more)
		keep := 0
		for keep < len(n.log) && n.log[keep].last < n.flushed {
			keep++
		}
		keep += s.rng.IntN(len(n.log) - keep + 1)
		n.log = n.log[:keep]
	}
	s.stats["crash"]++
	s.logf("crash %d (log end now %d, flushed %d)", n.id, n.logEnd(), n.flushed)
	// the controller fences it: it leaves a shared ISR, a leader moves
	c := &s.ctl
	c.alive[n.id] = false
	if len(c.isr) > 1 && slices.Contains(c.isr, n.id) {
		c.isr = slices.DeleteFunc(slices.Clone(c.isr), func(x ID) bool { return x == n.id })
		c.pepoch++
		if c.leader != n.id && c.leader != 0 {
			s.send(simMsg{to: c.leader, kind: msgISRChanged, pepoch: c.pepoch, isr: slices.Clone(c.isr), epoch: c.epoch})
		}
	}
	if c.leader == n.id {
		s.elect(n.id)
	}
}

func (s *sim) restart(n *simNode) {
	s.start(n)
	s.stats["restart"]++
	c := &s.ctl
	c.alive[n.id] = true
	// register-broker: a restarted broker leaves every ISR with another
	// member; as the last member of an offline partition it leads again
	// (its flushed log is intact)
	if c.leader == 0 && len(c.isr) == 1 && c.isr[0] == n.id {
		c.leader = n.id
		c.epoch = c.lastEpochGiven + 1
		c.lastEpochGiven = c.epoch
		c.pepoch++
	} else if len(c.isr) > 1 && slices.Contains(c.isr, n.id) {
		c.isr = slices.DeleteFunc(slices.Clone(c.isr), func(x ID) bool { return x == n.id })
		c.pepoch++
		if c.leader != 0 {
			s.send(simMsg{to: c.leader, kind: msgISRChanged, pepoch: c.pepoch, isr: slices.Clone(c.isr), epoch: c.epoch})
		}
	}
	s.logf("restart %d (log end %d); controller leader %d e%d isr %v", n.id, n.logEnd(), c.leader, c.epoch, c.isr)
	s.assign(n)
}

// moveLeader elects another alive ISR member (a preferred-leader move or
// a controller that fenced the leader).
func (s *sim) moveLeader() {
	s.elect(s.ctl.leader)
}

// elect picks a new leader among the alive ISR members other than not.
func (s *sim) elect(not ID) {
	c := &s.ctl
	var cands []ID
	for _, id := range c.isr {
		if id != not && c.alive[id] {
			cands = append(cands, id)
		}
	}
	if len(cands) == 0 {
		if not != 0 && !c.alive[not] {
			c.leader = 0 // offline until the last ISR member returns
			s.logf("partition offline (isr %v)", c.isr)
		}
		return
	}
	c.leader = cands[s.rng.IntN(len(cands))]
	c.epoch = c.lastEpochGiven + 1
	c.lastEpochGiven = c.epoch
	c.pepoch++
	s.stats["election"]++
	s.logf("controller elects %d epoch %d isr %v", c.leader, c.epoch, c.isr)
	for _, n := range s.nodes {
		if !n.up {
			continue
		}
		if n.id == c.leader {
			s.send(simMsg{to: n.id, kind: msgBecomeLeader, epoch: c.epoch, pepoch: c.pepoch, isr: slices.Clone(c.isr)})
		} else {
			s.send(simMsg{to: n.id, kind: msgBecomeFollower, epoch: c.epoch, leader: c.leader})
		}
	}
}

func (s *sim) deliver() {
	due := s.msgs[:0:0]
	rest := s.msgs[:0]
	for _, m := range s.msgs {
		if m.at <= s.step || !s.faults {
			due = append(due, m)
		} else {
			rest = append(rest, m)
		}
	}
	s.msgs = rest
	for _, m := range due {
		if m.to == 0 {
			s.controllerGot(m)
			continue
		}
		n := s.node(m.to)
		if !n.up || m.incarn != s.incarn[m.to] {
			continue
		}
		s.nodeGot(n, m)
	}
}

func (s *sim) controllerGot(m simMsg) {
	c := &s.ctl
	p := m.change
	if p.PartitionEpoch != c.pepoch || p.LeaderEpoch != c.epoch || m.from != c.leader {
		s.logf("controller refuses %v of %d from %d (pepoch %d, have %d)", p.Op, p.Replica, m.from, p.PartitionEpoch, c.pepoch)
		s.send(simMsg{to: m.from, kind: msgISRRefused, pepoch: p.PartitionEpoch})
		s.refresh(s.node(m.from))
		return
	}
	if p.Op == ISRExpand && !c.alive[p.Replica] {
		s.send(simMsg{to: m.from, kind: msgISRRefused, pepoch: p.PartitionEpoch})
		return
	}
	c.isr = slices.Clone(p.ISR)
	c.pepoch++
	s.stats["isr "+p.Op.String()]++
	s.logf("controller commits %v of %d: isr %v pepoch %d", p.Op, p.Replica, c.isr, c.pepoch)
	s.send(simMsg{to: m.from, kind: msgISRChanged, pepoch: c.pepoch, isr: slices.Clone(c.isr), epoch: c.epoch})
}

// refresh sends n the controller's current decision for it (metadata
// propagation; it can be lost like any message).
func (s *sim) refresh(n *simNode) {
	c := &s.ctl
	switch {
	case !n.up || c.leader == 0:
	case c.leader == n.id:
		s.send(simMsg{to: n.id, kind: msgBecomeLeader, epoch: c.epoch, pepoch: c.pepoch, isr: slices.Clone(c.isr)})
	default:
		s.send(simMsg{to: n.id, kind: msgBecomeFollower, epoch: c.epoch, leader: c.leader})
	}
}

// timeouts is the drivers' side of lost messages: a fetch with no answer
// is given up, a proposal with no answer is sent again, and every so
// often each broker gets the controller's state.
func (s *sim) timeouts(n *simNode) {
	if n.rep.rp.fetching && s.step-n.fetchAt > 12 {
		n.fetchSeq++
		n.rep.FetchFailed()
	}
	if n.proposing && s.step-n.proposedAt > 12 {
		n.proposedAt = s.step
		s.send(simMsg{from: n.id, to: 0, kind: msgPropose, change: n.proposal})
	}
	if (s.step+int(n.id)*7)%25 == 0 {
		s.refresh(n)
	}
}

func (s *sim) becomeLeader(n *simNode, epoch, pepoch int32, isr []ID) {
	if err := n.rep.BecomeLeader(LeaderState{Epoch: epoch, PartitionEpoch: pepoch, ISR: isr}); err != nil {
		s.logf("%d: become leader e%d: %v", n.id, epoch, err)
		return
	}
	n.decided = true
	s.logf("%d becomes leader e%d isr %v (log end %d)", n.id, epoch, isr, n.logEnd())
	// a new leader must hold every acknowledged record
	s.checkAckedOn(n, "new leader")
}

func (s *sim) becomeFollower(n *simNode, epoch int32, leader ID) {
	if err := n.rep.BecomeFollower(epoch, leader); err != nil {
		s.logf("%d: become follower e%d: %v", n.id, epoch, err)
		return
	}
	n.decided = true
	s.logf("%d follows %d in e%d", n.id, leader, epoch)
}

func (s *sim) nodeGot(n *simNode, m simMsg) {
	switch m.kind {
	case msgBecomeLeader:
		s.becomeLeader(n, m.epoch, m.pepoch, m.isr)
	case msgBecomeFollower:
		s.becomeFollower(n, m.epoch, m.leader)
	case msgISRChanged:
		if n.proposing && m.pepoch > n.proposal.PartitionEpoch {
			n.proposing = false
		}
		if err := n.rep.ISRChanged(m.pepoch, m.isr); err == nil {
			s.logf("%d: isr %v pepoch %d", n.id, m.isr, m.pepoch)
		}
	case msgISRRefused:
		if n.proposing && n.proposal.PartitionEpoch == m.pepoch {
			n.proposing = false
		}
		n.rep.ISRChangeRefused(m.pepoch)
	case msgFetch:
		s.serveFetch(n, m)
	case msgFetchAnswer:
		s.fetchAnswered(n, m)
	}
}

// serveFetch is the leader's driver answering a follower fetch.
func (s *sim) serveFetch(n *simNode, m simMsg) {
	a := n.rep.FollowerFetch(m.req)
	reply := simMsg{from: n.id, to: m.from, kind: msgFetchAnswer, ans: a, seq: m.seq}
	if a.Err == nil && !a.Diverging {
		budget := 1 + s.rng.IntN(4)
		for _, b := range n.log {
			if b.base >= a.Offset && b.last < a.UpTo && len(reply.batches) < budget {
				reply.batches = append(reply.batches, b)
			}
		}
	}
	s.send(reply)
}

func (s *sim) fetchAnswered(n *simNode, m simMsg) {
	if m.seq != n.fetchSeq || !n.rep.rp.fetching {
		return // the answer to a fetch the driver gave up on
	}
	a := m.ans
	f := Fetched{LeaderEpoch: a.LeaderEpoch, Err: a.Err, Diverging: a.Diverging, DivergingEpoch: a.DivergingEpoch,
		DivergingEnd: a.DivergingEnd, HighWatermark: a.HighWatermark}
	if a.Err != nil {
		f.LeaderEpoch = n.rep.rp.epoch // a refusal names no epoch
	}
	s.nextTok++
	f.Token = s.nextTok
	for _, b := range m.batches {
		f.Batches = append(f.Batches, Batch{Base: b.base, Last: b.last, Epoch: b.epoch, Bytes: 100 * len(b.ids)})
	}
	n.fetched[f.Token] = m.batches
	if err := n.rep.Fetched(f); err != nil {
		delete(n.fetched, f.Token)
		s.logf("%d: fetch answer dropped: %v", n.id, err)
		return
	}
	if a.Diverging {
		s.stats["diverging"]++
		s.logf("%d: diverging at e%d end %d", n.id, a.DivergingEpoch, a.DivergingEnd)
	}
}

// completeIO completes some of n's writes and its flush.
func (s *sim) completeIO(n *simNode) {
	for len(n.writes) > 0 && (!s.faults || s.rng.IntN(3) > 0) {
		w := n.writes[0]
		n.writes = n.writes[1:]
		if w.base != n.logEnd() {
			s.fail("%d: write at %d completes at log end %d", n.id, w.base, n.logEnd())
		}
		n.log = append(n.log, w.batches...)
		if err := n.rep.AppendCompleted(w.base); err != nil {
			s.fail("%d: AppendCompleted(%d): %v", n.id, w.base, err)
		}
	}
	if n.flushing && (!s.faults || s.rng.IntN(3) > 0) {
		n.flushing = false
		n.flushed = max(n.flushed, n.flushTo)
		n.rep.FlushCompleted(n.flushTo)
	}
}

// drive runs n's Ready loop as the reactor would at the end of a turn.
func (s *sim) drive(n *simNode) {
	for i := 0; i < 8 && n.rep.HasReady(); i++ {
		rd := n.rep.Ready()
		for _, a := range rd.Acks {
			s.acked1(n, a)
		}
		if rd.Flush {
			n.flushing, n.flushTo = true, rd.FlushUpTo
		}
		if rd.Truncate {
			s.truncate(n, rd.TruncateTo)
		}
		if rd.Replicate {
			w := rd.ReplicateWork
			bs := n.fetched[w.Token][:w.Batches]
			if bs[0].base != w.Base || bs[len(bs)-1].last != w.Last {
				s.fail("%d: replicate %+v does not match the fetched batches", n.id, w)
			}
			n.writes = append(n.writes, simWrite{base: w.Base, batches: bs})
		}
		if rd.SendFetch {
			n.fetchSeq++
			n.fetchAt = s.step
			s.send(simMsg{from: n.id, to: n.rep.Leader(), kind: msgFetch, req: rd.Fetch, seq: n.fetchSeq})
		}
		if rd.ProposeISR {
			c := rd.ISRChange
			c.ISR = slices.Clone(c.ISR)
			s.logf("%d proposes %v of %d: %v pepoch %d", n.id, c.Op, c.Replica, c.ISR, c.PartitionEpoch)
			n.proposal, n.proposing, n.proposedAt = c, true, s.step
			s.send(simMsg{from: n.id, to: 0, kind: msgPropose, change: c})
		}
		n.rep.Advance()
	}
}

func (s *sim) truncate(n *simNode, to uint64) {
	hw := n.rep.Offsets().HighWatermark
	if to < hw {
		s.fail("%d truncates to %d, below its HW %d", n.id, to, hw)
	}
	if len(n.writes) > 0 || n.flushing {
		s.fail("%d: truncation with I/O in flight", n.id)
	}
	k := 0
	for k < len(n.log) && n.log[k].last < to {
		k++
	}
	if k < len(n.log) && n.log[k].base != to {
		s.fail("%d: truncation to %d inside batch %d-%d", n.id, to, n.log[k].base, n.log[k].last)
	}
	s.stats["truncate"]++
	s.logf("%d truncates %d → %d", n.id, n.logEnd(), to)
	n.log = n.log[:k]
	n.flushed = min(n.flushed, to)
	if err := n.rep.TruncateCompleted(to); err != nil {
		s.fail("%d: TruncateCompleted: %v", n.id, err)
	}
}

// acked1 handles one Ack of n.
func (s *sim) acked1(n *simNode, a Ack) {
	p, ok := n.parts[a.Token]
	if !ok {
		delete(n.fetched, a.Token) // a replicated append's: its bytes are free
		return
	}
	delete(n.parts, a.Token)
	if a.Err != nil || p.level != AckAll {
		return
	}
	hw := n.rep.Offsets().HighWatermark
	if a.Last >= hw {
		s.fail("%d: acks=all %d-%d released at HW %d", n.id, a.Base, a.Last, hw)
	}
	for i, id := range p.ids {
		off := a.Base + uint64(i)
		if old, ok := s.acked[off]; ok && old != id {
			s.fail("offset %d acknowledged twice: records %d and %d", off, old, id)
		}
		s.acked[off] = id
	}
	s.nAcked += len(p.ids)
	s.logf("%d acks %d-%d", n.id, a.Base, a.Last)
}

func (s *sim) checkAckedOn(n *simNode, what string) {
	for off, id := range s.acked {
		if _, got, ok := n.recordAt(off); !ok || got != id {
			s.fail("%s %d lost acknowledged record %d at offset %d (has %d, present %v); log end %d",
				what, n.id, id, off, got, ok, n.logEnd())
		}
	}
}

func (s *sim) check() {
	for _, n := range s.nodes {
		if !n.up {
			continue
		}
		role, epoch := n.rep.Role()
		if n.decided && epoch < n.epochSeen {
			s.fail("%d: epoch went back from %d to %d", n.id, n.epochSeen, epoch)
		}
		n.epochSeen = max(n.epochSeen, epoch)
		hw := n.rep.Offsets().HighWatermark
		if role == RoleLeader && n.decided {
			if n.leading && n.leaderEpoch == epoch && hw < n.leaderHW {
				s.fail("%d: leader HW went back from %d to %d in epoch %d", n.id, n.leaderHW, hw, epoch)
			}
			n.leading, n.leaderEpoch, n.leaderHW = true, epoch, hw
		} else {
			n.leading = false
		}
		if o := n.rep.Offsets(); o.LogEnd != n.logEnd() {
			s.fail("%d: replica log end %d, log %d", n.id, o.LogEnd, n.logEnd())
		}
		var last int32 = -1
		for _, b := range n.log {
			if b.epoch < last {
				s.fail("%d: batch %d-%d of epoch %d after epoch %d", n.id, b.base, b.last, b.epoch, last)
			}
			last = b.epoch
		}
	}
	if s.step%8 != 0 {
		return // the rest is O(log): every few steps
	}
	// logs agree below the HWs (same batches: they were copied)
	for i, a := range s.nodes {
		for _, b := range s.nodes[i+1:] {
			if !a.up || !b.up {
				continue
			}
			upTo := min(a.rep.Offsets().HighWatermark, b.rep.Offsets().HighWatermark)
			for k := 0; k < len(a.log) && a.log[k].base < upTo; k++ {
				x := a.log[k]
				if k >= len(b.log) || !slices.Equal(x.ids, b.log[k].ids) || x.epoch != b.log[k].epoch || x.base != b.log[k].base {
					s.fail("replicas %d and %d differ at batch %d-%d below their HWs (%d)", a.id, b.id, x.base, x.last, upTo)
				}
			}
		}
	}
	// acknowledged records sit on every replica below its HW
	for _, n := range s.nodes {
		if !n.up {
			continue
		}
		hw := n.rep.Offsets().HighWatermark
		for off, id := range s.acked {
			if off < hw {
				if _, got, ok := n.recordAt(off); !ok || got != id {
					s.fail("%d: acknowledged record %d at %d changed to %d below HW %d", n.id, id, off, got, hw)
				}
			}
		}
	}
}
