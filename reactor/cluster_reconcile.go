package reactor

import (
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/controller"
	"github.com/ringmq/ringmq/controller/driver"
	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/stats"
)

// Reconciling, on the admin goroutine: the controller's applied state is
// the source of truth for topics. reconcile makes the topic table match
// it: a topic new to this node gets a topicInfo and its partitions hosted
// here are opened (created when not on disk) off the reactors and handed
// over; a grown or altered topic is replaced (replaceTopic); a topic gone
// from the controller is dropped with its logs; a change of leadership
// publishes a new topicInfo whose lead says, per partition, whether this
// node may serve produce, fetch and list-offsets. No reactor waits for the
// controller: they read the published table.

// partLead is one partition's leadership as the controller decided it.
type partLead struct {
	leader    uint32 // proto.NoNode: offline
	epoch     uint32
	partEpoch int32 // fences ISR changes
	replicas  []uint32
	isr       []uint32
	hosted    bool            // this node is one of the replicas
	code      proto.ErrorCode // None where this node leads; else NotLeader or LeaderNotAvailable
}

func (a partLead) equal(b partLead) bool {
	return a.leader == b.leader && a.epoch == b.epoch && a.partEpoch == b.partEpoch && a.hosted == b.hosted && a.code == b.code &&
		slices.Equal(a.replicas, b.replicas) && slices.Equal(a.isr, b.isr)
}

// hosts reports whether partition p of ti has a replica on this node.
func (ti *topicInfo) hosts(p uint32) bool { return int(p) < len(ti.lead) && ti.lead[p].hosted }

// nodeIDs converts controller broker ids to wire node ids.
func nodeIDs(ids []int32) []uint32 {
	out := make([]uint32, len(ids))
	for i, id := range ids {
		out[i] = uint32(id)
	}
	return out
}

// leadOf is partition p's leadership as seen from node self.
func leadOf(p *controller.Partition, self uint32) partLead {
	l := partLead{leader: proto.NoNode, epoch: uint32(p.LeaderEpoch), partEpoch: p.PartitionEpoch, replicas: nodeIDs(p.Replicas), isr: nodeIDs(p.ISR)}
	if p.Leader != controller.NoLeader {
		l.leader = uint32(p.Leader)
	}
	l.hosted = slices.Contains(l.replicas, self)
	switch l.leader {
	case self:
		l.code = proto.None
	case proto.NoNode:
		l.code = proto.LeaderNotAvailable
	default:
		l.code = proto.NotLeader
	}
	return l
}

// configEntries turns overrides into the controller's sorted entries.
func configEntries(kv map[string]string) []controller.ConfigEntry {
	out := make([]controller.ConfigEntry, 0, len(kv))
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		out = append(out, controller.ConfigEntry{Key: k, Value: kv[k]})
	}
	return out
}

// topicFromController is the topicInfo for t, keeping cur's published
// state and metrics (nil cur: a topic new here).
func (s *Server) topicFromController(t *controller.Topic, cur *topicInfo) (*topicInfo, error) {
	kv := make(map[string]string, len(t.Configs))
	for _, e := range t.Configs {
		kv[e.Key] = e.Value
	}
	overrides, err := config.ParseTopicOverrides(kv)
	if err != nil {
		return nil, err
	}
	n := uint32(len(t.Partitions))
	ti := &topicInfo{
		name:       t.Name,
		partitions: n,
		cfg:        overrides.Resolve(s.cfg.Storage.TopicDefaults()),
		overrides:  overrides,
		shards:     assignShards(t.Name, n, len(s.reactors)),
		lead:       make([]partLead, n),
	}
	for i := range t.Partitions {
		ti.lead[i] = leadOf(&t.Partitions[i], s.cl.self)
	}
	if cur != nil {
		ti.shared, ti.stats = newShared(n, cur.shared), cur.stats
	} else {
		ti.shared, ti.stats = newShared(n, nil), stats.ForTopic(t.Name)
	}
	return ti, nil
}

func sameTopic(a, b *topicInfo) bool {
	return a.partitions == b.partitions && maps.Equal(a.overrides.Overrides(), b.overrides.Overrides()) &&
		slices.EqualFunc(a.lead, b.lead, partLead.equal)
}

// reconcileUnlessStopping reconciles until Shutdown begins: then the
// reactors are winding down and may no longer take a topic update.
func (s *Server) reconcileUnlessStopping() {
	if !s.cl.stopping() {
		s.reconcile()
	}
}

// reconcile makes the topic table and the partitions open here match the
// controller's applied state, and publishes the cluster view.
func (s *Server) reconcile() {
	d := s.cl.ctrl()
	st, status := d.State(), d.Status()
	if st.Applied() < s.cl.reconciled {
		// Never go back (a driver reopened from its snapshot): a topic
		// missing from an older state is not deleted.
		return
	}
	s.cl.reconciled = st.Applied()
	s.publishView(st, status)
	tt := s.topics.Load()
	for _, name := range st.TopicNames() {
		t, _ := st.Topic(name)
		cur := tt.byName[name]
		next, err := s.topicFromController(t, cur)
		if err != nil {
			s.log.Error("topic from the controller not served", "topic", name, "err", err)
			continue
		}
		if cur != nil && sameTopic(cur, next) {
			continue
		}
		first := uint32(0)
		if cur != nil {
			first = cur.partitions
		}
		logs, err := s.openLogs(next, first)
		if err != nil {
			s.log.Error("partition not served", "topic", name, "err", err)
			s.noteUnserved(name, err)
			if s.cl.openFailed == nil {
				s.cl.openFailed = map[string]error{}
			}
			s.cl.openFailed[name] = err
		}
		if err := s.replaceTopic(&topicUpdate{ti: next, logs: logs}); err != nil {
			s.log.Error("install topic", "topic", name, "err", err)
		}
		if cur == nil {
			s.log.Info("topic served", "topic", name, "partitions", next.partitions, "hosted", countHosted(next))
		}
	}
	for _, name := range tt.sortedNames() {
		if _, ok := st.Topic(name); !ok {
			s.removeTopic(tt.byName[name])
		}
	}
}

func countHosted(ti *topicInfo) int {
	n := 0
	for _, l := range ti.lead {
		if l.hosted {
			n++
		}
	}
	return n
}

// removeTopic stops serving a topic the controller deleted and deletes
// its logs here and its committed offsets.
func (s *Server) removeTopic(ti *topicInfo) {
	name := ti.name
	s.topics.Store(s.topics.Load().without(name))
	if err := s.dropLogs(ti); err != nil {
		s.log.Error("delete topic partitions", "topic", name, "err", err)
	}
	// A topic created later under the same name starts with no commits.
	s.groups.topicDeleted(name)
	// What a failed open left behind (partition directories not served).
	if err := s.store.RemoveTopicDir(name); err != nil {
		s.log.Error("remove the directory of a deleted topic", "topic", name, "err", err)
	}
	delete(s.cl.openFailed, name)
	if p := s.unserved.Load(); p != nil && strings.HasPrefix(*p, name+": ") {
		s.unserved.CompareAndSwap(p, nil)
	}
	// A topic created later under the same name starts with no commits.
	for _, g := range s.meta.ListGroups() {
		for _, po := range s.meta.GroupOffsets(g) {
			if po.Topic != name {
				continue
			}
			if err := s.meta.DeleteOffset(g, name, po.Partition); err != nil {
				s.log.Error("delete committed offset of a deleted topic", "group", g, "topic", name, "err", err)
			}
		}
	}
	s.metrics.dropTopic(name)
	s.log.Info("topic deleted", "topic", name)
}

// clusterView is what the reactors answer Metadata and ClusterStatus
// with: the brokers, the nodes, and the partitions that need attention.
// Immutable once published.
type clusterView struct {
	brokers         []proto.BrokerInfo  // registered brokers, by id
	nodes           []proto.ClusterNode // configured nodes and registered brokers, by id
	topics          uint32
	partitions      uint32
	offline         []proto.ClusterPartition
	underReplicated []proto.ClusterPartition
}

// publishView builds and publishes the cluster view of st and the
// controller metrics.
func (s *Server) publishView(st *controller.State, status driver.Status) {
	v := &clusterView{}
	seen := map[uint32]bool{}
	alive := 0
	for _, b := range st.Brokers() {
		id := uint32(b.ID)
		seen[id] = true
		v.brokers = append(v.brokers, proto.BrokerInfo{ID: id, Addr: b.Addr, Alive: b.Alive})
		v.nodes = append(v.nodes, proto.ClusterNode{ID: id, Addr: b.Addr, Alive: b.Alive, BrokerEpoch: b.Epoch})
		if b.Alive {
			alive++
		}
	}
	for id, addr := range s.cl.peers {
		if !seen[id] {
			v.nodes = append(v.nodes, proto.ClusterNode{ID: id, Addr: addr})
		}
	}
	sort.Slice(v.nodes, func(i, j int) bool { return v.nodes[i].ID < v.nodes[j].ID })
	for _, name := range st.TopicNames() {
		t, _ := st.Topic(name)
		v.topics++
		for i := range t.Partitions {
			p := &t.Partitions[i]
			v.partitions++
			cp := func() proto.ClusterPartition {
				l := leadOf(p, s.cl.self)
				return proto.ClusterPartition{Topic: name, Partition: uint32(i), Leader: l.leader,
					LeaderEpoch: l.epoch, Replicas: l.replicas, ISR: l.isr}
			}
			if p.Leader == controller.NoLeader {
				v.offline = append(v.offline, cp())
			}
			if len(p.ISR) < len(p.Replicas) {
				v.underReplicated = append(v.underReplicated, cp())
			}
		}
	}
	s.cl.view.Store(v)
	if status.Leader != 0 && status.Leader != s.cl.lastLeader {
		stats.ControllerElection() // a leader this node had not seen lead
		s.cl.lastLeader = status.Leader
	}
	stats.SetController(status.Leader, status.Term, status.Commit, alive, len(v.offline), len(v.underReplicated))
}
