package client

// # Group membership
//
// Subscribe makes the Consumer a member of ConsumerOptions.Group for some
// topics; the broker assigns the partitions (the consumer never picks
// them). A goroutine heartbeats the group coordinator every heartbeat
// interval (at least three times per SessionTimeout) with the partitions
// the consumer holds and takes the assignment each answer carries (every
// RetryBackoff while partitions assigned to it are still pending). Poll,
// on its own goroutine, applies it:
//
//   - a partition to revoke is committed at its position (what earlier
//     Polls returned), OnRevoked is called, and only then is it released
//     (left out of the next heartbeat), so its next owner starts at that
//     commit;
//   - a partition assigned starts at the group's commit (or Start) and
//     OnAssigned is called.
//
// If the member is gone from the group (its session timed out, or the
// broker restarted and forgot it), everything it held is dropped without
// a commit (OnRevoked is called; the commits would be refused), and it
// joins again under a new member id. Commits carry the member id and
// epoch; the broker refuses those of a member that no longer owns the
// partition (proto.FencedMemberEpoch). Close leaves the group, so its
// partitions move at once instead of after the session timeout.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/ringmq/ringmq/proto"
)

// Subscription is a consumer group's subscription type (the Pulsar names).
type Subscription uint8

const (
	// SubscriptionFailover spreads the partitions over the members (Kafka
	// consumer-group semantics); a dead member's partitions move to the
	// others. The default.
	SubscriptionFailover Subscription = iota
	// SubscriptionExclusive lets one member at a time hold every
	// partition; another is refused with proto.SubscriptionHeld.
	SubscriptionExclusive
)

func (s Subscription) wire() uint8 {
	switch s {
	case SubscriptionExclusive:
		return proto.GroupTypeExclusive
	case SubscriptionShared:
		return proto.GroupTypeShared
	case SubscriptionKeyShared:
		return proto.GroupTypeKeyShared
	}
	return proto.GroupTypeFailover
}

// String returns the Pulsar name.
func (s Subscription) String() string {
	switch s {
	case SubscriptionExclusive:
		return "exclusive"
	case SubscriptionShared:
		return "shared"
	case SubscriptionKeyShared:
		return "key_shared"
	}
	return "failover"
}

// ParseSubscription parses "failover", "exclusive", "shared" or "key_shared".
func ParseSubscription(s string) (Subscription, error) {
	switch s {
	case "failover":
		return SubscriptionFailover, nil
	case "exclusive":
		return SubscriptionExclusive, nil
	case "shared":
		return SubscriptionShared, nil
	case "key_shared":
		return SubscriptionKeyShared, nil
	}
	return 0, fmt.Errorf("client: subscription %q: want failover, exclusive, shared or key_shared", s)
}

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition uint32
}

// membership is the consumer's group state; guarded by Consumer.mu.
type membership struct {
	topics   []string
	memberID string
	epoch    uint32
	interval time.Duration
	assigned map[partKey]bool // to read (from the last answer)
	revoke   map[partKey]bool // to commit and release
	// pending: partitions assigned to it are still held by their previous
	// owner; it heartbeats every RetryBackoff until they come.
	pending bool
	// lost: the member is gone; Poll drops everything, then the heartbeat
	// goroutine joins again.
	lost bool

	sig  chan struct{} // capacity 1: the assignment changed (Poll)
	kick chan struct{} // capacity 1: something was released (heartbeat now)
	done chan struct{} // closed when the heartbeat goroutine ends
}

func newMemberID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Subscribe joins ConsumerOptions.Group for topics. The first assignment
// is in the join's answer; Poll starts reading it. A refusal (an exclusive
// subscription held by another member, a group of another type, an
// unknown topic) is returned.
func (c *Consumer) Subscribe(ctx context.Context, topics ...string) error {
	if c.opts.Group == "" {
		return errors.New("client: subscribe without a group (ConsumerOptions.Group)")
	}
	if len(topics) == 0 {
		return errors.New("client: subscribe to no topic")
	}
	if c.group != nil {
		return errors.New("client: already subscribed")
	}
	m := &membership{topics: slices.Clone(topics), sig: make(chan struct{}, 1), kick: make(chan struct{}, 1),
		done: make(chan struct{})}
	resp, err := c.join(ctx, m)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.group = m
	c.applyLocked(resp)
	c.mu.Unlock()
	go c.heartbeatLoop(m)
	return nil
}

func (c *Consumer) join(ctx context.Context, m *membership) (*proto.AssignmentResponse, error) {
	id := newMemberID()
	req := &proto.JoinGroupRequest{Group: c.opts.Group, Type: c.opts.Subscription.wire(),
		MemberID: id, ClientID: c.opts.ClientID, SessionTimeoutMs: uint32(c.opts.SessionTimeout / time.Millisecond),
		Topics: m.topics}
	var resp *proto.AssignmentResponse
	err := c.cl.groupCall(ctx, c.opts.Group, func(conn *Conn) (err error) {
		resp, err = conn.JoinGroup(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	m.memberID, m.lost = resp.MemberID, false
	c.mu.Unlock()
	return resp, nil
}

// applyLocked takes a join or heartbeat answer.
func (c *Consumer) applyLocked(resp *proto.AssignmentResponse) {
	m := c.group
	m.epoch = resp.MemberEpoch
	m.interval = min(time.Duration(resp.HeartbeatIntervalMs)*time.Millisecond, c.opts.SessionTimeout/3)
	m.assigned, m.revoke = partSet(resp.Assigned), partSet(resp.Revoke)
	m.pending = len(resp.Pending) > 0
	signal(m.sig)
}

func partSet(gps []proto.GroupPartitions) map[partKey]bool {
	s := map[partKey]bool{}
	for _, g := range gps {
		for _, p := range g.Partitions {
			s[partKey{g.Topic, p}] = true
		}
	}
	return s
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// heldLocked is what the member holds: the partitions it reads, and
// those assigned that Poll has not picked up yet. A revoked partition
// Poll has dropped is not in it: that is its release.
func (c *Consumer) heldLocked() []proto.GroupPartitions {
	m := c.group
	var keys []partKey
	for _, ps := range c.parts {
		if m.assigned[ps.key] || m.revoke[ps.key] {
			keys = append(keys, ps.key)
		}
	}
	for k := range m.assigned {
		if c.stateLocked(k) == nil {
			keys = append(keys, k)
		}
	}
	return groupPartitions(keys)
}

func groupPartitions(keys []partKey) []proto.GroupPartitions {
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].topic != keys[j].topic {
			return keys[i].topic < keys[j].topic
		}
		return keys[i].partition < keys[j].partition
	})
	var out []proto.GroupPartitions
	for _, k := range keys {
		if n := len(out); n == 0 || out[n-1].Topic != k.topic {
			out = append(out, proto.GroupPartitions{Topic: k.topic})
		}
		out[len(out)-1].Partitions = append(out[len(out)-1].Partitions, k.partition)
	}
	return out
}

// heartbeatLoop heartbeats until the consumer closes, and joins again
// when the member is gone.
func (c *Consumer) heartbeatLoop(m *membership) {
	defer close(m.done)
	for {
		c.mu.Lock()
		wait, lost := m.interval, m.lost
		if lost || m.pending {
			wait = min(wait, c.opts.RetryBackoff)
		}
		c.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-m.kick:
		case <-t.C:
		}
		t.Stop()
		if lost {
			c.rejoin(m)
			continue
		}
		c.heartbeat(m)
	}
}

func (c *Consumer) heartbeat(m *membership) {
	c.mu.Lock()
	req := &proto.HeartbeatRequest{Group: c.opts.Group, MemberID: m.memberID, MemberEpoch: m.epoch, Owned: c.heldLocked()}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(c.ctx, max(c.opts.SessionTimeout/2, time.Second))
	defer cancel()
	var resp *proto.AssignmentResponse
	err := c.cl.groupCall(ctx, c.opts.Group, func(conn *Conn) (err error) {
		resp, err = conn.Heartbeat(ctx, req)
		return err
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err == nil:
		c.applyLocked(resp)
	case errors.Is(err, proto.UnknownMemberID) || errors.Is(err, proto.FencedMemberEpoch):
		// Gone from the group: drop everything (Poll does), then join again.
		m.lost = true
		m.assigned, m.revoke = nil, nil
		signal(m.sig)
	}
	// Other errors (a lost connection, a restarting broker): the next
	// heartbeat retries; the session timeout is the bound.
}

// rejoin joins again once Poll has dropped what the old member held.
func (c *Consumer) rejoin(m *membership) {
	c.mu.Lock()
	dropped := len(c.parts) == 0
	c.mu.Unlock()
	if !dropped {
		signal(m.sig)
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.RequestTimeout)
	defer cancel()
	resp, err := c.join(ctx, m)
	if err != nil {
		return // retried after RetryBackoff (an exclusive holder may yet time out)
	}
	c.mu.Lock()
	c.applyLocked(resp)
	c.mu.Unlock()
}

// reconcile applies the latest assignment on Poll's goroutine: revoked
// partitions are committed, reported and released; new ones are read from
// their commit.
func (c *Consumer) reconcile(ctx context.Context) error {
	m := c.group
	c.mu.Lock()
	var drop, add []partKey
	lost := m.lost
	for _, ps := range c.parts {
		if lost || !m.assigned[ps.key] {
			drop = append(drop, ps.key)
		}
	}
	if !lost {
		for k := range m.assigned {
			if c.stateLocked(k) == nil {
				add = append(add, k)
			}
		}
	}
	c.mu.Unlock()
	if len(drop) > 0 {
		if !lost {
			// Best effort: a refused commit (the partition moved already)
			// leaves the next owner at the previous commit.
			_ = c.commitParts(ctx, drop)
		}
		if c.opts.OnRevoked != nil {
			c.opts.OnRevoked(topicPartitions(drop))
		}
		c.mu.Lock()
		c.parts = slices.DeleteFunc(c.parts, func(ps *partState) bool { return slices.Contains(drop, ps.key) })
		c.mu.Unlock()
		signal(m.kick)
	}
	if len(add) == 0 {
		return nil
	}
	byTopic := map[string][]uint32{}
	for _, k := range add {
		byTopic[k.topic] = append(byTopic[k.topic], k.partition)
	}
	var added []partKey
	for topic, parts := range byTopic {
		if err := c.Assign(ctx, topic, parts...); err != nil {
			if errors.Is(err, proto.FencedMemberEpoch) || errors.Is(err, proto.UnknownMemberID) {
				continue // moved on already: the next answer says where
			}
			return err
		}
		for _, p := range parts {
			added = append(added, partKey{topic, p})
		}
	}
	if len(added) > 0 && c.opts.OnAssigned != nil {
		c.opts.OnAssigned(topicPartitions(added))
	}
	return nil
}

func topicPartitions(keys []partKey) []TopicPartition {
	out := make([]TopicPartition, len(keys))
	for i, k := range keys {
		out[i] = TopicPartition{k.topic, k.partition}
	}
	return out
}

// memberLocked returns the member id and epoch commits carry (none
// outside a group subscription).
func (c *Consumer) memberLocked() ([]byte, uint32) {
	if c.group == nil {
		return nil, 0
	}
	return []byte(c.group.memberID), c.group.epoch
}

// leave stops heartbeating and leaves the group (best effort).
func (c *Consumer) leave() {
	m := c.group
	if m == nil {
		return
	}
	<-m.done
	c.mu.Lock()
	id, lost := m.memberID, m.lost
	c.mu.Unlock()
	if lost {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(c.opts.RequestTimeout, 5*time.Second))
	defer cancel()
	_ = c.cl.groupCall(ctx, c.opts.Group, func(conn *Conn) error {
		return conn.LeaveGroup(ctx, &proto.LeaveGroupRequest{Group: c.opts.Group, MemberID: id})
	})
}
