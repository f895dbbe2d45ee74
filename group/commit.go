package group

import (
	"fmt"
)

// CanCommit decides whether a member may commit (or fetch) a partition: it
// must own the partition now, and epoch must lie between the epoch it got
// the partition at and its current member epoch. So a member that lost the
// partition, or a request sent before it got it back, is refused
// (ErrFenced) and a stale member can never move a commit backwards.
//
// An empty member id is a client outside group management (manual
// assignment, Kafka's simple consumer): allowed only while the group has
// no members.
func (c *Coordinator) CanCommit(group, memberID string, epoch uint32, topic string, partition uint32) error {
	err := c.canCommit(group, memberID, epoch, topic, partition)
	if err != nil {
		c.counters.Fenced++
	}
	return err
}

func (c *Coordinator) canCommit(group, memberID string, epoch uint32, topic string, partition uint32) error {
	if !validName(group) {
		return fmt.Errorf("%w: %q", ErrInvalidGroupName, group)
	}
	tp := TopicPartition{topic, partition}
	g := c.groups[group]
	if memberID == "" {
		if g != nil && len(g.members) > 0 {
			return fmt.Errorf("%w: group %q has %d members; %s is managed by the group, join it to commit",
				ErrFenced, group, len(g.members), tp)
		}
		return nil
	}
	g, m, err := c.lookup(group, memberID)
	if err != nil {
		return err
	}
	since, owns := m.owned[tp]
	if !owns {
		holder := "nobody"
		if h, ok := g.owner[tp]; ok {
			holder = "member " + h
		}
		return fmt.Errorf("%w: group %q member %s (epoch %d) does not own %s; %s does",
			ErrFenced, group, memberID, epoch, tp, holder)
	}
	if epoch < since || epoch > m.epoch {
		return fmt.Errorf("%w: group %q member %s owns %s from epoch %d to %d; request has epoch %d",
			ErrFenced, group, memberID, tp, since, m.epoch, epoch)
	}
	return nil
}

// CanFetch applies the same rule as CanCommit to a group member's fetch.
func (c *Coordinator) CanFetch(group, memberID string, epoch uint32, topic string, partition uint32) error {
	return c.CanCommit(group, memberID, epoch, topic, partition)
}

// Commit stores a committed position after CanCommit allowed it. A commit
// outside group management creates the group (failover) if needed.
func (c *Coordinator) Commit(group, memberID string, epoch uint32, topic string, partition uint32, offset uint64, metadata string) error {
	if err := c.CanCommit(group, memberID, epoch, topic, partition); err != nil {
		return err
	}
	if len(metadata) > MaxMetadataLen {
		return fmt.Errorf("%w: commit metadata of %d bytes (max %d)", ErrInvalidRequest, len(metadata), MaxMetadataLen)
	}
	if !validName(topic) {
		return fmt.Errorf("%w: %q", ErrInvalidTopic, topic)
	}
	g := c.groups[group]
	if g == nil {
		if len(c.groups) >= c.cfg.MaxGroups {
			return fmt.Errorf("%w: %d groups, cannot create %q", ErrTooManyGroups, len(c.groups), group)
		}
		g = c.newGroup(group, TypeFailover)
	}
	tp := TopicPartition{topic, partition}
	g.commits[tp] = Commit{Offset: offset, Metadata: metadata}
	c.markCommit(g, tp)
	c.counters.Commits++
	return nil
}

// Committed returns a group's committed position for a partition.
func (c *Coordinator) Committed(group, topic string, partition uint32) (Commit, bool) {
	g := c.groups[group]
	if g == nil {
		return Commit{}, false
	}
	cm, ok := g.commits[TopicPartition{topic, partition}]
	return cm, ok
}
