package group

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Ready is what the driver must persist: append Records to the group log
// and make them durable, then answer the requests handled since the last
// Ready, then call Advance. Records belong to the coordinator until Advance.
type Ready struct {
	Records []Record
	// DeadLetters are records of shared subscriptions to append to their
	// dead-letter topic; confirm each with DeadLettered once durable.
	DeadLetters []ShareDeadLetter
}

// HasReady reports whether there are records to persist.
func (c *Coordinator) HasReady() bool {
	return len(c.dirtyGroups)+len(c.dirtyMembers)+len(c.dirtyCommits)+len(c.dirtyShares) > 0
}

// Ready returns the records of every key changed since the last Ready,
// with its value now (a key changed many times is written once: the
// batch is a group commit). Groups first, then members, then commits,
// each sorted by key.
func (c *Coordinator) Ready() Ready {
	if c.handedOut {
		panic("BUG: group: Ready called twice without Advance")
	}
	c.handedOut = true
	recs := c.records[:0]
	for _, name := range slices.Sorted(maps.Keys(c.dirtyGroups)) {
		recs = append(recs, c.groupRecord(name))
	}
	for _, k := range slices.SortedFunc(maps.Keys(c.dirtyMembers), func(a, b memberKey) int {
		return cmp.Or(cmp.Compare(a.group, b.group), cmp.Compare(a.member, b.member))
	}) {
		recs = append(recs, c.memberRecord(k))
	}
	for _, k := range slices.SortedFunc(maps.Keys(c.dirtyCommits), func(a, b commitKey) int {
		return cmp.Or(cmp.Compare(a.group, b.group), tpLess(a.tp, b.tp))
	}) {
		recs = append(recs, c.commitRecord(k))
	}
	recs = c.shareReady(recs)
	clear(c.dirtyGroups)
	clear(c.dirtyMembers)
	clear(c.dirtyCommits)
	c.records = recs
	return Ready{Records: recs, DeadLetters: c.deadLetters}
}

// Advance tells the coordinator the last Ready's records are durable.
func (c *Coordinator) Advance() {
	if !c.handedOut {
		panic("BUG: group: Advance without Ready")
	}
	c.handedOut = false
	c.shareAdvance()
	clear(c.records)
	c.records = c.records[:0]
}

func (c *Coordinator) groupRecord(name string) Record {
	g := c.groups[name]
	if g == nil {
		return Record{Kind: KindGroup, Tombstone: true, Group: name}
	}
	return Record{Kind: KindGroup, Group: name, Type: g.typ, Epoch: g.epoch}
}

func (c *Coordinator) memberRecord(k memberKey) Record {
	r := Record{Kind: KindMember, Group: k.group, Member: MemberRecord{ID: k.member}}
	g := c.groups[k.group]
	var m *member
	if g != nil {
		m = g.members[k.member]
	}
	if m == nil {
		r.Tombstone = true
		return r
	}
	r.Member = MemberRecord{
		ID: m.id, ClientID: m.clientID, Addr: m.addr, Topics: slices.Clone(m.topics),
		SessionTimeout: m.session, Epoch: m.epoch, Target: sortedTPs(m.target),
	}
	for _, tp := range sortedTPs(m.owned) {
		r.Member.Owned = append(r.Member.Owned, OwnedPartition{tp, m.owned[tp]})
	}
	return r
}

func (c *Coordinator) commitRecord(k commitKey) Record {
	r := Record{Kind: KindCommit, Group: k.group, TopicPartition: k.tp}
	g := c.groups[k.group]
	var ok bool
	if g != nil {
		r.Commit, ok = g.commits[k.tp]
	}
	r.Tombstone = !ok
	return r
}

// Records returns the whole state as records, in Ready's order: what a
// compacted log holds. Two coordinators with equal Records are equal but
// for their members' liveness.
func (c *Coordinator) Records() []Record {
	var recs []Record
	names := slices.Sorted(maps.Keys(c.groups))
	for _, name := range names {
		recs = append(recs, c.groupRecord(name))
	}
	for _, name := range names {
		for _, id := range slices.Sorted(maps.Keys(c.groups[name].members)) {
			recs = append(recs, c.memberRecord(memberKey{name, id}))
		}
	}
	for _, name := range names {
		for _, tp := range sortedTPs(c.groups[name].commits) {
			recs = append(recs, c.commitRecord(commitKey{name, tp}))
		}
	}
	return c.shareRecords(recs, names)
}

// Compact keeps the last record of each key, in the order of their last
// appearance; of an ack key it keeps the records from its last snapshot
// (or tombstone) on, in order. Tombstones are dropped too when the records
// are the whole log from its start (nothing older can be revived);
// otherwise they stay.
func Compact(records []Record, wholeLog bool) []Record {
	last := make(map[string]int, len(records))
	for i := range records {
		r := &records[i]
		if r.Kind == KindAck && !r.Tombstone && !isSnapshot(r.Frames) {
			if _, ok := last[r.Key()]; ok {
				continue // a delta: its key's last snapshot stays the start
			}
		}
		last[r.Key()] = i
	}
	out := make([]Record, 0, len(last))
	for i := range records {
		r := &records[i]
		from := last[r.Key()]
		keep := from == i || r.Kind == KindAck && i > from
		if keep && !(wholeLog && r.Tombstone) {
			out = append(out, *r)
		}
	}
	return out
}

// Restore rebuilds a coordinator from its log (in log order) and the
// current topic metadata. Every member restored is considered seen at now,
// so it has a full session to heartbeat again. If the metadata is what the
// coordinator last saw, the state is exactly the log's and Ready has
// nothing; topics deleted or grown since are applied as SetTopic and
// DeleteTopic would (their records come in the next Ready).
func Restore(cfg Config, topics map[string]uint32, records []Record, now time.Duration) (*Coordinator, error) {
	c := New(cfg)
	maps.Copy(c.topics, topics)
	live := Compact(records, true)
	for _, kind := range []RecordKind{KindGroup, KindMember, KindCommit} {
		for i := range live {
			if live[i].Kind != kind {
				continue
			}
			if err := c.restoreOne(&live[i], now); err != nil {
				return nil, err
			}
		}
	}
	if err := c.restoreShares(live); err != nil {
		return nil, err
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("%w: restored state: %v", ErrCorrupt, err)
	}
	c.catchUpMetadata()
	return c, nil
}
