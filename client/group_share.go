package client

// # Shared and key_shared subscriptions
//
// With ConsumerOptions.Subscription SubscriptionShared or
// SubscriptionKeyShared, Subscribe joins as usual but every member is
// assigned every partition, and Poll works differently: it asks the group
// coordinator to acquire records for this member (ShareAcquire: offset
// ranges locked for the group's ack_timeout), reads them with plain
// Fetches (whole batches, zero-copy on the broker; records outside the
// acquired ranges are skipped here) and returns them with their delivery
// count (Record.Deliveries). Each record must then be acknowledged:
// Ack (bulk), Nack (redeliver after a delay or the group's backoff) or
// Reject (to the dead-letter topic). A record not acknowledged within
// ack_timeout, or held by a member that closes or dies, is delivered
// again, to another member when there is one. Commit does not apply.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ringmq/ringmq/proto"
)

// Shared subscription types (after SubscriptionExclusive).
const (
	// SubscriptionShared hands each record to one member at a time, any
	// member; records need Ack.
	SubscriptionShared Subscription = iota + 2
	// SubscriptionKeyShared is shared with all records of a key going to
	// the same member while it lives (per-key order).
	SubscriptionKeyShared
)

// Shared reports whether records of the subscription need Ack (shared, key_shared).
func (s Subscription) Shared() bool { return s == SubscriptionShared || s == SubscriptionKeyShared }

// sharePollInterval is how often Poll asks again when nothing was
// available (the coordinator does not park an acquisition).
const sharePollInterval = 20 * time.Millisecond

// pollShared is Poll for a shared subscription.
func (c *Consumer) pollShared(ctx context.Context) ([]Record, error) {
	next := 0
	for {
		if c.ctx.Err() != nil {
			return nil, ErrConsumerClosed
		}
		c.mu.Lock()
		m := c.group
		id, epoch, lost := m.memberID, m.epoch, m.lost
		keys := make([]partKey, 0, len(m.assigned))
		for k := range m.assigned {
			keys = append(keys, k)
		}
		c.mu.Unlock()
		slices.SortFunc(keys, comparePartKeys)
		if !lost {
			for i := range keys {
				k := keys[(next+i)%len(keys)]
				recs, err := c.acquireAndFetch(ctx, k, id, epoch)
				if len(recs) > 0 {
					return recs, nil // acquired: hand them over whatever else failed
				}
				if err != nil {
					return nil, err
				}
			}
			next++
		}
		if err := sleepCtx(ctx, sharePollInterval); err != nil {
			return nil, err
		}
	}
}

func comparePartKeys(a, b partKey) int {
	if a.topic != b.topic {
		if a.topic < b.topic {
			return -1
		}
		return 1
	}
	return int(a.partition) - int(b.partition)
}

// acquireAndFetch acquires records of one partition and reads them.
// Refusals that a heartbeat or a rejoin fixes are not errors: they return
// no records.
func (c *Consumer) acquireAndFetch(ctx context.Context, k partKey, id string, epoch uint32) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Not under ctx: an acquisition whose answer Poll stopped waiting for
	// would leave its records locked for ack_timeout.
	rctx, cancel := context.WithTimeout(c.ctx, c.opts.RequestTimeout)
	defer cancel()
	conn, err := c.cl.coordinator(rctx, c.opts.Group)
	var resp *proto.ShareAcquireResponse
	if err == nil {
		resp, err = conn.ShareAcquire(rctx, &proto.ShareAcquireRequest{Group: c.opts.Group, MemberID: id, MemberEpoch: epoch,
			Topic: k.topic, Partition: k.partition, MaxRecords: uint32(c.opts.ShareMaxRecords)})
	}
	if coordinatorMoved(err) {
		c.cl.forgetCoordinator(c.opts.Group) // found again by the next request
	}
	if err != nil {
		return nil, c.shareRefusal(ctx, err)
	}
	if len(resp.Ranges) == 0 {
		return nil, nil
	}
	// The records are this member's now: read them even if the caller's
	// ctx ends meanwhile, and release at once what could not be read (not
	// after ack_timeout).
	fctx, fcancel := context.WithTimeout(c.ctx, c.opts.MaxWait+c.opts.RequestTimeout)
	defer fcancel()
	recs, err := c.fetchRanges(fctx, k, resp.Ranges)
	if err != nil {
		c.releaseUnread(k, resp.Ranges, recs)
	}
	return recs, err
}

// releaseUnread nacks (no delay) the acquired offsets not in recs.
func (c *Consumer) releaseUnread(k partKey, ranges []proto.ShareRange, recs []Record) {
	got := make(map[uint64]bool, len(recs))
	for _, r := range recs {
		got[r.Offset] = true
	}
	var rest []Record
	for _, rg := range ranges {
		for off := rg.Start; off < rg.End; off++ {
			if !got[off] {
				rest = append(rest, Record{Topic: k.topic, Partition: k.partition, Offset: off})
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.RequestTimeout)
	defer cancel()
	_ = c.Nack(ctx, 0, "", rest...) // best effort: they expire after ack_timeout otherwise
}

// shareRefusal turns an acquisition or ack refusal into what Poll does: a
// lost member joins again, a fenced one waits for its next heartbeat, a
// lost connection or a retriable code is retried; anything else is
// returned.
func (c *Consumer) shareRefusal(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, proto.UnknownMemberID):
		c.mu.Lock()
		c.group.lost = true
		c.mu.Unlock()
		signal(c.group.kick)
		return nil
	case errors.Is(err, proto.FencedMemberEpoch), errors.Is(err, proto.UnknownTopic), errors.Is(err, proto.UnknownPartition):
		signal(c.group.kick)
		return nil
	case retriable(err), errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return nil
	}
	return err
}

// fetchRanges reads the acquired ranges with plain Fetches and keeps the
// records inside them. Offsets the log no longer has (retention) are
// acknowledged at once: there is nothing to deliver.
func (c *Consumer) fetchRanges(ctx context.Context, k partKey, ranges []proto.ShareRange) ([]Record, error) {
	ps := &partState{key: k, pos: ranges[0].Start, maxBytes: uint32(c.opts.PartitionMaxBytes)}
	end := ranges[len(ranges)-1].End
	var recs []Record
	deadline := time.Now().Add(c.opts.RequestTimeout)
	for ps.pos < end && time.Now().Before(deadline) {
		fp, err := c.fetchOne(ctx, ps)
		if err != nil {
			if ctx.Err() != nil || c.ctx.Err() != nil {
				return keepAcquired(recs, ranges), err
			}
			if werr := c.backoff(ctx); werr != nil {
				return keepAcquired(recs, ranges), werr
			}
			continue
		}
		switch fp.Error {
		case proto.None:
		case proto.OffsetOutOfRange:
			if ps.pos < fp.LogStart {
				gone := Record{Topic: k.topic, Partition: k.partition}
				var acks []Record
				for off := ps.pos; off < min(fp.LogStart, end); off++ {
					gone.Offset = off
					acks = append(acks, gone)
				}
				_ = c.Ack(ctx, keepAcquired(acks, ranges)...) // best effort: they expire otherwise
				ps.pos = fp.LogStart
				continue
			}
			return keepAcquired(recs, ranges), fmt.Errorf("client: fetch %s/%d at %d: %w", k.topic, k.partition, ps.pos, fp.Error)
		default:
			if retriable(fp.Error) {
				if werr := c.backoff(ctx); werr != nil {
					return keepAcquired(recs, ranges), werr
				}
				continue
			}
			return keepAcquired(recs, ranges), fmt.Errorf("client: fetch %s/%d at %d: %w", k.topic, k.partition, ps.pos, fp.Error)
		}
		if recs, err = c.decodeBatches(recs, ps, fp.Records); err != nil {
			return keepAcquired(recs, ranges), err
		}
	}
	return keepAcquired(recs, ranges), nil
}

// fetchOne sends one Fetch for ps at its position.
func (c *Consumer) fetchOne(ctx context.Context, ps *partState) (*proto.FetchPartitionResponse, error) {
	rctx, cancel := context.WithTimeout(ctx, c.opts.MaxWait+c.opts.RequestTimeout)
	defer cancel()
	conn, err := c.cl.conn(rctx, c.cl.route(ps.key.topic, ps.key.partition))
	if err != nil {
		return nil, err
	}
	resp, err := conn.Fetch(rctx, &proto.FetchRequest{MaxWaitMs: uint32(c.opts.MaxWait / time.Millisecond), MinBytes: 1,
		MaxBytes: uint32(c.opts.MaxBytes), Topics: []proto.FetchTopic{{Name: []byte(ps.key.topic),
			Partitions: []proto.FetchPartition{{Partition: ps.key.partition, Offset: ps.pos, PartitionMaxBytes: ps.maxBytes}}}}})
	if err != nil {
		if staleMetadata(err) {
			_ = c.cl.refreshStale(ctx, ps.key.topic)
		}
		return nil, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return nil, fmt.Errorf("client: fetch %s/%d: answer for %d topics: %w", ps.key.topic, ps.key.partition, len(resp.Topics), proto.InvalidRequest)
	}
	return &resp.Topics[0].Partitions[0], nil
}

// keepAcquired drops the records outside the ranges (acquired by other
// members) and sets the delivery count of the others.
func keepAcquired(recs []Record, ranges []proto.ShareRange) []Record {
	out := recs[:0]
	i := 0
	for _, r := range recs {
		for i < len(ranges) && ranges[i].End <= r.Offset {
			i++
		}
		if i < len(ranges) && ranges[i].Start <= r.Offset {
			r.Deliveries = int(ranges[i].Deliveries)
			out = append(out, r)
		}
	}
	return out
}

// Ack acknowledges records of a shared subscription: each is done and
// never delivered again. Records of several partitions may be acked in
// one call (one request per partition). A record the member no longer
// holds (its lock expired and another member acquired it) is reported
// with proto.RecordNotHeld.
func (c *Consumer) Ack(ctx context.Context, recs ...Record) error {
	return c.shareAck(ctx, recs, proto.ShareAccept, 0, "")
}

// Nack releases records for redelivery after delay (a negative delay: the
// group's redelivery backoff). reason is kept as the last error, named in
// the dead-letter headers if the record ends there.
func (c *Consumer) Nack(ctx context.Context, delay time.Duration, reason string, recs ...Record) error {
	ms := proto.ShareBackoff
	if delay >= 0 {
		ms = uint32(min(delay/time.Millisecond, time.Duration(proto.ShareBackoff-1)))
	}
	return c.shareAck(ctx, recs, proto.ShareRelease, ms, reason)
}

// Reject sends records to the group's dead-letter topic at once (or marks
// them done when the broker's max_deliveries is 0).
func (c *Consumer) Reject(ctx context.Context, reason string, recs ...Record) error {
	return c.shareAck(ctx, recs, proto.ShareReject, 0, reason)
}

func (c *Consumer) shareAck(ctx context.Context, recs []Record, op uint8, delayMs uint32, reason string) error {
	if !c.opts.Subscription.Shared() || c.group == nil {
		return errors.New("client: ack outside a shared subscription (Subscribe with SubscriptionShared or SubscriptionKeyShared)")
	}
	c.mu.Lock()
	id, epoch := c.group.memberID, c.group.epoch
	c.mu.Unlock()
	byPart := map[partKey][]uint64{}
	for _, r := range recs {
		k := partKey{r.Topic, r.Partition}
		byPart[k] = append(byPart[k], r.Offset)
	}
	var errs []error
	for k, offs := range byPart {
		slices.Sort(offs)
		offs = slices.Compact(offs)
		req := &proto.ShareAckRequest{Group: c.opts.Group, MemberID: id, MemberEpoch: epoch, Topic: k.topic, Partition: k.partition}
		for i := 0; i < len(offs); {
			j := i + 1
			for j < len(offs) && offs[j] == offs[j-1]+1 {
				j++
			}
			req.Acks = append(req.Acks, proto.ShareAck{Op: op, Start: offs[i], End: offs[j-1] + 1, DelayMs: delayMs, Reason: reason})
			i = j
		}
		rctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
		conn, err := c.cl.coordinator(rctx, c.opts.Group)
		var resp *proto.ShareAckResponse
		if err == nil {
			resp, err = conn.ShareAck(rctx, req)
		}
		cancel()
		if coordinatorMoved(err) {
			c.cl.forgetCoordinator(c.opts.Group) // found again by the next request
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("client: ack %s/%d: %w", k.topic, k.partition, err))
			continue
		}
		for i, code := range resp.Results {
			if code != proto.None && i < len(req.Acks) {
				errs = append(errs, fmt.Errorf("client: ack %s/%d [%d, %d): %s: %w", k.topic, k.partition,
					req.Acks[i].Start, req.Acks[i].End, resp.Message, code))
			}
		}
	}
	return errors.Join(errs...)
}
