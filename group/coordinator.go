package group

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/ringmq/ringmq/group/ack"
	"github.com/ringmq/ringmq/proto"
)

// Coordinator holds the groups of one coordinator partition. See the
// package doc for the contract.
type Coordinator struct {
	cfg    Config
	groups map[string]*group
	// topics are the partition counts of the topics known to exist.
	topics map[string]uint32

	// Keys changed since the last Ready; their records are written from
	// the state at Ready time (absent state: a tombstone).
	dirtyGroups  map[string]struct{}
	dirtyMembers map[memberKey]struct{}
	dirtyCommits map[commitKey]struct{}
	// dirtyShares: trackers with state to log (or deleted: a tombstone).
	dirtyShares map[shareKey]struct{}
	// wall is the latest wall-clock time a share input carried (for
	// releases by Leave and Tick, which take the monotonic time).
	wall time.Time

	readyTrackers []*ack.Tracker
	deadLetters   []ShareDeadLetter
	records       []Record
	handedOut     bool
	counters      Counters
}

type memberKey struct{ group, member string }

type commitKey struct {
	group string
	tp    TopicPartition
}

type group struct {
	name string
	typ  Type
	// epoch grows with every join and every change of any member's owned
	// partitions; member epochs and ownership epochs are drawn from it.
	epoch   uint32
	members map[string]*member
	// owner maps each owned partition to its one owner.
	owner   map[TopicPartition]string
	commits map[TopicPartition]Commit
	// stepEpoch is the epoch drawn for the input being handled (0: none
	// yet), so one input moves the epoch at most once.
	stepEpoch uint32
	// shares: shared and key_shared groups' ack trackers (share.go).
	shares *shareState
}

type member struct {
	id       string
	clientID string
	addr     string
	topics   []string // sorted, unique
	session  time.Duration
	lastSeen time.Duration
	// epoch is the member epoch: the group epoch at which its owned set
	// last changed (or it joined).
	epoch uint32
	// owned maps each partition the member owns to the epoch it got it at.
	owned map[TopicPartition]uint32
	// target is the assignment the member converges to.
	target map[TopicPartition]struct{}
}

// New returns an empty coordinator.
func New(cfg Config) *Coordinator {
	return &Coordinator{
		cfg:          cfg.withDefaults(),
		groups:       map[string]*group{},
		topics:       map[string]uint32{},
		dirtyGroups:  map[string]struct{}{},
		dirtyMembers: map[memberKey]struct{}{},
		dirtyCommits: map[commitKey]struct{}{},
		dirtyShares:  map[shareKey]struct{}{},
	}
}

// JoinRequest asks to join Group as a new member.
type JoinRequest struct {
	Group          string
	Type           Type
	ClientID       string
	Addr           string
	Topics         []string
	SessionTimeout time.Duration
	// MemberID is the new member's id, unique for good: the client's (a
	// UUID, as in KIP-848) or one the driver draws at random. Empty: the
	// coordinator names it client-id#epoch, which is unique only while the
	// group exists (a group deleted and created again reuses epochs, so
	// a zombie of the old group could match a new member).
	MemberID string
}

// HeartbeatRequest keeps a member alive and reports the partitions it
// still holds: a partition it was told to revoke and no longer lists is
// released.
type HeartbeatRequest struct {
	Group       string
	Member      string
	MemberEpoch uint32
	Owned       []TopicPartition
}

// Assignment is the answer to a join or heartbeat.
type Assignment struct {
	Member      string
	MemberEpoch uint32
	// Assigned: read these (owned and in the target assignment).
	Assigned []TopicPartition
	// Revoke: stop reading these, commit, and leave them out of the next
	// heartbeat's Owned.
	Revoke []TopicPartition
	// Pending: assigned to this member but still held by their previous
	// owner; they come in a later heartbeat.
	Pending           []TopicPartition
	HeartbeatInterval time.Duration
}

// Join adds a member to a group, creating the group if it does not exist.
func (c *Coordinator) Join(now time.Duration, req JoinRequest) (Assignment, error) {
	if err := c.validateJoin(req); err != nil {
		return Assignment{}, err
	}
	g := c.groups[req.Group]
	if g == nil {
		if len(c.groups) >= c.cfg.MaxGroups {
			return Assignment{}, fmt.Errorf("%w: %d groups, cannot create %q", ErrTooManyGroups, len(c.groups), req.Group)
		}
		g = c.newGroup(req.Group, req.Type)
	}
	if err := c.admit(g, req.Type); err != nil {
		return Assignment{}, err
	}
	if _, dup := g.members[req.MemberID]; dup {
		return Assignment{}, fmt.Errorf("%w: group %q already has a member %q", ErrInvalidRequest, g.name, req.MemberID)
	}
	g.stepEpoch = 0
	e := g.step()
	id := req.MemberID
	if id == "" {
		id = memberID(req.ClientID, e)
	}
	m := &member{
		id: id, clientID: req.ClientID, addr: req.Addr,
		topics: sortedUnique(req.Topics), session: req.SessionTimeout, lastSeen: now,
		epoch: e, owned: map[TopicPartition]uint32{}, target: map[TopicPartition]struct{}{},
	}
	g.members[m.id] = m
	c.markMember(g, m.id)
	if g.typ != req.Type { // an empty group takes the type of its first member
		g.typ = req.Type
	}
	c.rebalance(g)
	return c.answer(g, m), nil
}

func memberID(clientID string, epoch uint32) string {
	if clientID == "" {
		clientID = "member"
	}
	// '#' is not allowed in a client-chosen id, so the two never collide.
	return clientID + "#" + strconv.FormatUint(uint64(epoch), 10)
}

func (c *Coordinator) validateJoin(req JoinRequest) error {
	if !proto.ValidName([]byte(req.Group)) {
		return fmt.Errorf("%w: %q", ErrInvalidGroupName, req.Group)
	}
	if !req.Type.valid() {
		return fmt.Errorf("%w: subscription type %d", ErrInvalidRequest, req.Type)
	}
	if len(req.Topics) == 0 || len(req.Topics) > c.cfg.MaxTopicsPerMember {
		return fmt.Errorf("%w: %d topics (want 1 to %d)", ErrInvalidRequest, len(req.Topics), c.cfg.MaxTopicsPerMember)
	}
	for _, t := range req.Topics {
		if !proto.ValidName([]byte(t)) {
			return fmt.Errorf("%w: %q", ErrInvalidTopic, t)
		}
	}
	if req.MemberID != "" && !validName(req.MemberID) || len(req.MemberID) > MaxMemberIDLen {
		return fmt.Errorf("%w: member id %q (want up to %d of [A-Za-z0-9._-])", ErrInvalidRequest, req.MemberID, MaxMemberIDLen)
	}
	if len(req.ClientID) > MaxClientIDLen || len(req.Addr) > MaxAddrLen {
		return fmt.Errorf("%w: client id or address longer than %d bytes", ErrInvalidRequest, MaxClientIDLen)
	}
	if req.SessionTimeout < c.cfg.MinSessionTimeout || req.SessionTimeout > c.cfg.MaxSessionTimeout {
		return fmt.Errorf("%w: session timeout %v outside [%v, %v]", ErrInvalidRequest,
			req.SessionTimeout, c.cfg.MinSessionTimeout, c.cfg.MaxSessionTimeout)
	}
	return nil
}

// admit decides whether a new member of type t may join g.
func (c *Coordinator) admit(g *group, t Type) error {
	if len(g.members) == 0 {
		return nil
	}
	if g.typ != t {
		return fmt.Errorf("%w: group %q is %s with %d members; cannot join as %s",
			ErrTypeMismatch, g.name, g.typ, len(g.members), t)
	}
	if t == TypeExclusive {
		for _, m := range g.members {
			return fmt.Errorf("%w: group %q is held by member %s (client %q at %s)",
				ErrExclusiveHeld, g.name, m.id, m.clientID, m.addr)
		}
	}
	if len(g.members) >= c.cfg.MaxMembers {
		return fmt.Errorf("%w: group %q has %d members", ErrTooManyMembers, g.name, len(g.members))
	}
	return nil
}

func (c *Coordinator) newGroup(name string, t Type) *group {
	g := &group{
		name: name, typ: t, members: map[string]*member{},
		owner: map[TopicPartition]string{}, commits: map[TopicPartition]Commit{},
	}
	c.groups[name] = g
	c.markGroup(g)
	return g
}

// step returns the epoch of the input being handled, drawing a new one on
// first use.
func (g *group) step() uint32 {
	if g.stepEpoch == 0 {
		g.epoch++
		g.stepEpoch = g.epoch
	}
	return g.stepEpoch
}

// Heartbeat keeps a member alive, takes its releases and answers its
// assignment. A member epoch above the member's is refused (ErrFenced); a
// lower one is normal (the member's epoch moved since its last answer).
func (c *Coordinator) Heartbeat(now time.Duration, req HeartbeatRequest) (Assignment, error) {
	g, m, err := c.lookup(req.Group, req.Member)
	if err != nil {
		return Assignment{}, err
	}
	if req.MemberEpoch > m.epoch {
		return Assignment{}, fmt.Errorf("%w: group %q member %s epoch %d is ahead of %d",
			ErrFenced, g.name, m.id, req.MemberEpoch, m.epoch)
	}
	m.lastSeen = now
	g.stepEpoch = 0
	holds := make(map[TopicPartition]struct{}, len(req.Owned))
	for _, tp := range req.Owned {
		holds[tp] = struct{}{}
	}
	released := false
	for _, tp := range sortedTPs(m.owned) {
		_, keep := m.target[tp]
		_, held := holds[tp]
		if !keep && !held {
			c.release(g, m, tp)
			released = true
		}
	}
	if released {
		m.epoch = g.step()
		c.grantFree(g)
	}
	return c.answer(g, m), nil
}

func (c *Coordinator) lookup(name, id string) (*group, *member, error) {
	g := c.groups[name]
	if g == nil {
		return nil, nil, fmt.Errorf("%w: %q", ErrUnknownGroup, name)
	}
	m := g.members[id]
	if m == nil {
		return g, nil, fmt.Errorf("%w: group %q has no member %q", ErrUnknownMember, name, id)
	}
	return g, m, nil
}

// Leave removes a member at its request; its partitions are free at once
// (it committed and stopped before leaving).
func (c *Coordinator) Leave(group, id string) error {
	g, m, err := c.lookup(group, id)
	if err != nil {
		return err
	}
	g.stepEpoch = 0
	c.remove(g, m)
	c.rebalance(g)
	return nil
}

// Tick removes the members whose session timed out at now and hands their
// partitions to the others.
func (c *Coordinator) Tick(now time.Duration) {
	for _, name := range slices.Sorted(maps.Keys(c.groups)) {
		g := c.groups[name]
		g.stepEpoch = 0
		removed := false
		for _, id := range slices.Sorted(maps.Keys(g.members)) {
			if m := g.members[id]; now-m.lastSeen > m.session {
				c.counters.Expired++
				c.remove(g, m)
				removed = true
			}
		}
		if removed {
			c.rebalance(g)
		}
	}
}

// NextDeadline is when the next member's session times out, if any member
// exists: the driver's timer for Tick.
func (c *Coordinator) NextDeadline() (time.Duration, bool) {
	var next time.Duration
	found := false
	for _, g := range c.groups {
		for _, m := range g.members {
			if d := m.lastSeen + m.session + 1; !found || d < next {
				next, found = d, true
			}
		}
	}
	return next, found
}

// remove drops a member and frees what it owned.
func (c *Coordinator) remove(g *group, m *member) {
	for tp := range m.owned {
		delete(g.owner, tp)
	}
	c.shareLeft(g, m.id, c.wall)
	delete(g.members, m.id)
	c.markMember(g, m.id)
}

// release frees one partition a member owned.
func (c *Coordinator) release(g *group, m *member, tp TopicPartition) {
	delete(m.owned, tp)
	delete(g.owner, tp)
	c.markMember(g, m.id)
}

// answer is a member's assignment; a shared group's member is assigned
// every partition of its topics.
func (c *Coordinator) answer(g *group, m *member) Assignment {
	a := c.assignment(m)
	if g.typ.shared() {
		a.Assigned = c.sharedAssignment(m)
	}
	return a
}

func (c *Coordinator) assignment(m *member) Assignment {
	a := Assignment{Member: m.id, MemberEpoch: m.epoch, HeartbeatInterval: c.cfg.HeartbeatInterval}
	for _, tp := range sortedTPs(m.owned) {
		if _, ok := m.target[tp]; ok {
			a.Assigned = append(a.Assigned, tp)
		} else {
			a.Revoke = append(a.Revoke, tp)
		}
	}
	for _, tp := range sortedTPs(m.target) {
		if _, ok := m.owned[tp]; !ok {
			a.Pending = append(a.Pending, tp)
		}
	}
	return a
}

func (c *Coordinator) markGroup(g *group) { c.dirtyGroups[g.name] = struct{}{} }
func (c *Coordinator) markMember(g *group, id string) {
	c.dirtyMembers[memberKey{g.name, id}] = struct{}{}
	c.markGroup(g) // the group epoch moved or may have
}
func (c *Coordinator) markCommit(g *group, tp TopicPartition) {
	c.dirtyCommits[commitKey{g.name, tp}] = struct{}{}
}

func sortedTPs[V any](m map[TopicPartition]V) []TopicPartition {
	return slices.SortedFunc(maps.Keys(m), tpLess)
}

func sortedUnique(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}
