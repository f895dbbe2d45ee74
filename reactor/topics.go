package reactor

import (
	"hash/fnv"
	"sort"

	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/stats"
)

// topicInfo is the immutable description of one topic. A new topicTable is
// built for every change and published with an atomic pointer, so reactors
// read the registry without locks.
type topicInfo struct {
	name       string
	partitions uint32
	cfg        config.TopicConfig // resolved against the server defaults
	overrides  config.TopicConfig // as given at creation
	// shards[p] is the reactor that owns partition p.
	shards []uint16
	// shared[p] is partition p's published state (log start/end, size);
	// the topicInfo that replaces this one after an AlterTopic or
	// AddPartitions keeps the same pointers.
	shared []*partShared
	stats  *stats.Topic
	// lead[p] is partition p's leadership as the controller decided it
	// (cluster_reconcile.go).
	lead []partLead
}

// newShared returns n partitions' published state: keep's, then fresh.
func newShared(n uint32, keep []*partShared) []*partShared {
	s := make([]*partShared, n)
	copy(s, keep)
	for i := len(keep); i < len(s); i++ {
		s[i] = new(partShared)
	}
	return s
}

type topicTable struct {
	byName map[string]*topicInfo
}

func (t *topicTable) lookup(name []byte) *topicInfo {
	if t == nil {
		return nil
	}
	return t.byName[string(name)]
}

func (t *topicTable) sortedNames() []string {
	names := make([]string, 0, len(t.byName))
	for n := range t.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// with returns a copy of t with ti added (or replaced).
func (t *topicTable) with(ti *topicInfo) *topicTable {
	n := &topicTable{byName: make(map[string]*topicInfo, len(t.byName)+1)}
	for k, v := range t.byName {
		n.byName[k] = v
	}
	n.byName[ti.name] = ti
	return n
}

// without returns a copy of t without the named topic.
func (t *topicTable) without(name string) *topicTable {
	n := &topicTable{byName: make(map[string]*topicInfo, len(t.byName))}
	for k, v := range t.byName {
		if k != name {
			n.byName[k] = v
		}
	}
	return n
}

// assignShards spreads a topic's partitions round-robin over the reactors,
// starting at a shard derived from the topic name so that many small topics
// do not all land on reactor 0. The assignment is a pure function of the
// name, the partition count and the reactor count (never change it without
// a migration: clients cache it through Metadata).
func assignShards(name string, partitions uint32, reactors int) []uint16 {
	h := fnv.New32a()
	h.Write([]byte(name))
	start := h.Sum32()
	shards := make([]uint16, partitions)
	for p := range shards {
		shards[p] = uint16((start + uint32(p)) % uint32(reactors))
	}
	return shards
}

// partOwner returns the reactor owning partition p of topic info (nil for
// an unknown topic), or the error code for an unknown topic or partition,
// or for a partition this node does not lead (NOT_LEADER, or
// LEADER_NOT_AVAILABLE when it has no leader).
func partOwner(info *topicInfo, p uint32) (owner int, code proto.ErrorCode) {
	switch {
	case info == nil:
		return -1, proto.UnknownTopic
	case p >= info.partitions:
		return -1, proto.UnknownPartition
	case info.lead[p].code != proto.None:
		return -1, info.lead[p].code
	}
	return int(info.shards[p]), proto.None
}
