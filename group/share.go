package group

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/ringmq/ringmq/group/ack"
)

// Shared and key_shared subscriptions. Their members share partitions
// instead of owning them: every member is assigned every partition of its
// topics, nobody owns any (the owner map and targets stay empty), and per
// (group, partition) an ack.Tracker decides which member gets which
// record and what is done. The trackers' records (kind ack) go to the same
// log as the rest, snapshot + deltas, in the same group commit.

// ShareConfig is the policy of every shared and key_shared tracker.
type ShareConfig struct {
	AckTimeout    time.Duration   // lock of an acquired record (default 30 s)
	MaxUnacked    int             // in-flight window per partition (default 10,000)
	MaxDeliveries int             // dead-letter after this many deliveries; 0: never
	Backoff       []time.Duration // redelivery delays by delivery count
	MaxDelay      time.Duration   // cap of delayed delivery (0: no cap)
	SnapshotEvery int             // changes between snapshots (default 4096)
}

func (s ShareConfig) withDefaults() ShareConfig {
	if s.AckTimeout <= 0 {
		s.AckTimeout = 30 * time.Second
	}
	if s.MaxUnacked <= 0 {
		s.MaxUnacked = 10_000
	}
	return s
}

// shared reports whether t is a type whose members share partitions.
func (t Type) shared() bool { return t == TypeShared || t == TypeKeyShared }

// shareState is a shared group's trackers and member numbers.
type shareState struct {
	trackers map[TopicPartition]*ack.Tracker
	nums     map[string]ack.Member // member id → tracker member number
	next     ack.Member
}

// dirtyShare names a tracker with a Ready (or a deleted one: tombstone).
type shareKey = commitKey

// ShareOp is what a ShareAck does to [Start, End).
type ShareOp uint8

const (
	// ShareAccept acks each offset of [Start, End) the member holds.
	ShareAccept ShareOp = 1
	// ShareAcceptUpTo acks everything the member holds below End.
	ShareAcceptUpTo ShareOp = 2
	// ShareRelease nacks: redeliver after Delay (or the backoff list when
	// Delay is ack.UseBackoff).
	ShareRelease ShareOp = 3
	// ShareReject sends the records to the dead-letter topic (or marks
	// them done when dead-lettering is off).
	ShareReject ShareOp = 4
)

// ShareAck is one acknowledgement of a member.
type ShareAck struct {
	TopicPartition
	Op         ShareOp
	Start, End uint64
	Delay      time.Duration
	Reason     string
}

// ShareDeadLetter is a record the driver must append to its dead-letter
// topic, then confirm with DeadLettered.
type ShareDeadLetter struct {
	Group string
	ack.DeadLetter
}

func (g *group) share() *shareState {
	if g.shares == nil {
		g.shares = &shareState{trackers: map[TopicPartition]*ack.Tracker{}, nums: map[string]ack.Member{}}
	}
	return g.shares
}

// memberNum returns (drawing on first use) the tracker number of a member.
func (c *Coordinator) memberNum(g *group, id string) ack.Member {
	s := g.share()
	if n, ok := s.nums[id]; ok {
		return n
	}
	s.next++
	n := s.next
	s.nums[id] = n
	for _, tp := range sortedTPs(s.trackers) {
		_ = s.trackers[tp].MemberJoined(n) // shared: no-op; key_shared: takes its keys
	}
	return n
}

// shareLeft releases at once everything a departing member holds.
func (c *Coordinator) shareLeft(g *group, id string, wall time.Time) {
	if g.shares == nil {
		return
	}
	n, ok := g.shares.nums[id]
	if !ok {
		return
	}
	delete(g.shares.nums, id)
	if wall.IsZero() {
		wall = time.Unix(0, 0) // no share input yet: release at once
	}
	for _, tp := range sortedTPs(g.shares.trackers) {
		g.shares.trackers[tp].MemberLeft(n, wall)
		c.markShare(g, tp)
	}
}

func (c *Coordinator) markShare(g *group, tp TopicPartition) {
	c.dirtyShares[shareKey{g.name, tp}] = struct{}{}
}

// sharedAssignment lists every partition of the member's topics.
func (c *Coordinator) sharedAssignment(m *member) []TopicPartition {
	var out []TopicPartition
	for _, topic := range m.topics {
		for p := range c.topics[topic] {
			out = append(out, TopicPartition{topic, p})
		}
	}
	return out
}

func (c *Coordinator) trackerConfig(g *group, tp TopicPartition) ack.Config {
	s := c.cfg.Share
	mode := ack.Shared
	if g.typ == TypeKeyShared {
		mode = ack.KeyShared
	}
	return ack.Config{
		Topic: tp.Topic, Partition: int32(tp.Partition), Mode: mode, AckTimeout: s.AckTimeout,
		MaxUnacked: s.MaxUnacked, MaxDeliveries: s.MaxDeliveries, Backoff: s.Backoff,
		MaxDelay: s.MaxDelay, SnapshotEvery: s.SnapshotEvery,
	}
}

// shareMember checks that id is a member of a shared group, at epoch, and
// subscribed to tp's topic.
func (c *Coordinator) shareMember(name, id string, epoch uint32, tp TopicPartition) (*group, *member, error) {
	g, m, err := c.lookup(name, id)
	if err != nil {
		return nil, nil, err
	}
	if !g.typ.shared() {
		return nil, nil, fmt.Errorf("%w: group %q is %s, not shared or key_shared", ErrTypeMismatch, name, g.typ)
	}
	if epoch != m.epoch {
		c.counters.Fenced++
		return nil, nil, fmt.Errorf("%w: group %q member %s is at epoch %d; request has epoch %d", ErrFenced, name, id, m.epoch, epoch)
	}
	if !slices.Contains(m.topics, tp.Topic) || tp.Partition >= c.topics[tp.Topic] {
		return nil, nil, fmt.Errorf("%w: group %q member %s is not subscribed to %s", ErrFenced, name, id, tp)
	}
	return g, m, nil
}

// ShareAcquire hands member id up to max records of tp below logEnd, locked
// until wall + ack_timeout. A partition's tracker starts (first use) at the
// group's commit, else at logStart. src gives key hashes and delivery
// times (nil: no keys, no delays).
func (c *Coordinator) ShareAcquire(wall time.Time, name, id string, epoch uint32, tp TopicPartition, max int, logStart, logEnd uint64, src ack.Source) ([]ack.Range, error) {
	c.wall = wall
	g, m, err := c.shareMember(name, id, epoch, tp)
	if err != nil {
		return nil, err
	}
	t, err := c.tracker(g, tp, logStart)
	if err != nil {
		return nil, err
	}
	n := c.memberNum(g, m.id)
	rs, err := t.Acquire(nil, n, wall, max, logEnd, src)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	if t.HasReady() {
		c.markShare(g, tp)
	}
	return rs, nil
}

func (c *Coordinator) tracker(g *group, tp TopicPartition, logStart uint64) (*ack.Tracker, error) {
	s := g.share()
	if t := s.trackers[tp]; t != nil {
		return t, nil
	}
	start := logStart
	if cm, ok := g.commits[tp]; ok && cm.Offset > start {
		start = cm.Offset
	}
	t, err := ack.New(c.trackerConfig(g, tp), start)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	s.trackers[tp] = t
	for _, id := range slices.Sorted(maps.Keys(s.nums)) {
		_ = t.MemberJoined(s.nums[id])
	}
	c.markShare(g, tp)
	return t, nil
}

// CheckShareMember reports whether id may acquire or ack tp's records in
// this epoch (the checks ShareAcquire makes first), without changing
// anything.
func (c *Coordinator) CheckShareMember(name, id string, epoch uint32, tp TopicPartition) error {
	_, _, err := c.shareMember(name, id, epoch, tp)
	return err
}

// ShareStart is where a group's tracker of tp is (its floor), or would
// start: the group's commit, else logStart.
func (c *Coordinator) ShareStart(name string, tp TopicPartition, logStart uint64) uint64 {
	g := c.groups[name]
	if g == nil {
		return logStart
	}
	if g.shares != nil && g.shares.trackers[tp] != nil {
		return g.shares.trackers[tp].Floor()
	}
	if cm, ok := g.commits[tp]; ok && cm.Offset > logStart {
		return cm.Offset
	}
	return logStart
}

// ShareFloors are the lowest and highest floors of the trackers of tp in
// groups with members (ok: there is one); a group without members needs
// no records handed out.
func (c *Coordinator) ShareFloors(tp TopicPartition) (low, high uint64, ok bool) {
	for _, g := range c.groups {
		if g.shares == nil || len(g.members) == 0 {
			continue
		}
		if t := g.shares.trackers[tp]; t != nil {
			f := t.Floor()
			if !ok || f < low {
				low = f
			}
			if !ok || f > high {
				high = f
			}
			ok = true
		}
	}
	return low, high, ok
}

// ShareAcknowledge applies a member's acks; it returns how many offsets
// were done by accepts (the rest it ignores: acking a done record is a
// no-op, a record the member does not hold is refused).
func (c *Coordinator) ShareAcknowledge(wall time.Time, name, id string, epoch uint32, a ShareAck) (int, error) {
	c.wall = wall
	g, m, err := c.shareMember(name, id, epoch, a.TopicPartition)
	if err != nil {
		return 0, err
	}
	t := g.share().trackers[a.TopicPartition]
	if t == nil {
		return 0, fmt.Errorf("%w: group %q holds nothing of %s", ErrNotHeld, name, a.TopicPartition)
	}
	if a.End < a.Start || a.End-a.Start > uint64(c.cfg.Share.MaxUnacked) {
		return 0, fmt.Errorf("%w: ack range [%d, %d)", ErrInvalidRequest, a.Start, a.End)
	}
	n := c.memberNum(g, m.id)
	defer func() {
		if t.HasReady() {
			c.markShare(g, a.TopicPartition)
		}
	}()
	switch a.Op {
	case ShareAccept:
		k, err := t.AckRange(n, a.Start, a.End)
		return k, shareErr(err)
	case ShareAcceptUpTo:
		return t.AckCumulative(n, a.End), nil
	case ShareRelease, ShareReject:
		var first error
		for off := a.Start; off < a.End; off++ {
			var err error
			if a.Op == ShareRelease {
				err = t.Nack(n, off, wall, a.Delay, a.Reason)
			} else {
				err = t.Reject(n, off, a.Reason)
			}
			if err != nil && first == nil {
				first = err
			}
		}
		return 0, shareErr(first)
	}
	return 0, fmt.Errorf("%w: ack op %d", ErrInvalidRequest, a.Op)
}

func shareErr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %v", ErrNotHeld, err)
}

// ExpireShares releases the locks that expired at wall.
func (c *Coordinator) ExpireShares(wall time.Time) {
	c.wall = wall
	for _, g := range c.groups {
		if g.shares == nil {
			continue
		}
		for tp, t := range g.shares.trackers {
			if t.NextDeadline().IsZero() || t.NextDeadline().After(wall) {
				continue
			}
			if t.Expire(wall) > 0 || t.HasReady() {
				c.markShare(g, tp)
			}
		}
	}
}

// NextShareDeadline is the earliest lock deadline of any tracker (zero: none).
func (c *Coordinator) NextShareDeadline() time.Time {
	var next time.Time
	for _, g := range c.groups {
		if g.shares == nil {
			continue
		}
		for _, t := range g.shares.trackers {
			if d := t.NextDeadline(); !d.IsZero() && (next.IsZero() || d.Before(next)) {
				next = d
			}
		}
	}
	return next
}

// DeadLettered confirms that a dead letter's append is durable.
func (c *Coordinator) DeadLettered(name string, tp TopicPartition, off uint64) error {
	g := c.groups[name]
	if g == nil || g.shares == nil || g.shares.trackers[tp] == nil {
		return fmt.Errorf("%w: %q %s", ErrUnknownGroup, name, tp)
	}
	if err := g.shares.trackers[tp].DeadLettered(off); err != nil {
		return err
	}
	c.markShare(g, tp)
	return nil
}

// ShareStats returns the tracker numbers of a group's partitions.
func (c *Coordinator) ShareStats(name string) map[TopicPartition]ack.Stats {
	g := c.groups[name]
	if g == nil || g.shares == nil {
		return nil
	}
	out := make(map[TopicPartition]ack.Stats, len(g.shares.trackers))
	for tp, t := range g.shares.trackers {
		out[tp] = t.Stats()
	}
	return out
}

// shareReady appends the records of the dirty trackers and collects their
// dead letters.
func (c *Coordinator) shareReady(recs []Record) []Record {
	for _, k := range slices.SortedFunc(maps.Keys(c.dirtyShares), func(a, b shareKey) int {
		if a.group != b.group {
			if a.group < b.group {
				return -1
			}
			return 1
		}
		return tpLess(a.tp, b.tp)
	}) {
		g := c.groups[k.group]
		var t *ack.Tracker
		if g != nil && g.shares != nil {
			t = g.shares.trackers[k.tp]
		}
		if t == nil {
			recs = append(recs, Record{Kind: KindAck, Group: k.group, TopicPartition: k.tp, Tombstone: true})
			continue
		}
		if !t.HasReady() {
			continue
		}
		rd := t.Ready()
		c.readyTrackers = append(c.readyTrackers, t)
		if len(rd.Log) > 0 {
			recs = append(recs, Record{Kind: KindAck, Group: k.group, TopicPartition: k.tp, Frames: rd.Log})
		}
		for _, dl := range rd.DeadLetters {
			c.deadLetters = append(c.deadLetters, ShareDeadLetter{Group: k.group, DeadLetter: dl})
		}
	}
	clear(c.dirtyShares)
	return recs
}

func (c *Coordinator) shareAdvance() {
	for _, t := range c.readyTrackers {
		t.Advance()
	}
	clear(c.readyTrackers)
	c.readyTrackers = c.readyTrackers[:0]
	c.deadLetters = c.deadLetters[:0]
}

// shareRecords is every tracker's state as one snapshot record each.
func (c *Coordinator) shareRecords(recs []Record, names []string) []Record {
	for _, name := range names {
		g := c.groups[name]
		if g.shares == nil {
			continue
		}
		for _, tp := range sortedTPs(g.shares.trackers) {
			s := g.shares.trackers[tp].Snapshot()
			recs = append(recs, Record{Kind: KindAck, Group: name, TopicPartition: tp, Frames: ack.AppendSnapshot(nil, &s)})
		}
	}
	return recs
}

// restoreShares rebuilds the trackers from their records (in log order:
// from the last snapshot of each key on).
func (c *Coordinator) restoreShares(records []Record) error {
	frames := map[shareKey][]byte{}
	var order []shareKey
	for i := range records {
		r := &records[i]
		if r.Kind != KindAck {
			continue
		}
		k := shareKey{r.Group, r.TopicPartition}
		if r.Tombstone {
			delete(frames, k)
			continue
		}
		if _, ok := frames[k]; !ok {
			order = append(order, k)
		}
		if isSnapshot(r.Frames) {
			frames[k] = nil // what came before is in it
		}
		frames[k] = append(frames[k], r.Frames...)
	}
	for _, k := range order {
		log, ok := frames[k]
		if !ok {
			continue
		}
		g := c.groups[k.group]
		if g == nil {
			continue // the group was deleted; its trackers with it
		}
		if !g.typ.shared() {
			return fmt.Errorf("%w: ack state of %s group %q", ErrCorrupt, g.typ, g.name)
		}
		t, err := ack.Restore(c.trackerConfig(g, k.tp), log)
		if err != nil {
			return fmt.Errorf("%w: ack state of group %q %s: %v", ErrCorrupt, k.group, k.tp, err)
		}
		g.share().trackers[k.tp] = t
		if t.HasReady() {
			c.markShare(g, k.tp)
		}
	}
	return nil
}

// isSnapshot reports whether an ack record starts with a snapshot (so the
// records of its key before it may be dropped).
func isSnapshot(frames []byte) bool {
	rec, _, err := ack.Parse(frames)
	return err == nil && rec.Kind == ack.KindSnapshot
}
