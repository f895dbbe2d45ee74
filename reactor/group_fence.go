package reactor

import (
	"sync/atomic"

	"github.com/ringmq/ringmq/group"
	"github.com/ringmq/ringmq/proto"
)

// Fetch fencing. A consumer-group member's fetch names its group, member
// id and member epoch; a reactor refuses each partition the member does
// not own in that epoch, by the coordinator's rule (group.CanFetch: owned,
// and granted-at ≤ epoch ≤ member epoch), without asking the coordinator
// goroutine: that goroutine publishes every member's owned partitions in a
// fenceTable, built from the member records it has just made durable (a
// member record holds the member's epoch and every owned partition with
// the epoch it was granted at), before it answers the requests of that
// turn. So a member told of a new partition finds it in the table, and a
// member that released a partition, or was removed, is refused as soon as
// the coordinator has decided it.
//
// The table covers the groups of the internal partitions this node
// coordinates; a fetch naming a group coordinated elsewhere is served
// unfenced (the partition's leader would have to ask another node).

// fenceTable is the published ownership. Readers load pointers and read
// immutable maps; the coordinator goroutine replaces a group's member map
// when one of its members changes and the group map when a group comes or
// goes.
type fenceTable struct {
	groups atomic.Pointer[map[string]*fenceGroup]
	// local[p] is set while this node coordinates partition p of the
	// internal topic.
	local []atomic.Bool
}

type fenceGroup struct {
	members atomic.Pointer[map[string]*fenceMember]
}

type fenceMember struct {
	epoch uint32
	// owned: topic → partition → the epoch it was granted at.
	owned map[string]map[uint32]uint32
}

func newFenceTable(partitions int) *fenceTable {
	f := &fenceTable{local: make([]atomic.Bool, partitions)}
	f.groups.Store(&map[string]*fenceGroup{})
	return f
}

// check decides a group member's fetch of one partition. It does not
// allocate.
func (f *fenceTable) check(grp, member []byte, epoch uint32, topic []byte, partition uint32) proto.ErrorCode {
	if !f.local[fnv32a(grp)%uint32(len(f.local))].Load() {
		return proto.None
	}
	g := (*f.groups.Load())[string(grp)]
	if g == nil {
		return proto.UnknownMemberID
	}
	m := (*g.members.Load())[string(member)]
	if m == nil {
		return proto.UnknownMemberID
	}
	since, ok := m.owned[string(topic)][partition]
	if !ok || epoch < since || epoch > m.epoch {
		return proto.FencedMemberEpoch
	}
	return proto.None
}

// fnv32a is groupPartitionOf's hash over bytes, without allocating.
func fnv32a(b []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

// fenceUpdate is one change of the table: a member's new entry (m), a
// member removed (m nil), or a whole group removed (member "").
type fenceUpdate struct {
	group, member string
	m             *fenceMember
}

// fenceUpdates appends the updates of durable records (one append, or a
// restored log): a member record replaces that member's entry, a member
// tombstone removes it, a group tombstone removes the group. It touches
// no shared state, so the partitions' appends may run it in parallel.
func fenceUpdates(dst []fenceUpdate, recs []group.Record) []fenceUpdate {
	for i := range recs {
		r := &recs[i]
		switch {
		case r.Kind == group.KindGroup && r.Tombstone:
			dst = append(dst, fenceUpdate{group: r.Group})
		case r.Kind == group.KindMember && r.Tombstone:
			dst = append(dst, fenceUpdate{group: r.Group, member: r.Member.ID})
		case r.Kind == group.KindMember:
			dst = append(dst, fenceUpdate{group: r.Group, member: r.Member.ID, m: newFenceMember(&r.Member)})
		}
	}
	return dst
}

// apply publishes updates. Called only by the coordinator goroutine.
func (f *fenceTable) apply(ups []fenceUpdate) {
	if len(ups) == 0 {
		return
	}
	old := *f.groups.Load()
	changed := map[string]map[string]*fenceMember{} // group → its new member map
	for _, u := range ups {
		ms, ok := changed[u.group]
		if !ok {
			ms = map[string]*fenceMember{}
			if g := old[u.group]; g != nil {
				for id, m := range *g.members.Load() {
					ms[id] = m
				}
			}
			changed[u.group] = ms
		}
		switch {
		case u.member == "":
			clear(ms)
		case u.m == nil:
			delete(ms, u.member)
		default:
			ms[u.member] = u.m
		}
	}
	var groups map[string]*fenceGroup // copied only when a group comes or goes
	for name, ms := range changed {
		g := old[name]
		switch {
		case len(ms) == 0 && g != nil:
			if groups == nil {
				groups = copyGroups(old)
			}
			delete(groups, name)
		case len(ms) > 0 && g == nil:
			if groups == nil {
				groups = copyGroups(old)
			}
			g = &fenceGroup{}
			g.members.Store(&ms)
			groups[name] = g
		case len(ms) > 0:
			g.members.Store(&ms)
		}
	}
	if groups != nil {
		f.groups.Store(&groups)
	}
}

// drop forgets the groups of one internal partition (its coordinator was
// rebuilt, or this node no longer coordinates it).
func (f *fenceTable) drop(partition int) {
	old := *f.groups.Load()
	groups := make(map[string]*fenceGroup, len(old))
	for name, g := range old {
		if groupPartitionOf(name, len(f.local)) != partition {
			groups[name] = g
		}
	}
	f.groups.Store(&groups)
}

func copyGroups(m map[string]*fenceGroup) map[string]*fenceGroup {
	c := make(map[string]*fenceGroup, len(m)+1)
	for k, v := range m {
		c[k] = v
	}
	return c
}

func newFenceMember(r *group.MemberRecord) *fenceMember {
	m := &fenceMember{epoch: r.Epoch, owned: map[string]map[uint32]uint32{}}
	for _, o := range r.Owned {
		ps := m.owned[o.Topic]
		if ps == nil {
			ps = map[uint32]uint32{}
			m.owned[o.Topic] = ps
		}
		ps[o.Partition] = o.Since
	}
	return m
}
