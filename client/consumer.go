package client

// # Consumer contract
//
// A Consumer reads the partitions assigned to it (Assign: some or all
// partitions of a topic) from a position per partition: the next offset
// Poll will return. A new partition starts at the group's committed offset
// when ConsumerOptions.Group is set and the group has one, otherwise at
// ConsumerOptions.Start (earliest, latest, an offset, or the first record
// at or after a time, found with ListOffsets).
//
//   - Poll returns the next records of the assigned partitions, in offset
//     order per partition, waiting (long poll: MaxWait, MinBytes) until
//     there are some or ctx ends. Fetches go to each partition's leader
//     (from Metadata): each leader shard owning assigned partitions gets
//     its own connection and one Fetch in flight at all times, also while
//     the application works on what Poll returned (prefetch); a Seek
//     makes the prefetched data of the partition it moves stale, and it is
//     dropped.
//   - Every batch's CRC is checked and compressed batches are decompressed;
//     records below the position (a batch may start before it) are
//     skipped. A corrupt batch fails Poll with proto.ErrCorrupt and the
//     position stays before it.
//   - Record.Key, Value and header values alias the fetched frame, or the
//     decompressed copy of their batch. Neither is ever reused, so records
//     stay valid after the next Poll (without a copy); keeping any record
//     keeps its frame in memory.
//   - A position out of the log's range (retention deleted it, or the log
//     is shorter) moves to the log start or end. Retriable errors and lost
//     connections are retried with backoff inside Poll, after a metadata
//     refresh when the leader may have moved (NOT_LEADER,
//     FENCED_LEADER_EPOCH, a lost connection); a partition without a
//     leader is fetched again once one is elected, while the others go
//     on.
//   - Commit stores the positions (Kafka semantics: the committed offset
//     is the next offset to read) for the group; CommitAsync does it in the
//     background. Close does not commit.
//   - Subscribe (group.go) instead of Assign makes the consumer a group
//     member: the broker assigns the partitions and Poll follows it.
//
// Poll, Assign, Unassign, Seek and Close must not be called concurrently
// with each other; Commit, CommitAsync, Position and Assignment may be
// called from any goroutine.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ringmq/ringmq/proto"
)

// ConsumerOptions configure a Consumer. Zero fields take the defaults
// named beside them.
type ConsumerOptions struct {
	ClientID string
	Group    string // commit and resume under this group; "" for none
	Start    Start  // where a partition without committed offset starts: StartEarliest

	// Group membership (Subscribe; see group.go).
	Subscription   Subscription  // SubscriptionFailover
	SessionTimeout time.Duration // 10 s: silent this long, the member is removed
	// OnAssigned and OnRevoked are called on Poll's goroutine with the
	// partitions Poll starts reading, and those it stops reading (after
	// committing them, unless the member was lost).
	OnAssigned func([]TopicPartition)
	OnRevoked  func([]TopicPartition)
	// ShareMaxRecords (shared subscriptions, group_share.go): records
	// one Poll acquires at most per partition (500). Each acquisition and
	// each ack waits for the coordinator's fsync, so larger is faster;
	// the group's max_unacked bounds what all members hold together.
	ShareMaxRecords int

	MaxWait           time.Duration // 500 ms: how long a fetch waits for MinBytes
	MinBytes          int           // 1
	MaxBytes          int           // 16 MiB per fetch
	PartitionMaxBytes int           // 1 MiB per partition per fetch (grown to fit a larger batch)
	RequestTimeout    time.Duration // 30 s, on top of MaxWait for fetches
	RetryBackoff      time.Duration // 100 ms after a failed fetch
	DialTimeout       time.Duration // DefaultDialTimeout
	// OnDial is told the outcome of every connection attempt (see Options).
	OnDial func(addr string, err error)
	// SASL authenticates every connection (see Options).
	SASL SASL
	// TLS, when set, makes every connection TLS (see Options.TLS).
	TLS *tls.Config
}

func (o ConsumerOptions) withDefaults() ConsumerOptions {
	if o.MaxWait <= 0 {
		o.MaxWait = 500 * time.Millisecond
	}
	if o.MinBytes <= 0 {
		o.MinBytes = 1
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 16 << 20
	}
	if o.PartitionMaxBytes <= 0 {
		o.PartitionMaxBytes = 1 << 20
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 30 * time.Second
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = 100 * time.Millisecond
	}
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = 10 * time.Second
	}
	if o.ShareMaxRecords <= 0 {
		o.ShareMaxRecords = 500
	}
	return o
}

// Start is where a partition without a committed offset starts.
type Start struct {
	kind   startKind
	offset uint64
	millis int64
}

type startKind uint8

const (
	startEarliest startKind = iota
	startLatest
	startOffset
	startTime
)

// StartEarliest starts at the log start (the zero Start).
func StartEarliest() Start { return Start{} }

// StartLatest starts at the log end: only records produced from now on.
func StartLatest() Start { return Start{kind: startLatest} }

// StartAt starts at offset.
func StartAt(offset uint64) Start { return Start{kind: startOffset, offset: offset} }

// StartAtTime starts at the first record whose timestamp is at or after t.
func StartAtTime(t time.Time) Start { return Start{kind: startTime, millis: t.UnixMilli()} }

// Consumer reads records; see the contract at the top of this file.
type Consumer struct {
	opts   ConsumerOptions
	cl     *cluster
	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // fetch goroutines
	async  sync.WaitGroup // CommitAsync goroutines

	mu    sync.Mutex
	parts []*partState // assigned, in assignment order
	group *membership  // set by Subscribe; guarded by mu

	fetches map[connKey]*fetchOp // by connection: in flight or not yet processed; Poll's goroutine only

	doneMu  sync.Mutex
	done    []*fetchOp    // finished fetches, in order
	doneSig chan struct{} // capacity 1: done grew
}

// partState is one assigned partition.
type partState struct {
	key       partKey
	pos       uint64 // next offset to return
	maxBytes  uint32 // partition_max_bytes of the next fetch
	committed uint64 // last committed position, NoOffset if none
	hw        uint64 // high watermark seen in the last fetch
}

// NewConsumer returns a consumer of the cluster at addr ("host:port", or a
// comma-separated list of nodes to bootstrap from) with nothing assigned.
func NewConsumer(addr string, opts ConsumerOptions) (*Consumer, error) {
	opts = opts.withDefaults()
	if opts.Group != "" && !proto.ValidName([]byte(opts.Group)) {
		return nil, fmt.Errorf("client: group name %.40q: use 1-%d characters of [a-zA-Z0-9._-]: %w",
			opts.Group, proto.MaxNameLen, proto.InvalidGroupName)
	}
	cl, err := newCluster(addr, Options{ClientID: opts.ClientID, OnDial: opts.OnDial, SASL: opts.SASL, TLS: opts.TLS}, opts.DialTimeout)
	if err != nil {
		return nil, err
	}
	c := &Consumer{opts: opts, cl: cl, fetches: make(map[connKey]*fetchOp), doneSig: make(chan struct{}, 1)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Assign adds partitions of topic (all of them if none are named) to the
// assignment, each starting at the group's committed offset or Start. A
// partition already assigned is left where it is.
func (c *Consumer) Assign(ctx context.Context, topic string, partitions ...uint32) error {
	t, err := c.cl.topic(ctx, topic)
	if err != nil {
		return err
	}
	if len(partitions) == 0 {
		for p := range t.partitions() {
			partitions = append(partitions, p)
		}
	}
	var fresh []uint32
	for _, p := range partitions {
		if p >= t.partitions() {
			return fmt.Errorf("client: assign %s/%d (%d partitions): %w", topic, p, t.partitions(), proto.UnknownPartition)
		}
		if c.state(partKey{topic, p}) == nil && !slices.Contains(fresh, p) {
			fresh = append(fresh, p)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	pos, committed, err := c.startPositions(ctx, topic, fresh)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range fresh {
		c.parts = append(c.parts, &partState{key: partKey{topic, p}, pos: pos[i],
			maxBytes: uint32(c.opts.PartitionMaxBytes), committed: committed[i]})
	}
	return nil
}

// Unassign removes partitions of topic (all of them if none are named).
func (c *Consumer) Unassign(topic string, partitions ...uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.parts = slices.DeleteFunc(c.parts, func(ps *partState) bool {
		return ps.key.topic == topic && (len(partitions) == 0 || slices.Contains(partitions, ps.key.partition))
	})
}

// PartitionOffset is a partition and an offset in it.
type PartitionOffset struct {
	Topic     string
	Partition uint32
	Offset    uint64
}

// Assignment lists the assigned partitions and their positions, in the
// order they were assigned.
func (c *Consumer) Assignment() []PartitionOffset {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]PartitionOffset, len(c.parts))
	for i, ps := range c.parts {
		out[i] = PartitionOffset{Topic: ps.key.topic, Partition: ps.key.partition, Offset: ps.pos}
	}
	return out
}

// Seek moves an assigned partition's position to offset.
func (c *Consumer) Seek(topic string, partition uint32, offset uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps := c.stateLocked(partKey{topic, partition})
	if ps == nil {
		return fmt.Errorf("client: seek %s/%d: %w", topic, partition, ErrNotAssigned)
	}
	ps.pos = offset
	return nil
}

// Position is the next offset Poll returns for an assigned partition.
func (c *Consumer) Position(topic string, partition uint32) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps := c.stateLocked(partKey{topic, partition})
	if ps == nil {
		return 0, fmt.Errorf("client: position of %s/%d: %w", topic, partition, ErrNotAssigned)
	}
	return ps.pos, nil
}

// Lag is how many records of an assigned partition lie between its
// position and the high watermark the last fetch reported.
func (c *Consumer) Lag(topic string, partition uint32) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps := c.stateLocked(partKey{topic, partition})
	if ps == nil {
		return 0, fmt.Errorf("client: lag of %s/%d: %w", topic, partition, ErrNotAssigned)
	}
	return ps.hw - min(ps.pos, ps.hw), nil
}

func (c *Consumer) state(k partKey) *partState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stateLocked(k)
}

func (c *Consumer) stateLocked(k partKey) *partState {
	for _, ps := range c.parts {
		if ps.key == k {
			return ps
		}
	}
	return nil
}

// startPositions finds where each partition starts: the group's committed
// offset, or Start.
func (c *Consumer) startPositions(ctx context.Context, topic string, parts []uint32) (pos, committed []uint64, err error) {
	committed = make([]uint64, len(parts))
	for i := range committed {
		committed[i] = NoOffset
	}
	if c.opts.Group != "" {
		if committed, err = c.committedOffsets(ctx, topic, parts); err != nil {
			return nil, nil, err
		}
	}
	pos = slices.Clone(committed)
	var need []uint32
	for i, p := range parts {
		switch {
		case pos[i] != NoOffset:
		case c.opts.Start.kind == startOffset:
			pos[i] = c.opts.Start.offset
		default:
			need = append(need, p)
		}
	}
	if len(need) == 0 {
		return pos, committed, nil
	}
	ts := proto.TimestampEarliest
	switch c.opts.Start.kind {
	case startLatest:
		ts = proto.TimestampLatest
	case startTime:
		ts = c.opts.Start.millis
	}
	found, err := c.listOffsets(ctx, topic, need, ts)
	if err != nil {
		return nil, nil, err
	}
	for i, p := range parts {
		if pos[i] == NoOffset {
			pos[i] = found[p]
		}
	}
	return pos, committed, nil
}

// listOffsets asks each partition's leader for the offset at ts (or
// TimestampEarliest/Latest), waiting for leaders that moved or are being
// elected until ctx ends.
func (c *Consumer) listOffsets(ctx context.Context, topic string, parts []uint32, ts int64) (map[uint32]uint64, error) {
	return c.cl.listOffsets(ctx, topic, parts, ts)
}

// committedOffsets reads the group's committed offsets (NoOffset: none).
func (c *Consumer) committedOffsets(ctx context.Context, topic string, parts []uint32) ([]uint64, error) {
	c.mu.Lock()
	id, epoch := c.memberLocked()
	c.mu.Unlock()
	req := &proto.OffsetFetchRequest{Group: []byte(c.opts.Group), MemberID: id, MemberEpoch: epoch,
		Topics: []proto.OffsetFetchTopic{{Name: []byte(topic), Partitions: parts}}}
	var resp *proto.OffsetFetchResponse
	err := c.cl.groupCall(ctx, c.opts.Group, func(conn *Conn) (err error) {
		resp, err = conn.OffsetFetch(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]uint64, len(parts))
	for i := range out {
		out[i] = NoOffset
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			i := slices.Index(parts, p.Partition)
			switch {
			case string(t.Name) != topic || i < 0:
			case p.Error == proto.GroupNotFound:
			case p.Error != proto.None:
				return nil, fmt.Errorf("client: committed offset of %s/%d: %w", topic, p.Partition, p.Error)
			default:
				out[i] = p.Offset
			}
		}
	}
	return out, nil
}

// Commit stores the position of every assigned partition for the group.
// Partitions whose position has not moved since their last commit are
// skipped.
func (c *Consumer) Commit(ctx context.Context) error {
	return c.commitParts(ctx, nil)
}

// commitParts commits the positions of only (all partitions if nil).
func (c *Consumer) commitParts(ctx context.Context, only []partKey) error {
	if c.opts.Group == "" {
		return errors.New("client: commit without a group (ConsumerOptions.Group)")
	}
	req, sent := c.commitRequest(only)
	if len(sent) == 0 {
		return nil
	}
	var resp *proto.OffsetCommitResponse
	err := c.cl.groupCall(ctx, c.opts.Group, func(conn *Conn) (err error) {
		resp, err = conn.OffsetCommit(ctx, req)
		return err
	})
	if err != nil {
		return err
	}
	failed := make(map[partKey]error)
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.Error != proto.None {
				failed[partKey{string(t.Name), p.Partition}] = fmt.Errorf("client: commit %s/%d: %w", t.Name, p.Partition, p.Error)
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for k, off := range sent {
		if err := failed[k]; err != nil {
			errs = append(errs, err)
		} else if ps := c.stateLocked(k); ps != nil {
			ps.committed = off
		}
	}
	return errors.Join(errs...)
}

// commitRequest builds an OffsetCommit of the positions that moved.
func (c *Consumer) commitRequest(only []partKey) (*proto.OffsetCommitRequest, map[partKey]uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, epoch := c.memberLocked()
	req := &proto.OffsetCommitRequest{Group: []byte(c.opts.Group), MemberID: id, MemberEpoch: epoch}
	sent := make(map[partKey]uint64)
	for _, ps := range c.parts {
		if ps.pos == ps.committed || only != nil && !slices.Contains(only, ps.key) {
			continue
		}
		ti := slices.IndexFunc(req.Topics, func(t proto.OffsetCommitTopic) bool { return string(t.Name) == ps.key.topic })
		if ti < 0 {
			req.Topics = append(req.Topics, proto.OffsetCommitTopic{Name: []byte(ps.key.topic)})
			ti = len(req.Topics) - 1
		}
		req.Topics[ti].Partitions = append(req.Topics[ti].Partitions,
			proto.OffsetCommitPartition{Partition: ps.key.partition, Offset: ps.pos})
		sent[ps.key] = ps.pos
	}
	return req, sent
}

// CommitAsync commits in the background and calls fn (which may be nil)
// with the outcome. Close waits for it.
func (c *Consumer) CommitAsync(fn func(error)) {
	c.async.Add(1)
	go func() {
		defer c.async.Done()
		ctx, cancel := context.WithTimeout(c.ctx, c.opts.RequestTimeout)
		defer cancel()
		err := c.Commit(ctx)
		if fn != nil {
			fn(err)
		}
	}()
}

// Close waits for async commits, stops the prefetch, leaves the group (if
// subscribed) and closes the connections. It does not commit.
func (c *Consumer) Close() error {
	c.async.Wait()
	c.cancel()
	c.wg.Wait()
	c.leave()
	c.cl.close()
	return nil
}
