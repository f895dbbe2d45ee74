package reactor

import (
	"errors"
	"fmt"
	"time"

	"github.com/ringmq/ringmq/controller"
	"github.com/ringmq/ringmq/group"
	"github.com/ringmq/ringmq/proto"
)

// Coordinator placement in a cluster. Group G is coordinated by the leader
// of partition fnv32a(G) mod groups.partitions of the internal topic
// __consumer_offsets, a topic of the controller like any other (placed,
// led, moved by it) that the broker creates itself: in a cluster once
// every configured node has registered (or 10 s after this one did), on
// one node at the first FindCoordinator. Each node runs the coordinators
// of the internal partitions it leads: the coordinator goroutine follows
// the published topic table, loads a partition's state from its log when
// this node becomes its leader and drops it when another node does. A
// group request for a partition this node does not lead is answered
// NOT_COORDINATOR (retriable; the client asks FindCoordinator again), one
// whose partition has no leader or does not exist yet
// COORDINATOR_NOT_AVAILABLE.
//
// A one-node server (no cluster.peers) coordinates every partition from
// its start, whether or not the internal topic exists yet: it leads all
// of them anyway.

// offsetsMaxReplicas caps the internal topic's replication factor while
// data replication is not built (a second replica would hold no data).
const offsetsMaxReplicas = 1

// offsetsCreateAfter is how long a node of a cluster waits for every
// configured node to register before it creates the internal topic on the
// brokers that have.
const offsetsCreateAfter = 10 * time.Second

// clustered reports whether group coordinators follow the leadership of
// the internal topic (a cluster of several nodes).
func (s *Server) clustered() bool { return len(s.cl.peers) > 1 }

// wantOffsetsTopic asks the offsets-topic goroutine to create the internal
// topic now (a FindCoordinator met none). It never blocks.
func (s *Server) wantOffsetsTopic() {
	select {
	case s.offsetsWanted <- struct{}{}:
	default:
	}
}

// offsetsTopicLoop creates the internal topic once it is wanted, retrying
// until the controller holds it or the server stops. Started after this
// broker's first registration.
func (s *Server) offsetsTopicLoop() {
	start := time.Now()
	wanted := false
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, ok := s.cl.ctrl().State().Topic(proto.OffsetsTopic); ok {
			return
		}
		alive := 0
		for _, b := range s.cl.ctrl().State().Brokers() {
			if b.Alive {
				alive++
			}
		}
		if s.clustered() && (alive >= len(s.cl.peers) || time.Since(start) >= offsetsCreateAfter) {
			wanted = true
		}
		if wanted && alive > 0 {
			rf := max(1, min(s.cfg.Cluster.ReplicationFactor, alive, offsetsMaxReplicas))
			ctx, cancel := s.stopContext(proposeTimeout)
			_, err := s.propose(ctx, controller.Command{Type: controller.CmdCreateTopic, Topic: proto.OffsetsTopic,
				Partitions: int32(s.cfg.Groups.Partitions), Replicas: int32(rf)})
			cancel()
			switch {
			case err == nil:
				s.log.Info("internal topic created", "topic", proto.OffsetsTopic, "partitions", s.cfg.Groups.Partitions,
					"replication_factor", rf)
				return
			case errors.Is(err, controller.ErrTopicExists):
				return
			default:
				s.log.Debug("create the internal topic", "err", err)
			}
		}
		select {
		case <-s.cl.stop:
			return
		case <-s.offsetsWanted:
			wanted = true
		case <-tick.C:
		}
	}
}

// handleFindCoordinator answers where a group's coordinator runs, from the
// published topic table and cluster view, on the reactor.
func (r *Reactor) handleFindCoordinator(q *request, body []byte) {
	var req proto.FindCoordinatorRequest
	if err := req.Decode(body); err != nil {
		r.respondError(q, proto.InvalidRequest)
		return
	}
	if !proto.ValidName([]byte(req.Group)) {
		r.respondError(q, proto.InvalidGroupName)
		return
	}
	s := r.srv
	p := uint32(groupPartitionOf(req.Group, s.cfg.Groups.Partitions))
	resp := &proto.FindCoordinatorResponse{Partition: p}
	ti := s.topics.Load().byName[proto.OffsetsTopic]
	if ti == nil {
		s.wantOffsetsTopic()
	}
	switch {
	case !s.clustered():
		resp.NodeID = s.cl.self
	case ti == nil || p >= ti.partitions || ti.lead[p].leader == proto.NoNode:
		r.respond(q, proto.CoordinatorNotAvailable, nil)
		return
	default:
		resp.NodeID = ti.lead[p].leader
	}
	for _, b := range s.cl.view.Load().brokers {
		if b.ID == resp.NodeID {
			resp.Addr = b.Addr
		}
	}
	if resp.Addr == "" && resp.NodeID != s.cl.self {
		r.respond(q, proto.CoordinatorNotAvailable, nil)
		return
	}
	r.respond(q, proto.None, resp)
}

// followLeadership makes the coordinators running here those of the
// internal partitions this node leads in tt (a cluster only): a partition
// it now leads is loaded from its log, one it no longer leads is dropped.
func (d *groupDriver) followLeadership(tt *topicTable) {
	if !d.s.clustered() {
		return
	}
	ti := tt.byName[proto.OffsetsTopic]
	for _, gp := range d.parts {
		p := uint32(gp.id)
		leads := ti != nil && p < ti.partitions && ti.lead[p].code == proto.None
		switch {
		case leads && !gp.active:
			d.activate(gp)
		case !leads && gp.active:
			d.deactivate(gp)
		}
	}
}

// activate loads partition gp's state from its log: this node became its
// leader.
func (d *groupDriver) activate(gp *groupPartition) {
	loaded, _, err := d.openPartition(gp.id)
	if err != nil {
		d.s.log.Error("consumer-group coordinator not available", "partition", gp.id, "err", err)
		gp.broken, gp.active = err, true
		return
	}
	*gp = *loaded
	gp.fenced, gp.active = nil, true
	d.fence.apply(fenceUpdates(nil, gp.c.Records()))
	d.fence.local[gp.id].Store(true)
	d.exportCommits(gp)
	d.s.log.Info("consumer-group coordinator loaded", "partition", gp.id, "groups", len(gp.c.Groups()))
}

// deactivate drops partition gp's coordinator: another node leads it now.
func (d *groupDriver) deactivate(gp *groupPartition) {
	d.fence.local[gp.id].Store(false)
	d.fence.drop(gp.id)
	if gp.log != nil {
		if err := gp.log.close(); err != nil {
			d.s.log.Error("close consumer-group log", "path", gp.log.path, "err", err)
		}
	}
	*gp = groupPartition{id: gp.id, c: group.New(d.cfg)}
	d.s.log.Info("consumer-group coordinator moved away", "partition", gp.id)
}

// notCoordinator is the refusal of a request for a group whose partition
// this node does not coordinate.
func (d *groupDriver) notCoordinator(gp *groupPartition) (proto.ErrorCode, string) {
	ti := d.topics.byName[proto.OffsetsTopic]
	p := uint32(gp.id)
	if ti == nil || p >= ti.partitions || ti.lead[p].leader == proto.NoNode {
		return proto.CoordinatorNotAvailable, fmt.Sprintf("partition %d of %s has no leader yet; retry", p, proto.OffsetsTopic)
	}
	return proto.NotCoordinator, fmt.Sprintf("node %d coordinates this group (partition %d of %s)",
		ti.lead[p].leader, p, proto.OffsetsTopic)
}
