package group

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// restoreOne applies one live record (tombstones are compacted away);
// groups come before their members and commits.
func (c *Coordinator) restoreOne(r *Record, now time.Duration) error {
	if r.Kind == KindGroup {
		g := c.newGroup(r.Group, r.Type)
		g.epoch = r.Epoch
		delete(c.dirtyGroups, r.Group)
		return nil
	}
	g := c.groups[r.Group]
	if g == nil {
		return fmt.Errorf("%w: %s record of group %q, which has no group record", ErrCorrupt, r.Kind, r.Group)
	}
	switch r.Kind {
	case KindMember:
		mr := &r.Member
		m := &member{
			id: mr.ID, clientID: mr.ClientID, addr: mr.Addr, topics: slices.Clone(mr.Topics),
			session: mr.SessionTimeout, lastSeen: now, epoch: mr.Epoch,
			owned: make(map[TopicPartition]uint32, len(mr.Owned)), target: make(map[TopicPartition]struct{}, len(mr.Target)),
		}
		for _, o := range mr.Owned {
			if h, taken := g.owner[o.TopicPartition]; taken {
				return fmt.Errorf("%w: group %q: %s owned by %s and %s", ErrCorrupt, g.name, o.TopicPartition, h, m.id)
			}
			m.owned[o.TopicPartition] = o.Since
			g.owner[o.TopicPartition] = m.id
		}
		for _, tp := range mr.Target {
			m.target[tp] = struct{}{}
		}
		g.members[m.id] = m
	case KindCommit:
		g.commits[r.TopicPartition] = r.Commit
	}
	return nil
}

// check verifies the coordinator's invariants: every owned partition has
// exactly one owner and that owner lists it; ownership epochs do not
// exceed their member's epoch, which does not exceed the group's; target
// assignments do not overlap; an exclusive group has at most one member.
func (c *Coordinator) check() error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(c.groups)) {
		g := c.groups[name]
		if g.typ == TypeExclusive && len(g.members) > 1 {
			errs = append(errs, fmt.Errorf("exclusive group %q has %d members", name, len(g.members)))
		}
		owned, targeted := 0, map[TopicPartition]string{}
		for _, id := range slices.Sorted(maps.Keys(g.members)) {
			m := g.members[id]
			if m.epoch > g.epoch {
				errs = append(errs, fmt.Errorf("group %q member %s epoch %d > group epoch %d", name, id, m.epoch, g.epoch))
			}
			for tp, since := range m.owned {
				owned++
				if g.owner[tp] != id {
					errs = append(errs, fmt.Errorf("group %q: member %s owns %s but the owner is %q", name, id, tp, g.owner[tp]))
				}
				if since > m.epoch {
					errs = append(errs, fmt.Errorf("group %q: member %s owns %s since epoch %d > its epoch %d", name, id, tp, since, m.epoch))
				}
			}
			for tp := range m.target {
				if other, dup := targeted[tp]; dup {
					errs = append(errs, fmt.Errorf("group %q: %s is in the targets of %s and %s", name, tp, other, id))
				}
				targeted[tp] = id
			}
		}
		if owned != len(g.owner) {
			errs = append(errs, fmt.Errorf("group %q: %d owners, members own %d", name, len(g.owner), owned))
		}
	}
	return errors.Join(errs...)
}

// catchUpMetadata applies topic changes that happened while the log was
// not being followed: partitions that no longer exist leave assignments
// and commits, and groups rebalance (a no-op when nothing changed: the
// assignment is sticky and was complete).
func (c *Coordinator) catchUpMetadata() {
	gone := map[string]struct{}{}
	for _, g := range c.groups {
		for tp := range g.commits {
			if tp.Partition >= c.topics[tp.Topic] {
				gone[tp.Topic] = struct{}{}
			}
		}
		for _, m := range g.members {
			for tp := range m.owned {
				if tp.Partition >= c.topics[tp.Topic] {
					gone[tp.Topic] = struct{}{}
				}
			}
		}
	}
	for _, topic := range slices.Sorted(maps.Keys(gone)) {
		c.topicChanged(topic)
	}
	for _, name := range slices.Sorted(maps.Keys(c.groups)) {
		if g := c.groups[name]; len(g.members) > 0 {
			g.stepEpoch = 0
			c.rebalance(g)
		}
	}
}
