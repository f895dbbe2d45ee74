package client

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringmq/ringmq/proto"
)

// The idempotent producer's side of the server's contract (DESIGN.md
// §12.1): every batch carries the producer id, an epoch and the sequence
// number of its first record in its partition; at most idemWindow batches
// of a partition are outstanding, all within idemWindow of its oldest
// unresolved one; failed batches are sent again in order; a sequence error
// for the oldest unresolved batch starts the partition over in a new epoch
// (KIP-360). Everything here runs under p.mu except ensureProducerID and
// the stamping of a batch being encoded.

// idemWindow is the most requests in flight per partition, and how far
// past its oldest unresolved batch a batch may be sent: the server
// remembers the last five batches of a producer per partition
// (replica.ProducerBatches), so a retry of any outstanding batch is still
// recognised.
const idemWindow = 5

// producerID is the id and epoch InitProducer gave.
type producerID struct {
	mu    sync.Mutex
	known atomic.Bool // id and epoch are set (read without mu once true)
	id    int64
	epoch int16
}

// idemQueue is a partition's sequence state.
type idemQueue struct {
	nextSeq  int32    // the sequence of the next new batch's first record
	bump     int16    // epochs this partition started over (added to the producer's)
	sent     []uint64 // seq (batch number) of each batch sent and not resolved, ascending
	drain    bool     // a batch failed: nothing is sent until the requests in flight are answered
	renumber bool     // start over at sequence 0 in a new epoch once drained
}

// idemStamp is the epoch bump and base sequence a batch carries.
type idemStamp struct {
	bump int16
	seq  int32
}

// idemBatch is a batch's sequence state.
type idemBatch struct {
	assigned bool      // stamp holds its sequence
	inSent   bool      // listed in its queue's sent
	stamp    idemStamp // what it must carry when sent
	stamped  idemStamp // what its payload carries
}

// ensureProducerID asks the server for a producer id the first time an
// idempotent producer sends. A failure fails the request (retried like a
// produce error).
func (p *Producer) ensureProducerID(shard int) error {
	if !p.idem || p.pid.known.Load() {
		return nil
	}
	p.pid.mu.Lock()
	defer p.pid.mu.Unlock()
	if p.pid.known.Load() {
		return nil
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.opts.RequestTimeout)
	defer cancel()
	c, err := p.cl.conn(ctx, shard)
	if err != nil {
		return err
	}
	resp, err := c.InitProducer(ctx, &proto.InitProducerRequest{ProducerID: proto.NoProducerID, Epoch: -1})
	if err != nil {
		return fmt.Errorf("client: get an idempotent producer id (DisableIdempotence to go without): %w", err)
	}
	p.pid.id, p.pid.epoch = resp.ProducerID, resp.Epoch
	p.pid.known.Store(true)
	return nil
}

// stampOf is the producer id, epoch and base sequence b carries.
func (p *Producer) stampOf(b *batch) (int64, int16, int32) {
	return p.pid.id, p.pid.epoch + b.idem.stamp.bump, b.idem.stamp.seq
}

// restamp rewrites the producer fields of b's sealed payload when its
// partition renumbered it since.
func (p *Producer) restamp(b *batch) {
	if b.idem.assigned && b.idem.stamped != b.idem.stamp {
		id, epoch, seq := p.stampOf(b)
		proto.SetBatchProducer(b.payload, id, epoch, seq)
		b.idem.stamped = b.idem.stamp
	}
}

// sendable reports whether q's next ready batch may be sent now. p.mu is
// held.
func (p *Producer) sendable(q *partQueue) bool {
	if !p.idem {
		return q.inflight == 0
	}
	iq := &q.idem
	if iq.drain {
		if q.inflight > 0 {
			return false
		}
		iq.drain = false
		if iq.renumber {
			p.renumber(q)
		}
	}
	if q.inflight >= idemWindow || len(q.ready) == 0 {
		return false
	}
	return len(iq.sent) == 0 || q.ready[0].seq < iq.sent[0]+idemWindow
}

// renumber starts q over in its new epoch: its batches that have a
// sequence (all unresolved, all in ready now) get new ones from 0, in
// order. p.mu is held.
func (p *Producer) renumber(q *partQueue) {
	iq := &q.idem
	iq.renumber = false
	seq := int32(0)
	for _, b := range q.ready {
		if !b.idem.assigned {
			break
		}
		b.idem.stamp = idemStamp{bump: iq.bump, seq: seq}
		seq = addSeq(seq, int32(len(b.fns)))
	}
	iq.nextSeq = seq
}

// packIdem fills a request with one batch of each queue of qs that may
// send, up to MaxRequestBytes (at least one batch), and returns the queues
// that may send more. p.mu is held.
func (p *Producer) packIdem(shard int, qs []*partQueue, now time.Time) (*produceReq, []*partQueue) {
	r := &produceReq{shard: shard}
	size := requestOverhead
	var more []*partQueue
	for i, q := range qs {
		if len(q.ready) == 0 || now.Before(q.ready[0].notBefore) || !p.sendable(q) {
			continue
		}
		b := q.ready[0]
		n := b.size() + len(b.key.topic) + 16
		if len(r.parts) > 0 && size+n > p.opts.MaxRequestBytes {
			return r, append(more, qs[i:]...)
		}
		size += n
		q.ready[0] = nil
		q.ready = q.ready[1:]
		p.assign(q, b)
		q.inflight++
		r.parts = append(r.parts, partSend{q: q, batches: []*batch{b}})
		if len(q.ready) > 0 && p.sendable(q) {
			more = append(more, q)
		}
	}
	return r, more
}

// assign gives b its sequence the first time it is sent and lists it as
// outstanding. p.mu is held.
func (p *Producer) assign(q *partQueue, b *batch) {
	iq := &q.idem
	if !b.idem.assigned {
		b.idem.assigned = true
		b.idem.stamp = idemStamp{bump: iq.bump, seq: iq.nextSeq}
		iq.nextSeq = addSeq(iq.nextSeq, int32(len(b.fns)))
	}
	if !b.idem.inSent {
		b.idem.inSent = true
		iq.sent = append(iq.sent, b.seq)
	}
}

// unsent forgets b as outstanding (it is resolved). p.mu is held.
func (p *Producer) unsent(b *batch) {
	q := p.queues[b.key]
	if q == nil || !b.idem.inSent {
		return
	}
	b.idem.inSent = false
	for i, s := range q.idem.sent {
		if s == b.seq {
			q.idem.sent = append(q.idem.sent[:i], q.idem.sent[i+1:]...)
			return
		}
	}
}

// sequenceOutcome adjusts what a request did for batch b of q: any failure
// holds q's new batches back until its requests in flight are answered; a
// sequence error (OUT_OF_ORDER_SEQUENCE, UNKNOWN_PRODUCER_ID) is retried
// while an earlier batch of q is unresolved, and for the oldest starts q
// over in a new epoch. p.mu is held.
func (p *Producer) sequenceOutcome(q *partQueue, b *batch, o outcome) outcome {
	if o.err == nil {
		return o
	}
	q.idem.drain = true
	seqErr := errors.Is(o.err, proto.OutOfOrderSequence) || errors.Is(o.err, proto.UnknownProducerID)
	fenced := errors.Is(o.err, proto.ProducerFenced)
	switch {
	case !seqErr && !fenced:
		return o
	case b.idem.stamp.bump < q.idem.bump:
		o.retry = true // sent in an epoch the partition left: it goes again in the new one
	case fenced:
		return o
	case len(q.idem.sent) > 0 && q.idem.sent[0] < b.seq:
		o.retry = true // an earlier batch failed too and goes first
	case int(p.pid.epoch)+int(q.idem.bump) >= int(proto.MaxProducerEpoch):
		o.err = fmt.Errorf("%w (the producer's epochs are used up: create a new producer)", o.err)
	default:
		q.idem.bump++
		q.idem.renumber = true
		o.retry = true
	}
	return o
}

// addSeq adds n to a sequence number, wrapping after math.MaxInt32 to 0 as
// the server does.
func addSeq(seq, n int32) int32 {
	if seq > math.MaxInt32-n {
		return n - (math.MaxInt32 - seq) - 1
	}
	return seq + n
}
