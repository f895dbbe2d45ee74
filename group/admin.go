package group

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ringmq/ringmq/proto"
)

func validName(s string) bool { return proto.ValidName([]byte(s)) }

// Summary is one line of a group listing.
type Summary struct {
	Name    string
	Type    Type
	State   State
	Members int
}

// Description is everything the coordinator knows about one group. Log
// ends and lag are the driver's to add (they come from the partitions).
type Description struct {
	Name    string
	Type    Type
	State   State
	Epoch   uint32
	Members []MemberDescription
	Commits []CommitDescription
}

// MemberDescription is one member of a described group.
type MemberDescription struct {
	ID             string
	ClientID       string
	Addr           string
	Topics         []string
	SessionTimeout time.Duration
	Epoch          uint32
	Assigned       []TopicPartition // owned and in its target
	Revoking       []TopicPartition // owned, to be released
	Pending        []TopicPartition // in its target, still owned by another
}

// CommitDescription is one committed position.
type CommitDescription struct {
	TopicPartition
	Commit
}

// Groups lists every group, by name.
func (c *Coordinator) Groups() []Summary {
	out := make([]Summary, 0, len(c.groups))
	for _, name := range slices.Sorted(maps.Keys(c.groups)) {
		g := c.groups[name]
		out = append(out, Summary{Name: name, Type: g.typ, State: g.state(), Members: len(g.members)})
	}
	return out
}

func (g *group) state() State {
	if len(g.members) == 0 {
		return StateEmpty
	}
	for _, m := range g.members {
		if len(m.owned) != len(m.target) {
			return StateReconciling
		}
		for tp := range m.owned {
			if _, ok := m.target[tp]; !ok {
				return StateReconciling
			}
		}
	}
	return StateStable
}

// Describe returns a group's type, state, members and commits.
func (c *Coordinator) Describe(name string) (Description, error) {
	g, err := c.existing(name)
	if err != nil {
		return Description{}, err
	}
	d := Description{Name: name, Type: g.typ, State: g.state(), Epoch: g.epoch}
	for _, id := range slices.Sorted(maps.Keys(g.members)) {
		m := g.members[id]
		a := c.assignment(m)
		d.Members = append(d.Members, MemberDescription{
			ID: id, ClientID: m.clientID, Addr: m.addr, Topics: slices.Clone(m.topics),
			SessionTimeout: m.session, Epoch: m.epoch,
			Assigned: a.Assigned, Revoking: a.Revoke, Pending: a.Pending,
		})
	}
	for _, tp := range sortedTPs(g.commits) {
		d.Commits = append(d.Commits, CommitDescription{tp, g.commits[tp]})
	}
	return d, nil
}

func (c *Coordinator) existing(name string) (*group, error) {
	if !validName(name) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidGroupName, name)
	}
	g := c.groups[name]
	if g == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownGroup, name)
	}
	return g, nil
}

// Delete removes a group and its commits; refused while it has members.
func (c *Coordinator) Delete(name string) error {
	g, err := c.existing(name)
	if err != nil {
		return err
	}
	if len(g.members) > 0 {
		return fmt.Errorf("%w: group %q has %d members; stop them first", ErrGroupActive, name, len(g.members))
	}
	for tp := range g.commits {
		c.markCommit(g, tp)
	}
	if g.shares != nil {
		for tp := range g.shares.trackers {
			c.markShare(g, tp) // a tombstone: the group is gone
		}
	}
	delete(c.groups, name)
	c.markGroup(g)
	return nil
}

// ResetKind says where ResetSpec moves a group's positions.
type ResetKind uint8

const (
	ResetEarliest ResetKind = iota + 1
	ResetLatest
	ResetOffset
	ResetTime
)

// ResetSpec is the parsed --to of `groups reset`.
type ResetSpec struct {
	Kind   ResetKind
	Offset uint64    // ResetOffset
	Time   time.Time // ResetTime
}

// ParseResetSpec parses earliest, latest, an offset, or @TIME (RFC 3339 or
// Unix milliseconds).
func ParseResetSpec(s string) (ResetSpec, error) {
	switch {
	case s == "earliest":
		return ResetSpec{Kind: ResetEarliest}, nil
	case s == "latest":
		return ResetSpec{Kind: ResetLatest}, nil
	case strings.HasPrefix(s, "@"):
		v := s[1:]
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms >= 0 {
			return ResetSpec{Kind: ResetTime, Time: time.UnixMilli(ms)}, nil
		}
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return ResetSpec{Kind: ResetTime, Time: t}, nil
		}
	default:
		if off, err := strconv.ParseUint(s, 10, 64); err == nil {
			return ResetSpec{Kind: ResetOffset, Offset: off}, nil
		}
	}
	return ResetSpec{}, fmt.Errorf("%w: reset target %q (want earliest, latest, OFFSET or @TIME)", ErrInvalidRequest, s)
}

// PartitionBounds is what the driver read from one partition to resolve a
// ResetSpec: its log start and end, and for ResetTime the first offset
// whose timestamp is at or after the spec's time (End if none).
type PartitionBounds struct {
	Partition uint32
	Start     uint64
	End       uint64
	AtTime    uint64
}

// Resolve turns the spec into an offset of one partition, clamped to
// [Start, End] as Kafka does.
func (s ResetSpec) Resolve(b PartitionBounds) uint64 {
	var off uint64
	switch s.Kind {
	case ResetEarliest:
		off = b.Start
	case ResetLatest:
		off = b.End
	case ResetOffset:
		off = s.Offset
	case ResetTime:
		off = b.AtTime
	}
	return min(max(off, b.Start), b.End)
}

// ResetChange is one line of a reset plan.
type ResetChange struct {
	TopicPartition
	Had  bool   // a commit existed
	From uint64 // its offset
	To   uint64
}

// ResetOffsets sets the commits of topic's partitions to the resolved
// offsets (to[p] for partition p), or with dryRun only returns the plan.
// Refused while the group has members; a group that does not exist is
// created (as Kafka's tool does).
func (c *Coordinator) ResetOffsets(name, topic string, to map[uint32]uint64, dryRun bool) ([]ResetChange, error) {
	if !validName(name) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidGroupName, name)
	}
	if !validName(topic) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidTopic, topic)
	}
	g := c.groups[name]
	if g != nil && len(g.members) > 0 {
		return nil, fmt.Errorf("%w: group %q has %d members; stop them before resetting", ErrGroupActive, name, len(g.members))
	}
	var plan []ResetChange
	for _, p := range slices.Sorted(maps.Keys(to)) {
		ch := ResetChange{TopicPartition: TopicPartition{topic, p}, To: to[p]}
		if g != nil {
			var cm Commit
			cm, ch.Had = g.commits[ch.TopicPartition]
			ch.From = cm.Offset
		}
		plan = append(plan, ch)
	}
	if dryRun || len(plan) == 0 {
		return plan, nil
	}
	if g == nil {
		if len(c.groups) >= c.cfg.MaxGroups {
			return nil, fmt.Errorf("%w: %d groups, cannot create %q", ErrTooManyGroups, len(c.groups), name)
		}
		g = c.newGroup(name, TypeFailover)
	}
	for _, ch := range plan {
		g.commits[ch.TopicPartition] = Commit{Offset: ch.To}
		c.markCommit(g, ch.TopicPartition)
	}
	return plan, nil
}

// Counters count since the coordinator was created or restored (they are
// not persisted; Prometheus counters reset with the process anyway).
type Counters struct {
	Rebalances uint64 // inputs that changed some group's target assignment
	Commits    uint64 // accepted commits
	Fenced     uint64 // refused CanCommit/CanFetch/Commit checks
	Expired    uint64 // members removed for a timed-out session
}

// Stats are the coordinator's numbers for metrics. Their cardinality is
// bounded: per state, not per group. Lag per group and partition is the
// driver's (it knows the log ends), exported for a bounded set of groups.
type Stats struct {
	Groups  [3]int // by State: empty, reconciling, stable
	Members int
	Counters
}

// Stats walks the groups (O(groups + members)): call it at scrape time.
func (c *Coordinator) Stats() Stats {
	st := Stats{Counters: c.counters}
	for _, g := range c.groups {
		st.Groups[g.state()]++
		st.Members += len(g.members)
	}
	return st
}
