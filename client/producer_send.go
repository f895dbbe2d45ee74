package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ringmq/ringmq/proto"
)

// The producer's machinery. Records wait in per-partition queues (an open
// batch, then closed batches in order); the sender goroutine moves closed
// batches into requests, one goroutine per request in flight runs it and
// resolves or requeues its batches, and the delivery goroutine calls the
// callbacks. Everything but the callbacks and the network runs under p.mu.

type partKey struct {
	topic     string
	partition uint32
}

// partQueue is one partition's batches. Without idempotence at most one
// request carries a partition at a time, which keeps its batches in order
// across retries and connections; with it, sequence numbers do
// (producer_idem.go).
type partQueue struct {
	key      partKey
	open     *batch   // accepting records; nil if none
	ready    []*batch // closed, waiting to be sent, by seq
	seq      uint64   // seq of the next batch
	inflight int      // requests in flight carrying this partition
	idem     idemQueue
}

// batch is one record batch and the callbacks of its records. While a
// request carries it, that request's goroutine owns it.
type batch struct {
	key       partKey
	seq       uint64
	bb        proto.BatchBuilder
	fns       []func(Result)
	bytes     int       // the records' recordSize sum
	deadline  time.Time // DeliveryTimeout after the batch opened
	opened    time.Time
	notBefore time.Time // retry backoff
	attempts  int
	payload   []byte // the finished, maybe compressed batch; set when first sent
	idem      idemBatch
}

// fits reports whether a record of size bytes may join b.
func (b *batch) fits(size, batchBytes int) bool {
	return len(b.fns) == 0 || b.bytes+size <= batchBytes
}

// delivery is a resolved batch: its records are stored from base on, or
// failed with err.
type delivery struct {
	b    *batch
	base uint64
	err  error
}

// produceReq is one Produce request, all for one shard: per partition,
// one or more batches sent back to back.
type produceReq struct {
	shard int
	turn  uint64 // requests of a shard are queued on its connection in turn order
	parts []partSend
}

type partSend struct {
	q       *partQueue
	batches []*batch
}

func (p *Producer) queue(topic string, partition uint32) *partQueue {
	k := partKey{topic, partition}
	q := p.queues[k]
	if q == nil {
		q = &partQueue{key: k}
		p.queues[k] = q
	}
	return q
}

// append adds a record to q's open batch. p.mu is held.
func (p *Producer) append(q *partQueue, rec *Record, size int, fn func(Result)) {
	if q.open != nil && !q.open.fits(size, p.opts.BatchBytes) {
		p.closeOpen(q)
	}
	fresh := q.open == nil
	if fresh {
		now := time.Now()
		q.open = &batch{key: q.key, seq: q.seq, opened: now, deadline: now.Add(p.opts.DeliveryTimeout)}
		q.open.bb.Reset(make([]byte, 0, proto.BatchHeaderSize+max(p.opts.BatchBytes, size)+recordOverhead))
		q.seq++
	}
	b := q.open
	b.bb.Append(rec.Timestamp.UnixMilli(), rec.Key, rec.Value, rec.Headers)
	b.fns = append(b.fns, fn)
	b.bytes += size
	p.pending++
	p.buffered += size
	if b.bytes >= p.opts.BatchBytes {
		p.closeOpen(q)
		p.kick()
	} else if fresh {
		p.kick()
	}
}

// closeOpen closes q's open batch and, if q's partition is its topic's
// sticky partition, moves the sticky partition on. p.mu is held.
func (p *Producer) closeOpen(q *partQueue) {
	q.ready = append(q.ready, q.open)
	q.open = nil
	if cur, ok := p.sticky[q.key.topic]; ok && cur == q.key.partition {
		if t := p.cl.cached(q.key.topic); t != nil {
			p.sticky[q.key.topic] = (cur + 1) % t.partitions()
		}
	}
}

// requeue puts a batch back among q's ready batches, in seq order.
func (p *Producer) requeue(b *batch) {
	q := p.queue(b.key.topic, b.key.partition)
	i := len(q.ready)
	for i > 0 && q.ready[i-1].seq > b.seq {
		i--
	}
	q.ready = append(q.ready, nil)
	copy(q.ready[i+1:], q.ready[i:])
	q.ready[i] = b
}

// senderLoop turns ready batches into requests whenever something changes
// or a linger or backoff time passes.
func (p *Producer) senderLoop() {
	defer p.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		p.mu.Lock()
		reqs, next := p.collect(time.Now())
		p.mu.Unlock()
		for _, r := range reqs {
			p.wg.Add(1)
			go p.runRequest(r)
		}
		timer.Stop()
		if !next.IsZero() {
			timer.Reset(time.Until(next))
		}
		select {
		case <-p.wake:
		case <-timer.C:
		case <-p.quit:
			return
		}
	}
}

// collect closes the batches that are due and packs sendable batches into
// requests, within each shard's free request slots. It returns the
// requests and the next time something becomes due (zero: none). p.mu is
// held.
func (p *Producer) collect(now time.Time) ([]*produceReq, time.Time) {
	if p.aborted != nil {
		return nil, time.Time{}
	}
	var next time.Time
	due := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	byShard := make(map[int][]*partQueue)
	for _, q := range p.queues {
		if q.open != nil {
			if at := q.open.opened.Add(p.opts.Linger); p.flushing > 0 || p.closing || !now.Before(at) {
				p.closeOpen(q)
			} else {
				due(at)
			}
		}
		if len(q.ready) == 0 || !p.sendable(q) {
			continue
		}
		if at := q.ready[0].notBefore; now.Before(at) {
			due(at)
			continue
		}
		shard := p.cl.shardOf(q.key.topic, q.key.partition)
		byShard[shard] = append(byShard[shard], q)
	}
	var reqs []*produceReq
	for shard, qs := range byShard {
		for len(qs) > 0 && p.inflight[shard] < p.opts.MaxInFlight {
			var r *produceReq
			r, qs = p.pack(shard, qs, now)
			if len(r.parts) == 0 {
				break
			}
			t := p.turns[shard]
			if t == nil {
				t = &shardTurns{}
				p.turns[shard] = t
			}
			r.turn = t.issued
			t.issued++
			p.inflight[shard]++
			reqs = append(reqs, r)
		}
	}
	return reqs, next
}

// pack fills a request with the sendable batches of the queues in qs, in
// order, up to MaxRequestBytes (at least one batch), marks their queues
// busy, and returns the queues left out. p.mu is held.
func (p *Producer) pack(shard int, qs []*partQueue, now time.Time) (*produceReq, []*partQueue) {
	if p.idem {
		return p.packIdem(shard, qs, now)
	}
	r := &produceReq{shard: shard}
	size := requestOverhead
	for i, q := range qs {
		ps := partSend{q: q}
		for len(q.ready) > 0 && !now.Before(q.ready[0].notBefore) {
			b := q.ready[0]
			n := b.size() + len(b.key.topic) + 16
			if (len(r.parts) > 0 || len(ps.batches) > 0) && size+n > p.opts.MaxRequestBytes {
				break
			}
			size += n
			ps.batches = append(ps.batches, b)
			q.ready[0] = nil
			q.ready = q.ready[1:]
		}
		if len(ps.batches) == 0 {
			return r, qs[i:]
		}
		q.inflight++
		r.parts = append(r.parts, ps)
	}
	return r, nil
}

// runRequest sends one request and resolves or requeues its batches.
func (p *Producer) runRequest(r *produceReq) {
	defer p.wg.Done()
	var req *proto.ProduceRequest
	err := p.ensureProducerID(r.shard)
	if err == nil {
		req = p.encode(r)
		p.stats.requests.Add(1)
	}
	resp, err := p.roundTrip(r, req, err)
	outs := p.outcomes(r, resp, err)
	p.decideRetries(r, outs)
	p.mu.Lock()
	p.inflight[r.shard]--
	for i, ps := range r.parts {
		ps.q.inflight--
		base := outs[i].base
		for _, b := range ps.batches {
			o := outcome{base: base, err: outs[i].err, retry: outs[i].retry}
			if p.idem {
				o = p.sequenceOutcome(ps.q, b, o)
			}
			p.finish(b, o)
			if base != NoOffset {
				base += uint64(len(b.fns))
			}
		}
	}
	p.mu.Unlock()
	p.kick()
}

// encode builds the request, finishing (and compressing) batches sent for
// the first time. A partition's batches travel back to back.
func (p *Producer) encode(r *produceReq) *proto.ProduceRequest {
	req := &proto.ProduceRequest{Acks: p.opts.Acks.wire(), TimeoutMs: uint32(p.opts.RequestTimeout / time.Millisecond)}
	for _, ps := range r.parts {
		total := 0
		for _, b := range ps.batches {
			p.seal(b)
			total += len(b.payload)
		}
		records := ps.batches[0].payload
		if len(ps.batches) > 1 {
			records = make([]byte, 0, total)
			for _, b := range ps.batches {
				records = append(records, b.payload...)
			}
		}
		p.stats.batches.Add(uint64(len(ps.batches)))
		k := ps.q.key
		ti := len(req.Topics) - 1
		for ti >= 0 && string(req.Topics[ti].Name) != k.topic {
			ti--
		}
		if ti < 0 {
			req.Topics = append(req.Topics, proto.ProduceTopic{Name: []byte(k.topic)})
			ti = len(req.Topics) - 1
		}
		t := &req.Topics[ti]
		t.Partitions = append(t.Partitions, proto.ProducePartition{Partition: k.partition, Records: records})
	}
	return req
}

// seal finishes b's payload (compressed if configured) the first time it is
// sent.
func (p *Producer) seal(b *batch) {
	if b.payload != nil {
		p.restamp(b)
		return
	}
	if b.idem.assigned {
		b.bb.SetProducer(p.stampOf(b))
		b.idem.stamped = b.idem.stamp
	}
	b.payload = b.bb.Finish()
	if p.opts.Compression != proto.CodecNone {
		b.payload = proto.CompressBatch(nil, b.payload, p.opts.Compression)
		b.bb = proto.BatchBuilder{} // drop the uncompressed copy
	}
}

// size is b's size on the wire, or a bound on it before it is sealed.
func (b *batch) size() int {
	if b.payload != nil {
		return len(b.payload)
	}
	return b.bb.Size()
}

// roundTrip sends req (unless err is set: then it only takes its turn)
// and waits for the response. Requests of a shard are queued on its
// connection in the order collect made them, so an idempotent
// partition's pipelined batches reach the server in sequence order.
func (p *Producer) roundTrip(r *produceReq, req *proto.ProduceRequest, err error) (*proto.ProduceResponse, error) {
	ctx, cancel := context.WithTimeout(p.ctx, p.opts.RequestTimeout)
	defer cancel()
	p.awaitTurn(r)
	var q queued
	if err == nil {
		var c *Conn
		if c, err = p.cl.conn(ctx, r.shard); err == nil {
			q, err = c.send(ctx, req)
		}
	}
	p.endTurn(r)
	if err != nil || q.cl == nil { // acks none: no response
		return nil, err
	}
	resp := new(proto.ProduceResponse)
	if err := q.wait(ctx, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// shardTurns orders the requests of one shard: issued is the next turn
// collect gives out, next the one that may queue now.
type shardTurns struct{ issued, next uint64 }

// awaitTurn blocks until r may queue on its connection.
func (p *Producer) awaitTurn(r *produceReq) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.turns[r.shard].next != r.turn {
		p.turnCV.Wait()
	}
}

// endTurn lets the next request of r's shard queue.
func (p *Producer) endTurn(r *produceReq) {
	p.mu.Lock()
	p.turns[r.shard].next++
	p.mu.Unlock()
	p.turnCV.Broadcast()
}

// outcome is what a request did for one partition: the offset of its first
// record, or the error and whether to send the batches again.
type outcome struct {
	base  uint64
	err   error
	retry bool
}

// decideRetries refreshes the metadata of the topics whose partitions
// failed with a retriable error, or were refused as unknown, and marks
// which to retry. An unknown topic or partition is retried only if fresh
// metadata still lists it (a server that is still opening its partitions
// after a restart refuses them for a moment); otherwise the topic is
// dropped from the cache, so the next Send asks again.
func (p *Producer) decideRetries(r *produceReq, outs []outcome) {
	var refresh []string
	for i, o := range outs {
		if o.err != nil && (p.canRetry(o.err) || unknownPartition(o.err)) {
			refresh = append(refresh, r.parts[i].q.key.topic)
		}
	}
	if len(refresh) == 0 || p.ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.opts.RequestTimeout)
	_ = p.cl.refresh(ctx, refresh...) // best effort: a failed refresh drops nothing
	cancel()
	for i := range outs {
		o, k := &outs[i], r.parts[i].q.key
		switch {
		case o.err == nil:
		case p.canRetry(o.err):
			o.retry = true
		case unknownPartition(o.err):
			if t := p.cl.cached(k.topic); t != nil && k.partition < t.partitions() {
				o.retry = true
			} else {
				p.cl.forget(k.topic)
			}
		}
	}
}

func unknownPartition(err error) bool {
	return errors.Is(err, proto.UnknownTopic) || errors.Is(err, proto.UnknownPartition)
}

// outcomes maps the response (or the request's error) to each partition.
func (p *Producer) outcomes(r *produceReq, resp *proto.ProduceResponse, err error) []outcome {
	outs := make([]outcome, len(r.parts))
	if err != nil || resp == nil { // resp is nil without error for acks none
		for i := range outs {
			outs[i] = outcome{base: NoOffset, err: err}
		}
		return outs
	}
	got := make(map[partKey]proto.ProducePartitionResponse)
	for _, t := range resp.Topics {
		for _, pr := range t.Partitions {
			got[partKey{string(t.Name), pr.Partition}] = pr
		}
	}
	for i, ps := range r.parts {
		k := ps.q.key
		pr, ok := got[k]
		switch {
		case !ok:
			outs[i].err = fmt.Errorf("%w: produce response has no result for %s/%d", ErrProtocol, k.topic, k.partition)
		case pr.Error != proto.None:
			outs[i].err = fmt.Errorf("client: produce to %s/%d: %w", k.topic, k.partition, pr.Error)
		default:
			outs[i].base = pr.BaseOffset
		}
	}
	return outs
}

// canRetry reports whether a batch that failed with err may be sent again.
func (p *Producer) canRetry(err error) bool {
	if p.ctx.Err() != nil {
		return false
	}
	return retriable(err) || errors.Is(err, context.DeadlineExceeded) // a request timeout
}

// finish resolves b after a request, or requeues it with backoff. p.mu is
// held.
func (p *Producer) finish(b *batch, o outcome) {
	switch {
	case o.err == nil:
		p.resolve(b, o.base, nil)
	case p.aborted != nil:
		p.resolve(b, 0, fmt.Errorf("%w (last attempt: %w)", p.aborted, o.err))
	case !o.retry:
		p.resolve(b, 0, o.err)
	default:
		b.attempts++
		backoff := p.opts.RetryBackoff << min(b.attempts-1, 20)
		backoff = min(backoff, p.opts.MaxRetryBackoff)
		now := time.Now()
		if now.Add(backoff).After(b.deadline) {
			p.resolve(b, 0, fmt.Errorf("%w after %d attempts: %w", ErrDeliveryTimeout, b.attempts, o.err))
			return
		}
		b.notBefore = now.Add(backoff)
		p.stats.retries.Add(1)
		p.requeue(b)
	}
}

// resolve hands b's results to the delivery goroutine. p.mu is held.
func (p *Producer) resolve(b *batch, base uint64, err error) {
	if p.idem {
		p.unsent(b)
	}
	p.results = append(p.results, delivery{b: b, base: base, err: err})
	p.resultsCV.Signal()
}

// deliveryLoop calls the callbacks of resolved batches, in order, then
// releases their buffer space and wakes Flush and Close.
func (p *Producer) deliveryLoop() {
	defer p.wg.Done()
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		for len(p.results) == 0 {
			select {
			case <-p.quit:
				return
			default:
			}
			p.resultsCV.Wait()
		}
		ds := p.results
		p.results = nil
		p.mu.Unlock()
		records, bytes := p.deliver(ds)
		p.mu.Lock()
		p.pending -= records
		p.buffered -= bytes
		p.wakeSpaceWaiters()
		if p.pending == 0 {
			for _, ch := range p.idle {
				close(ch)
			}
			p.idle = nil
		}
	}
}

// deliver calls the callbacks of ds and returns how many records and bytes
// they resolved.
func (p *Producer) deliver(ds []delivery) (records, bytes int) {
	for _, d := range ds {
		res := Result{Partition: d.b.key.partition, Offset: NoOffset, Err: d.err}
		for i, fn := range d.b.fns {
			if d.err == nil && d.base != NoOffset {
				res.Offset = d.base + uint64(i)
			}
			fn(res)
		}
		n := len(d.b.fns)
		records += n
		bytes += d.b.bytes
		p.stats.records.Add(uint64(n))
		if d.err != nil {
			p.stats.failed.Add(uint64(n))
		}
	}
	return records, bytes
}
