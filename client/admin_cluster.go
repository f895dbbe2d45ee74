package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/ringmq/ringmq/proto"
)

// anyNode runs fn over the connection to any node. When fn fails with a
// retriable error (the node has no controller leader yet, is shutting
// down, or, for idempotent requests, the connection was lost), it waits
// and runs again, on the next node that answers, until ctx ends; the last
// error is returned. A failure to reach any node is returned at once.
func (a *Admin) anyNode(ctx context.Context, idempotent bool, fn func(c *Conn) error) error {
	backoff := routeBackoff
	for {
		c, err := a.cl.conn(ctx, bootstrapKey)
		if err != nil {
			return err
		}
		err = fn(c)
		again := errors.Is(err, proto.ErrRetriable) ||
			(idempotent && (errors.Is(err, ErrConnectionLost) || errors.Is(err, ErrClosed)))
		if !again || ctx.Err() != nil {
			return err
		}
		if sleepCtx(ctx, backoff) != nil {
			return err
		}
		backoff = min(2*backoff, maxRouteBackoff)
	}
}

// describeLeaders asks each leader of name's partitions (but the node at
// via, which answered resp) for its own description, and copies its
// shard, offsets, size and status of the partitions it leads into resp. A
// leader that does not answer leaves them zero, with a status saying so.
func (a *Admin) describeLeaders(ctx context.Context, name string, resp *proto.DescribeTopicResponse, via string) {
	if len(resp.Partitions) == 0 {
		return
	}
	if _, err := a.cl.refresh(ctx, name); err != nil { // the brokers' addresses
		return
	}
	var leaders []uint32
	for _, p := range resp.Partitions {
		if p.Leader != proto.NoNode && !slices.Contains(leaders, p.Leader) && a.cl.brokerAddr(p.Leader) != via {
			leaders = append(leaders, p.Leader)
		}
	}
	views := make([]*proto.DescribeTopicResponse, len(leaders))
	var wg sync.WaitGroup
	for i, id := range leaders {
		wg.Go(func() {
			vctx, cancel := context.WithTimeout(ctx, leaderViewTimeout)
			defer cancel()
			if c, err := a.cl.conn(vctx, connKey{id, anyShard}); err == nil {
				views[i], _ = c.DescribeTopic(vctx, &proto.DescribeTopicRequest{Name: name})
			}
		})
	}
	wg.Wait()
	for i := range resp.Partitions {
		p := &resp.Partitions[i]
		j := slices.Index(leaders, p.Leader)
		if j < 0 {
			continue
		}
		v := views[j]
		if v == nil {
			p.Shard, p.LogStart, p.LogEnd, p.Bytes = 0, 0, 0, 0
			p.Status = fmt.Sprintf("leader node %d did not answer", p.Leader)
			continue
		}
		for _, vp := range v.Partitions {
			if vp.Partition == p.Partition {
				p.Shard, p.LogStart, p.LogEnd, p.Bytes, p.Status = vp.Shard, vp.LogStart, vp.LogEnd, vp.Bytes, vp.Status
			}
		}
	}
}

// ListOffsets returns the offset at ts of every partition of topic (index
// = partition), each from its leader: proto.TimestampEarliest (the log
// start), proto.TimestampLatest (the high watermark: where a consumer
// that starts now begins) or a time in Unix milliseconds (the first record
// at or after it). It waits for partitions without a leader until ctx
// ends.
func (a *Admin) ListOffsets(ctx context.Context, topic string, ts int64) ([]uint64, error) {
	t, err := a.cl.topic(ctx, topic)
	if err != nil {
		return nil, err
	}
	parts := make([]uint32, t.partitions())
	for i := range parts {
		parts[i] = uint32(i)
	}
	got, err := a.cl.listOffsets(ctx, topic, parts, ts)
	if err != nil {
		return nil, err
	}
	out := make([]uint64, len(parts))
	for p, off := range got {
		out[p] = off
	}
	return out, nil
}

// ClusterStatus is a node's view of the cluster: its nodes, the controller
// leader with its Raft term and commit index, and the partitions that are
// offline (no leader) or under-replicated (ISR smaller than the replicas).
type ClusterStatus struct {
	NodeID          uint32 // the node that answered
	ControllerID    uint32 // proto.NoNode: no controller leader known
	Term            uint64
	CommitIndex     uint64
	AppliedIndex    uint64
	Nodes           []NodeStatus
	Topics          uint32
	Partitions      uint32
	Offline         []PartitionStatus
	UnderReplicated []PartitionStatus
}

// NodeStatus is one node: its id, client address, whether the controller
// counts it alive, and the epoch of its latest registration (0: never
// registered).
type NodeStatus struct {
	ID          uint32
	Addr        string
	Alive       bool
	BrokerEpoch uint64
}

// PartitionStatus is one partition's leadership.
type PartitionStatus struct {
	Topic       string
	Partition   uint32
	Leader      uint32 // proto.NoNode: none
	LeaderEpoch uint32
	Replicas    []uint32
	ISR         []uint32
}

// ClusterStatus returns the controller leader's view of the cluster: it
// asks any node, then the controller leader that node names (the one
// whose term and commit index count); if the leader does not answer, the
// first node's view is returned.
func (a *Admin) ClusterStatus(ctx context.Context) (*ClusterStatus, error) {
	var resp *proto.ClusterStatusResponse
	err := a.anyNode(ctx, true, func(c *Conn) error {
		var err error
		resp, err = c.ClusterStatus(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	if resp.ControllerID != proto.NoNode && resp.ControllerID != resp.NodeID {
		if leader := a.askController(ctx, resp); leader != nil {
			resp = leader
		}
	}
	return clusterStatusOf(resp), nil
}

// askController asks the controller leader that resp names for its view
// (nil if it does not answer in time).
func (a *Admin) askController(ctx context.Context, resp *proto.ClusterStatusResponse) *proto.ClusterStatusResponse {
	for _, n := range resp.Nodes {
		if n.ID != resp.ControllerID {
			continue
		}
		vctx, cancel := context.WithTimeout(ctx, leaderViewTimeout)
		defer cancel()
		a.cl.mu.Lock()
		if _, ok := a.cl.brokers[n.ID]; !ok {
			a.cl.brokers[n.ID] = advertised(n.Addr, n.Addr, len(resp.Nodes))
		}
		a.cl.mu.Unlock()
		c, err := a.cl.conn(vctx, connKey{n.ID, anyShard})
		if err != nil {
			return nil
		}
		r, err := c.ClusterStatus(vctx)
		if err != nil || r.ControllerID != n.ID {
			return nil
		}
		return r
	}
	return nil
}

func clusterStatusOf(r *proto.ClusterStatusResponse) *ClusterStatus {
	s := &ClusterStatus{NodeID: r.NodeID, ControllerID: r.ControllerID, Term: r.Term, CommitIndex: r.CommitIndex,
		AppliedIndex: r.AppliedIndex, Topics: r.Topics, Partitions: r.Partitions}
	for _, n := range r.Nodes {
		s.Nodes = append(s.Nodes, NodeStatus(n))
	}
	for _, p := range r.Offline {
		s.Offline = append(s.Offline, PartitionStatus(p))
	}
	for _, p := range r.UnderReplicated {
		s.UnderReplicated = append(s.UnderReplicated, PartitionStatus(p))
	}
	return s
}
