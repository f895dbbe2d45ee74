package client

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/ringmq/ringmq/proto"
)

// Admin manages topics and inspects consumer groups and the cluster. Its
// requests go to any node (which hands topic changes to the controller
// leader); a node that cannot serve one just now (no controller leader
// yet, a lost connection for reads) is asked again, on the next node that
// answers, until the context ends. Per-partition figures (offsets, sizes)
// come from each partition's leader. It is safe for concurrent use.
// Server refusals come back as errors wrapping a proto.ErrorCode
// (errors.Is(err, proto.TopicExists)).
type Admin struct {
	cl *cluster
}

// TopicInfo is a topic's partitions as Metadata or DescribeTopic report
// them. Configs (only from DescribeTopic) are the topic's effective
// settings, keyed by proto.Config* names.
type TopicInfo struct {
	Name       string
	Partitions []PartitionInfo
	Configs    map[string]string
}

// PartitionInfo is one partition: the shard (reactor) that owns it, its log
// range and (DescribeTopic only) its size on disk and its status (empty
// when healthy; else fenced or corrupt, and why).
type PartitionInfo struct {
	Partition uint32
	Shard     uint16
	LogStart  uint64
	LogEnd    uint64
	Bytes     uint64
	Status    string
	// Leader (proto.NoNode: offline), LeaderEpoch, Replicas and ISR are
	// the controller's; DescribeTopic fills them.
	Leader      uint32
	LeaderEpoch uint32
	Replicas    []uint32
	ISR         []uint32
}

// GroupInfo is a consumer group: its subscription type, state
// ("empty", "reconciling", "stable"), member count and committed
// positions.
type GroupInfo struct {
	Name       string
	Type       Subscription
	State      string
	Members    int
	Partitions []GroupPartition
}

// GroupPartition is a group's committed offset (the next offset it reads)
// in one partition, the partition's log end, and the lag between them.
type GroupPartition struct {
	Topic     string
	Partition uint32
	Committed uint64
	LogEnd    uint64
	Lag       uint64
}

// NewAdmin returns an Admin for the cluster at addr: "host:port", or a
// comma-separated list of nodes to bootstrap from (the first that answers
// serves). It connects on first use.
func NewAdmin(addr string, opts Options) (*Admin, error) {
	cl, err := newCluster(addr, opts, DefaultDialTimeout)
	if err != nil {
		return nil, err
	}
	return &Admin{cl: cl}, nil
}

// Close closes the connections.
func (a *Admin) Close() error {
	a.cl.close()
	return nil
}

// CreateTopic creates a topic with partitions partitions; configs override
// the server's defaults (keys: proto.ConfigRetentionMs, ConfigSegmentBytes,
// ConfigFlush, ...).
func (a *Admin) CreateTopic(ctx context.Context, name string, partitions uint32, configs map[string]string) error {
	return a.CreateTopicReplicated(ctx, name, partitions, 0, configs)
}

// CreateTopicReplicated is CreateTopic with each partition on replicas
// brokers (0: the cluster's cluster.replication_factor). More replicas
// than live brokers fail with proto.InvalidReplicationFactor.
func (a *Admin) CreateTopicReplicated(ctx context.Context, name string, partitions uint32, replicas uint16, configs map[string]string) error {
	req := &proto.CreateTopicRequest{Name: name, Partitions: partitions, ReplicationFactor: replicas}
	for _, k := range slices.Sorted(maps.Keys(configs)) {
		req.Configs = append(req.Configs, proto.Config{Key: k, Value: configs[k]})
	}
	return a.anyNode(ctx, false, func(c *Conn) error {
		_, err := c.CreateTopic(ctx, req)
		return err
	})
}

// AlterTopic changes a topic's configuration: each entry sets its key
// (the names CreateTopic takes, or Kafka's dotted spelling), and an empty
// value removes the override so the server's default applies again. Keys
// not named keep their values.
func (a *Admin) AlterTopic(ctx context.Context, name string, configs map[string]string) error {
	req := &proto.AlterTopicRequest{Name: name}
	for _, k := range slices.Sorted(maps.Keys(configs)) {
		req.Configs = append(req.Configs, proto.Config{Key: k, Value: configs[k]})
	}
	return a.anyNode(ctx, true, func(c *Conn) error { // setting the same values again is harmless
		_, err := c.AlterTopic(ctx, req)
		return err
	})
}

// AddPartitions grows a topic to total partitions; existing partitions
// keep their data. It fails with proto.InvalidPartitions unless total is
// above the current count. Producers that partition by key send a key to
// a different partition from then on.
func (a *Admin) AddPartitions(ctx context.Context, name string, total uint32) error {
	return a.anyNode(ctx, false, func(c *Conn) error {
		_, err := c.AddPartitions(ctx, &proto.AddPartitionsRequest{Name: name, Partitions: total})
		return err
	})
}

// DeleteTopic deletes a topic and its data.
func (a *Admin) DeleteTopic(ctx context.Context, name string) error {
	return a.anyNode(ctx, false, func(c *Conn) error {
		_, err := c.DeleteTopic(ctx, &proto.DeleteTopicRequest{Name: name})
		return err
	})
}

// ListTopics lists every topic with its partitions, sorted by name; each
// partition's shard and offsets are its leader's. The broker's internal
// topics (__consumer_offsets) are left out: ListAllTopics has them.
func (a *Admin) ListTopics(ctx context.Context) ([]TopicInfo, error) {
	all, err := a.ListAllTopics(ctx)
	out := all[:0]
	for _, t := range all {
		if !proto.IsInternalTopic(t.Name) {
			out = append(out, t)
		}
	}
	return out, err
}

// ListAllTopics is ListTopics with the broker's internal topics.
func (a *Admin) ListAllTopics(ctx context.Context) ([]TopicInfo, error) {
	var resp *proto.MetadataResponse
	err := a.anyNode(ctx, true, func(*Conn) error {
		var err error
		resp, err = a.cl.refresh(ctx)
		if resp != nil {
			return nil // a topic deleted while listing is left out
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]TopicInfo, 0, len(resp.Topics))
	for _, t := range resp.Topics {
		if t.Error != proto.None {
			continue // deleted while listing
		}
		ti := TopicInfo{Name: t.Name}
		for _, p := range t.Partitions {
			ti.Partitions = append(ti.Partitions, PartitionInfo{Partition: p.Partition, Shard: p.Shard,
				LogStart: p.LogStart, LogEnd: p.LogEnd, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
				Replicas: p.Replicas, ISR: p.ISR})
		}
		out = append(out, ti)
	}
	slices.SortFunc(out, func(x, y TopicInfo) int { return cmpString(x.Name, y.Name) })
	return out, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// DescribeTopic returns a topic's partitions (leadership, and each
// leader's offsets, size and status) and its configuration.
func (a *Admin) DescribeTopic(ctx context.Context, name string) (*TopicInfo, error) {
	var resp *proto.DescribeTopicResponse
	var via string
	err := a.anyNode(ctx, true, func(c *Conn) error {
		var err error
		resp, err = c.DescribeTopic(ctx, &proto.DescribeTopicRequest{Name: name})
		via = c.Addr()
		return err
	})
	if err != nil {
		return nil, err
	}
	a.describeLeaders(ctx, name, resp, via)
	ti := &TopicInfo{Name: name, Configs: make(map[string]string, len(resp.Configs))}
	for _, p := range resp.Partitions {
		ti.Partitions = append(ti.Partitions, PartitionInfo(p))
	}
	for _, cfg := range resp.Configs {
		ti.Configs[cfg.Key] = cfg.Value
	}
	return ti, nil
}

// ListGroups lists consumer groups (only group if it is not empty) with
// their committed offsets and lag per partition, sorted by name. A named
// group that does not exist fails with proto.GroupNotFound. A named group
// is asked of its coordinator; the list of all groups is gathered from
// every broker (each coordinates some), leaving out those that cannot be
// reached (their groups have no coordinator meanwhile).
func (a *Admin) ListGroups(ctx context.Context, group string) ([]GroupInfo, error) {
	var groups []proto.GroupInfo
	var err error
	if group != "" {
		err = a.groupCall(ctx, group, func(c *Conn) error {
			resp, err := c.ListGroups(ctx, &proto.ListGroupsRequest{Group: group})
			if resp != nil {
				groups = resp.Groups
			}
			return err
		})
	} else {
		groups, err = a.listAllGroups(ctx)
	}
	if err != nil {
		return nil, err
	}
	out := make([]GroupInfo, 0, len(groups))
	for _, g := range groups {
		gi := GroupInfo{Name: g.Name, Type: subscriptionOf(g.Type), State: groupState(g.State), Members: int(g.Members)}
		for _, t := range g.Topics {
			for _, p := range t.Partitions {
				gi.Partitions = append(gi.Partitions, GroupPartition{Topic: t.Name, Partition: p.Partition,
					Committed: p.Committed, LogEnd: p.LogEnd, Lag: p.Lag})
			}
		}
		out = append(out, gi)
	}
	if group != "" && len(out) == 0 {
		return nil, fmt.Errorf("client: group %q: %w", group, proto.GroupNotFound)
	}
	slices.SortFunc(out, func(x, y GroupInfo) int { return cmpString(x.Name, y.Name) })
	return out, nil
}
