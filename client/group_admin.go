package client

import (
	"context"
	"fmt"
	"time"

	"github.com/ringmq/ringmq/group"
	"github.com/ringmq/ringmq/proto"
)

// GroupDescription is one group as DescribeGroup reports it.
type GroupDescription struct {
	Name       string
	Type       Subscription
	State      string // empty, reconciling or stable
	Epoch      uint32
	Members    []GroupMember
	Partitions []GroupPartition // committed positions with log end and lag
}

// GroupMember is one member of a group.
type GroupMember struct {
	ID             string
	ClientID       string
	Addr           string
	Topics         []string
	SessionTimeout time.Duration
	Epoch          uint32
	Assigned       []TopicPartition // reading
	Revoking       []TopicPartition // to commit and release
	Pending        []TopicPartition // assigned, still held by their previous owner
}

// ResetChange is one partition of a reset plan: its old commit (if Had)
// and its new one.
type ResetChange struct {
	Topic     string
	Partition uint32
	Had       bool
	From      uint64
	To        uint64
}

func subscriptionOf(t uint8) Subscription {
	switch t {
	case proto.GroupTypeExclusive:
		return SubscriptionExclusive
	case proto.GroupTypeShared:
		return SubscriptionShared
	case proto.GroupTypeKeyShared:
		return SubscriptionKeyShared
	}
	return SubscriptionFailover
}

func groupState(s uint8) string {
	switch s {
	case proto.GroupStateEmpty:
		return "empty"
	case proto.GroupStateReconciling:
		return "reconciling"
	case proto.GroupStateStable:
		return "stable"
	}
	return fmt.Sprintf("state(%d)", s)
}

func validGroup(name string) error {
	if !proto.ValidName([]byte(name)) {
		return fmt.Errorf("client: group name %.40q: use 1-%d characters of [a-zA-Z0-9._-]: %w",
			name, proto.MaxNameLen, proto.InvalidGroupName)
	}
	return nil
}

func fromWire(gps []proto.GroupPartitions) []TopicPartition {
	var out []TopicPartition
	for _, g := range gps {
		for _, p := range g.Partitions {
			out = append(out, TopicPartition{g.Topic, p})
		}
	}
	return out
}

// DescribeGroup returns a group's type, state, members (client id,
// address, assigned partitions) and positions (committed offset, log end,
// lag). An unknown group fails with proto.GroupNotFound.
func (a *Admin) DescribeGroup(ctx context.Context, name string) (*GroupDescription, error) {
	if err := validGroup(name); err != nil {
		return nil, err
	}
	var resp *proto.DescribeGroupResponse
	err := a.groupCall(ctx, name, func(c *Conn) (err error) {
		resp, err = c.DescribeGroup(ctx, &proto.DescribeGroupRequest{Group: name})
		return err
	})
	if err != nil {
		return nil, err
	}
	d := &GroupDescription{Name: name, Type: subscriptionOf(resp.Type), State: groupState(resp.State), Epoch: resp.Epoch}
	for _, m := range resp.Members {
		d.Members = append(d.Members, GroupMember{ID: m.ID, ClientID: m.ClientID, Addr: m.Addr, Topics: m.Topics,
			SessionTimeout: time.Duration(m.SessionTimeoutMs) * time.Millisecond, Epoch: m.Epoch,
			Assigned: fromWire(m.Assigned), Revoking: fromWire(m.Revoking), Pending: fromWire(m.Pending)})
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			d.Partitions = append(d.Partitions, GroupPartition{Topic: t.Name, Partition: p.Partition,
				Committed: p.Committed, LogEnd: p.LogEnd, Lag: p.Lag})
		}
	}
	return d, nil
}

// DeleteGroup deletes a group and its commits; refused while it has
// members (proto.GroupNotEmpty).
func (a *Admin) DeleteGroup(ctx context.Context, name string) error {
	if err := validGroup(name); err != nil {
		return err
	}
	return a.groupCall(ctx, name, func(c *Conn) error {
		return c.DeleteGroup(ctx, &proto.DeleteGroupRequest{Group: name})
	})
}

// ResetOffsets moves a group's positions in every partition of topic to
// "earliest", "latest", an offset, or "@TIME" (RFC 3339 or Unix
// milliseconds: the first record at or after it), each clamped to the
// partition's log as Kafka does. With dryRun nothing changes and the plan
// is returned. Refused while the group has members (proto.GroupNotEmpty).
func (a *Admin) ResetOffsets(ctx context.Context, name, topic, to string, dryRun bool) ([]ResetChange, error) {
	if err := validGroup(name); err != nil {
		return nil, err
	}
	spec, err := group.ParseResetSpec(to)
	if err != nil {
		return nil, fmt.Errorf("client: reset %q: %w", name, err)
	}
	bounds, err := a.partitionBounds(ctx, topic, spec)
	if err != nil {
		return nil, err
	}
	req := &proto.ResetOffsetsRequest{Group: name, Topic: topic, DryRun: dryRun}
	for _, b := range bounds {
		req.Partitions = append(req.Partitions, proto.ResetPartition{Partition: b.Partition, Offset: spec.Resolve(b)})
	}
	var resp *proto.ResetOffsetsResponse
	err = a.groupCall(ctx, name, func(c *Conn) (err error) {
		resp, err = c.ResetOffsets(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]ResetChange, 0, len(resp.Partitions))
	for _, p := range resp.Partitions {
		out = append(out, ResetChange{Topic: topic, Partition: p.Partition, Had: p.Had, From: p.From, To: p.To})
	}
	return out, nil
}

// partitionBounds returns, for every partition of topic, its log start,
// its high watermark and (for a reset to a time) the offset at spec's
// time, each asked of the partition's leader.
func (a *Admin) partitionBounds(ctx context.Context, topic string, spec group.ResetSpec) ([]group.PartitionBounds, error) {
	starts, err := a.ListOffsets(ctx, topic, proto.TimestampEarliest)
	if err != nil {
		return nil, err
	}
	ends, err := a.ListOffsets(ctx, topic, proto.TimestampLatest)
	if err != nil {
		return nil, err
	}
	at := ends
	if spec.Kind == group.ResetTime {
		if at, err = a.ListOffsets(ctx, topic, spec.Time.UnixMilli()); err != nil {
			return nil, fmt.Errorf("client: offsets at %v of %s: %w", spec.Time, topic, err)
		}
	}
	out := make([]group.PartitionBounds, len(starts))
	for p := range starts {
		out[p] = group.PartitionBounds{Partition: uint32(p), Start: starts[p], End: ends[p], AtTime: at[p]}
	}
	return out, nil
}

// groupCall runs a request of group name on its coordinator
// (coordinator.go).
func (a *Admin) groupCall(ctx context.Context, name string, call func(*Conn) error) error {
	return a.cl.groupCall(ctx, name, call)
}
