package group

import (
	"maps"
	"slices"
)

// rebalance recomputes every member's target assignment, then hands the
// partitions nobody owns to their target member. A partition still owned
// by someone else stays with them until they release it or leave.
func (c *Coordinator) rebalance(g *group) {
	ids := slices.Sorted(maps.Keys(g.members))
	var targets map[string]map[TopicPartition]struct{}
	switch g.typ {
	case TypeExclusive:
		targets = c.assignExclusive(g, ids)
	case TypeShared, TypeKeyShared:
		targets = map[string]map[TopicPartition]struct{}{} // nobody owns: trackers share
	default:
		targets = c.assignFailover(g, ids)
	}
	changed := false
	for _, id := range ids {
		m := g.members[id]
		if !maps.Equal(m.target, targets[id]) {
			m.target = targets[id]
			c.markMember(g, id)
			changed = true
		}
	}
	if changed {
		c.counters.Rebalances++
	}
	c.grantFree(g)
}

// grantFree gives each member the partitions of its target that nobody
// owns; a member that gets any moves to the input's epoch, which is also
// the epoch it owns them from.
func (c *Coordinator) grantFree(g *group) {
	for _, id := range slices.Sorted(maps.Keys(g.members)) {
		m := g.members[id]
		for _, tp := range sortedTPs(m.target) {
			if _, taken := g.owner[tp]; taken {
				continue
			}
			e := g.step()
			g.owner[tp] = id
			m.owned[tp] = e
			m.epoch = e
			c.markMember(g, id)
		}
	}
}

// assignExclusive gives the one member every partition of its topics.
func (c *Coordinator) assignExclusive(g *group, ids []string) map[string]map[TopicPartition]struct{} {
	targets := make(map[string]map[TopicPartition]struct{}, len(ids))
	for _, id := range ids {
		t := map[TopicPartition]struct{}{}
		for _, topic := range g.members[id].topics {
			for p := range c.topics[topic] {
				t[TopicPartition{topic, p}] = struct{}{}
			}
		}
		targets[id] = t
	}
	return targets
}

// assignFailover spreads each topic's partitions evenly over the members
// subscribed to it (counts differ by at most one), keeping every partition
// with its current target member while that member is within its share.
// The members that get one partition more are those already holding that
// many, then the least loaded over all topics, so single-partition topics
// spread too. Deterministic: the same state gives the same targets.
func (c *Coordinator) assignFailover(g *group, ids []string) map[string]map[TopicPartition]struct{} {
	targets := make(map[string]map[TopicPartition]struct{}, len(ids))
	load := make(map[string]int, len(ids))
	prev := map[TopicPartition]string{}
	subscribed := map[string][]string{}
	for _, id := range ids {
		targets[id] = map[TopicPartition]struct{}{}
		m := g.members[id]
		for tp := range m.target {
			prev[tp] = id
		}
		for _, t := range m.topics {
			subscribed[t] = append(subscribed[t], id)
		}
	}
	for _, topic := range slices.Sorted(maps.Keys(subscribed)) {
		n := c.topics[topic]
		subs := subscribed[topic]
		if n == 0 {
			continue
		}
		quota := failoverQuotas(topic, n, subs, prev, load)
		got := make(map[string]int, len(subs))
		var free []uint32
		for p := range n {
			tp := TopicPartition{topic, p}
			if h, ok := prev[tp]; ok && got[h] < quota[h] {
				targets[h][tp] = struct{}{}
				got[h]++
				continue
			}
			free = append(free, p)
		}
		order := slices.Clone(subs)
		slices.SortStableFunc(order, func(a, b string) int { return load[a] - load[b] })
		for _, id := range order {
			for got[id] < quota[id] && len(free) > 0 {
				targets[id][TopicPartition{topic, free[0]}] = struct{}{}
				free = free[1:]
				got[id]++
			}
		}
		for _, id := range subs {
			load[id] += got[id]
		}
	}
	return targets
}

// failoverQuotas gives each subscriber n/k partitions of the topic, and
// one more to n%k of them: first to those already holding more than n/k,
// then to the least loaded.
func failoverQuotas(topic string, n uint32, subs []string, prev map[TopicPartition]string, load map[string]int) map[string]int {
	k := len(subs)
	base, extra := int(n)/k, int(n)%k
	held := make(map[string]int, k)
	for p := range n {
		if h, ok := prev[TopicPartition{topic, p}]; ok {
			held[h]++
		}
	}
	order := slices.Clone(subs)
	slices.SortStableFunc(order, func(a, b string) int {
		ha, hb := held[a] > base, held[b] > base
		if ha != hb {
			if ha {
				return -1
			}
			return 1
		}
		return load[a] - load[b]
	})
	quota := make(map[string]int, k)
	for i, id := range order {
		quota[id] = base
		if i < extra {
			quota[id]++
		}
	}
	return quota
}

// SetTopic records that topic exists with this many partitions (topic
// metadata is an input: the driver feeds creations and partition
// additions). Groups subscribed to it rebalance.
func (c *Coordinator) SetTopic(topic string, partitions uint32) {
	if old, ok := c.topics[topic]; ok && old == partitions {
		return
	}
	c.topics[topic] = partitions
	c.topicChanged(topic)
}

// DeleteTopic records that topic is gone: its partitions leave every
// assignment without a revocation, and its commits are deleted.
func (c *Coordinator) DeleteTopic(topic string) {
	delete(c.topics, topic)
	c.topicChanged(topic)
}

func (c *Coordinator) topicChanged(topic string) {
	n := c.topics[topic]
	for _, name := range slices.Sorted(maps.Keys(c.groups)) {
		g := c.groups[name]
		g.stepEpoch = 0
		for tp := range g.commits {
			if tp.Topic == topic && tp.Partition >= n {
				delete(g.commits, tp)
				c.markCommit(g, tp)
			}
		}
		if g.shares != nil {
			for tp := range g.shares.trackers {
				if tp.Topic == topic && tp.Partition >= n {
					delete(g.shares.trackers, tp)
					c.markShare(g, tp)
				}
			}
		}
		subscribed := false
		for _, id := range slices.Sorted(maps.Keys(g.members)) {
			m := g.members[id]
			subscribed = subscribed || slices.Contains(m.topics, topic)
			for tp := range m.owned {
				if tp.Topic == topic && tp.Partition >= n {
					c.release(g, m, tp)
					m.epoch = g.step()
				}
			}
		}
		if subscribed {
			c.rebalance(g)
		}
	}
}
