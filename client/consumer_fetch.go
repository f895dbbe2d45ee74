package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ringmq/ringmq/proto"
)

// fetchOp is one Fetch request over one connection (a leader's shard), in
// flight or done and not yet processed.
type fetchOp struct {
	key     connKey
	offsets map[partKey]uint64 // the offset asked for each partition
	resp    *proto.FetchResponse
	err     error
	waited  bool // err is retriable and the op already backed off and refreshed metadata
}

// Poll returns the next records of the assigned partitions; see the
// contract at the top of consumer.go. It waits until there are records or
// ctx ends (then it returns ctx.Err()). Lost connections and retriable
// errors are retried; other errors are returned and the positions stay.
func (c *Consumer) Poll(ctx context.Context) ([]Record, error) {
	if c.group != nil && c.opts.Subscription.Shared() {
		return c.pollShared(ctx) // group_share.go
	}
	for {
		if c.ctx.Err() != nil {
			return nil, ErrConsumerClosed
		}
		if c.group != nil {
			if err := c.reconcile(ctx); err != nil {
				return nil, err
			}
		}
		if !c.startFetches() && len(c.fetches) == 0 {
			if c.group == nil {
				return nil, fmt.Errorf("client: poll: %w", ErrNotAssigned)
			}
			if err := c.awaitAssignment(ctx); err != nil {
				return nil, err
			}
			continue
		}
		f, err := c.nextDone(ctx)
		if errors.Is(err, errReassigned) {
			continue
		}
		if err != nil {
			return nil, err
		}
		delete(c.fetches, f.key)
		recs, err := c.process(f)
		if len(recs) == 0 && err != nil {
			if !retriable(err) && !errors.Is(err, errFetchFenced) && !errors.Is(err, context.DeadlineExceeded) && !c.transient(ctx, err) {
				return nil, err
			}
			if f.waited {
				continue // backed off in the background, the other fetches going on
			}
			if staleMetadata(err) {
				_ = c.cl.refreshStale(ctx, f.topics()...) // best effort: the next fetch tells
			}
			if werr := c.backoff(ctx); werr != nil {
				return nil, werr
			}
			continue
		}
		// An error met after some records recurs on the next fetch: the
		// positions stop before it.
		c.startFetches() // prefetch while the caller works on recs
		if len(recs) > 0 {
			return recs, nil
		}
	}
}

// errReassigned: the group assignment changed while Poll waited.
var errReassigned = errors.New("client: assignment changed")

// awaitAssignment waits, with nothing to read, until the group assigns
// something (or ctx or the consumer ends).
func (c *Consumer) awaitAssignment(ctx context.Context) error {
	select {
	case <-c.group.sig:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ctx.Done():
		return ErrConsumerClosed
	}
}

// nextDone waits for a finished fetch (or, in a group, a new assignment:
// errReassigned).
func (c *Consumer) nextDone(ctx context.Context) (*fetchOp, error) {
	var reassigned chan struct{}
	if c.group != nil {
		reassigned = c.group.sig
	}
	for {
		c.doneMu.Lock()
		if len(c.done) > 0 {
			f := c.done[0]
			c.done[0] = nil
			c.done = c.done[1:]
			c.doneMu.Unlock()
			return f, nil
		}
		c.doneMu.Unlock()
		select {
		case <-c.doneSig:
		case <-reassigned:
			return nil, errReassigned
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.ctx.Done():
			return nil, ErrConsumerClosed
		}
	}
}

// transient reports whether err refuses a partition that fresh metadata
// still lists (a restarting server that has not opened it yet), so the
// fetch is worth retrying.
func (c *Consumer) transient(ctx context.Context, err error) bool {
	var pe *partitionError
	if !errors.As(err, &pe) || !unknownPartition(err) {
		return false
	}
	if _, err := c.cl.refresh(ctx, pe.key.topic); err != nil {
		return false
	}
	t := c.cl.cached(pe.key.topic)
	return t != nil && pe.key.partition < t.partitions()
}

// topics lists the topics f fetches from.
func (f *fetchOp) topics() []string {
	var out []string
	for k := range f.offsets {
		if !contains(out, k.topic) {
			out = append(out, k.topic)
		}
	}
	return out
}

// partitionError is a fetch error about one partition.
type partitionError struct {
	key partKey
	err error
}

func (e *partitionError) Error() string { return e.err.Error() }
func (e *partitionError) Unwrap() error { return e.err }

// backoff waits RetryBackoff, or until ctx or the consumer ends.
func (c *Consumer) backoff(ctx context.Context) error {
	t := time.NewTimer(c.opts.RetryBackoff)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ctx.Done():
		return ErrConsumerClosed
	}
}

// startFetches sends a Fetch to every leader shard that owns assigned
// partitions and has none in flight, each from the partitions' positions,
// over that shard's own connection (so the server never forwards them).
// Partitions without a leader get an op that waits and refreshes
// metadata. It returns false if nothing is assigned.
func (c *Consumer) startFetches() bool {
	reqs := make(map[connKey]*proto.FetchRequest)
	ops := make(map[connKey]*fetchOp)
	c.mu.Lock()
	for _, ps := range c.parts {
		k := c.cl.route(ps.key.topic, ps.key.partition)
		if c.fetches[k] != nil {
			continue
		}
		req, f := reqs[k], ops[k]
		if req == nil {
			req = &proto.FetchRequest{MaxWaitMs: uint32(c.opts.MaxWait / time.Millisecond),
				MinBytes: uint32(c.opts.MinBytes), MaxBytes: uint32(c.opts.MaxBytes)}
			if g := c.group; g != nil && g.memberID != "" {
				req.Group, req.MemberID, req.MemberEpoch = []byte(c.opts.Group), []byte(g.memberID), g.epoch
			}
			f = &fetchOp{key: k, offsets: make(map[partKey]uint64)}
			reqs[k], ops[k] = req, f
		}
		ti := len(req.Topics) - 1
		if ti < 0 || string(req.Topics[ti].Name) != ps.key.topic {
			req.Topics = append(req.Topics, proto.FetchTopic{Name: []byte(ps.key.topic)})
			ti++
		}
		req.Topics[ti].Partitions = append(req.Topics[ti].Partitions,
			proto.FetchPartition{Partition: ps.key.partition, Offset: ps.pos, PartitionMaxBytes: ps.maxBytes})
		f.offsets[ps.key] = ps.pos
	}
	assigned := len(c.parts) > 0
	c.mu.Unlock()
	for k, f := range ops {
		c.fetches[k] = f
		c.wg.Add(1)
		go c.runFetch(f, reqs[k])
	}
	return assigned
}

// runFetch sends one Fetch and queues its outcome for Poll. A fetch that
// could not be sent or answered (no leader, a lost connection) waits
// RetryBackoff and refreshes its topics' metadata here, so that Poll goes
// on with the other fetches meanwhile.
func (c *Consumer) runFetch(f *fetchOp, req *proto.FetchRequest) {
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.MaxWait+c.opts.RequestTimeout)
	defer cancel()
	conn, err := c.cl.conn(ctx, f.key)
	if err == nil {
		f.resp, err = conn.Fetch(ctx, req)
	}
	f.err = err
	if err != nil && staleMetadata(err) && c.ctx.Err() == nil {
		if sleepCtx(c.ctx, c.opts.RetryBackoff) == nil {
			_ = c.cl.refreshStale(ctx, f.topics()...) // best effort: the next fetch tells
			f.waited = true
		}
	}
	c.doneMu.Lock()
	c.done = append(c.done, f)
	c.doneMu.Unlock()
	select {
	case c.doneSig <- struct{}{}:
	default:
	}
}

// process turns a finished fetch into records and moves the positions. It
// returns a retriable error when the fetch as a whole must be retried.
func (c *Consumer) process(f *fetchOp) ([]Record, error) {
	if f.err != nil {
		if c.ctx.Err() != nil {
			return nil, ErrConsumerClosed
		}
		return nil, f.err
	}
	var recs []Record
	var retry error
	for ti := range f.resp.Topics {
		t := &f.resp.Topics[ti]
		for pi := range t.Partitions {
			fp := &t.Partitions[pi]
			k := partKey{string(t.Name), fp.Partition}
			var err error
			recs, err = c.processPartition(recs, k, f.offsets[k], fp)
			switch {
			case err == nil:
			case retriable(err), errors.Is(err, errFetchFenced):
				retry = err
			default:
				return recs, err
			}
		}
	}
	if len(recs) == 0 && retry != nil {
		return nil, retry
	}
	return recs, nil
}

// processPartition appends the records of one partition's fetch result to
// recs, unless the partition moved (Seek, Unassign) since the fetch left.
func (c *Consumer) processPartition(recs []Record, k partKey, asked uint64, fp *proto.FetchPartitionResponse) ([]Record, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps := c.stateLocked(k)
	if ps == nil || ps.pos != asked {
		return recs, nil // stale
	}
	ps.hw = fp.HighWatermark
	switch fp.Error {
	case proto.None:
	case proto.OffsetOutOfRange:
		switch {
		case ps.pos < fp.LogStart:
			ps.pos = fp.LogStart
		case ps.pos > fp.HighWatermark:
			ps.pos = fp.HighWatermark
		default: // the server's range contradicts its error: do not spin
			return recs, fmt.Errorf("client: fetch %s/%d at %d (log %d..%d): %w",
				k.topic, k.partition, asked, fp.LogStart, fp.HighWatermark, fp.Error)
		}
		return recs, nil
	case proto.FencedMemberEpoch, proto.UnknownMemberID:
		if c.group != nil {
			// The coordinator moved the partition (or forgot the member)
			// before this member heard: heartbeat now and read what the
			// answer assigns; Poll backs off meanwhile.
			signal(c.group.kick)
			return recs, &partitionError{k, fmt.Errorf("client: fetch %s/%d at %d: %w: %w", k.topic, k.partition, asked, errFetchFenced, fp.Error)}
		}
		return recs, &partitionError{k, fmt.Errorf("client: fetch %s/%d at %d: %w", k.topic, k.partition, asked, fp.Error)}
	default:
		return recs, &partitionError{k, fmt.Errorf("client: fetch %s/%d at %d: %w", k.topic, k.partition, asked, fp.Error)}
	}
	return c.decodeBatches(recs, ps, fp.Records)
}

// errFetchFenced marks a group member's fetch refused because the member
// no longer owns the partition in its epoch: not an error for the
// application, the next heartbeat's answer revokes the partition.
var errFetchFenced = errors.New("client: partition fenced for this member")

// decodeBatches appends the records at or after ps.pos of the whole batches
// in b, validating each, and moves ps.pos past them. A batch cut short at
// the end of b (the fetch's byte limit) is left for the next fetch, which
// asks for more bytes if not even one batch fitted. c.mu is held.
func (c *Consumer) decodeBatches(recs []Record, ps *partState, b []byte) ([]Record, error) {
	whole := 0
	for len(b) > 0 {
		h, rest, err := proto.ValidateBatch(b)
		if errors.Is(err, proto.ErrShortBatch) {
			if whole == 0 && h.Size() > int(ps.maxBytes) && h.Size() <= proto.MaxBatchSize+64 {
				ps.maxBytes = uint32(h.Size()) // only when the header says how much
			}
			break
		}
		if err != nil {
			return recs, fmt.Errorf("client: fetch %s/%d: batch at offset %d: %w", ps.key.topic, ps.key.partition, h.BaseOffset, err)
		}
		whole++
		batch := b[:h.Size()]
		b = rest
		if h.NextOffset() <= ps.pos {
			continue
		}
		records, err := proto.DecompressRecords(nil, batch) // never reused: records may alias it
		if err == nil {
			recs, err = appendRecords(recs, ps, h, records)
		}
		if err != nil {
			return recs, fmt.Errorf("client: fetch %s/%d: batch at offset %d: %w", ps.key.topic, ps.key.partition, h.BaseOffset, err)
		}
		ps.pos = h.NextOffset()
	}
	return recs, nil
}

// appendRecords appends a batch's records at or after ps.pos.
func appendRecords(recs []Record, ps *partState, h proto.BatchHeader, records []byte) ([]Record, error) {
	it := proto.NewRecordIterRecords(h, records)
	start := len(recs)
	for it.Next() {
		r := it.Record()
		if r.Offset < ps.pos {
			continue
		}
		rec := Record{
			Topic: ps.key.topic, Partition: ps.key.partition, Offset: r.Offset,
			Timestamp: time.UnixMilli(r.Timestamp), Key: r.Key, Value: r.Value,
		}
		if r.HeaderCount > 0 {
			rec.Headers = r.Headers(nil)
		}
		recs = append(recs, rec)
	}
	if err := it.Err(); err != nil {
		return recs[:start], err
	}
	return recs, nil
}
