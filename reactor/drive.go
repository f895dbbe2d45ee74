package reactor

import (
	"errors"
	"fmt"
	"time"

	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/replica"
)

// The reactor drives each partition's replica.Replica (replica/doc.go):
// it feeds it the completions of the partition's writes and flushes, the
// clock, retention and fetch registrations, and at the end of every loop
// turn executes the Ready of each partition it touched: acks to answer,
// fetches to wake, the flush to start, the checkpoint to write, offsets
// to publish. The rules (when an ack is released, what a fetch may read,
// when to flush) live in replica; this file is the plumbing.

// touch records that p's replica got an input this turn: runReady will
// execute its Ready.
func (r *Reactor) touch(p *partition) {
	if !p.touched {
		p.touched = true
		r.touched = append(r.touched, p)
	}
}

// runReady executes the Ready of every partition touched this turn. It
// runs once per loop turn after the turn's completions, so every append
// that completed in the turn shares the one flush a flush=sync replica
// plans (group commit).
func (r *Reactor) runReady() {
	for i := 0; i < len(r.touched); i++ { // stepPartition may touch again
		p := r.touched[i]
		p.touched = false
		if !p.deleted && p.rep.HasReady() {
			r.stepPartition(p)
		}
	}
	clear(r.touched)
	r.touched = r.touched[:0]
}

func (r *Reactor) stepPartition(p *partition) {
	rd := p.rep.Ready()
	if rd.OffsetsChanged {
		// Before the acks: a client that got its ack and then asks for
		// metadata must see the log end that covers its record.
		grew := rd.Offsets.LogEnd != p.shared.logEnd.Load()
		r.publishOffsets(p, rd.Offsets)
		if grew && len(p.followers) > 0 {
			r.wakeFollowers(p, false) // new data for the followers parked here
		}
	}
	for i := range rd.Acks {
		r.answerAck(p, &rd.Acks[i])
	}
	for _, w := range rd.Wakes {
		r.notify(r.waits.take(uint32(w.Token)).waiter, w.Reason != replica.WakeData)
	}
	if rd.Flush {
		r.startFlush(p, rd.FlushUpTo)
	}
	if rd.Checkpoint {
		p.log.WriteCheckpointAsync() // file creation and fdatasync: on the store's worker
		p.log.WriteEpochsAsync()
		r.snapshotProducers(p)
	}
	r.stepReplication(p, &rd)
	p.rep.Advance()
}

// answerAck answers one produce part the replica released.
func (r *Reactor) answerAck(p *partition, a *replica.Ack) {
	if a.Token == replicateToken {
		return // a follower's replicated append: nobody waits for it
	}
	e := r.acks.take(uint32(a.Token))
	code, base, end := proto.None, a.Base, p.rep.Offsets().LogEnd
	if a.Err != nil {
		code, base, end = replicaErrorCode(a.Err), 0, 0
	}
	r.partResult(e.req, e.origin, int(e.ti), int(e.pi), code, base, end)
}

// replicaErrorCode maps an error of the replica to its wire code.
func replicaErrorCode(err error) proto.ErrorCode {
	switch {
	case errors.Is(err, replica.ErrNotEnoughReplicas):
		return proto.NotEnoughReplicas
	case errors.Is(err, replica.ErrFenced):
		return proto.StorageError
	}
	return proto.StorageError
}

// errFlushRefused: storage would not plan the flush the replica asked for
// (the log is fenced or closed).
var errFlushRefused = errors.New("storage refused to plan the flush")

// startFlush plans the flush Ready asked for with storage and submits one
// fdatasync per descriptor it names.
func (r *Reactor) startFlush(p *partition, upTo uint64) {
	fl, ok := p.log.PrepareFlush()
	if !ok && p.log.Err() == nil && p.log.FlushWaiting() {
		p.rep.FlushDeferred() // the log's notify function steps p again
		return
	}
	if !ok {
		err := p.log.Err()
		if err == nil {
			err = errFlushRefused
		}
		p.rep.FlushFailed(err)
		r.touch(p)
		return
	}
	if fl.UpTo != upTo {
		panic(fmt.Sprintf("BUG: reactor: storage planned a flush up to %d, the replica up to %d", fl.UpTo, upTo))
	}
	p.flush, p.flushLeft, p.flushNext, p.flushErr, p.flushStart = fl, len(fl.Fds), 0, 0, r.now
	for p.flushNext < min(len(fl.Fds), maxFsyncsInFlight) {
		r.submitFsync(p)
	}
}

// maxFsyncsInFlight bounds the fdatasyncs of one partition's flush in the
// kernel at once. The ring runs them on its io-wq workers, which also take
// the segment writes that cannot complete inline: a flush naming dozens of
// rolled segments (small segment_bytes) submitted at once would hold every
// worker and stall the partition's writes behind it.
const maxFsyncsInFlight = 2

// submitFsync submits the next fdatasync of p's flush.
func (r *Reactor) submitFsync(p *partition) {
	slot, o := r.ops.alloc()
	*o = ioOp{part: p}
	r.ring.PrepareFsync(p.flush.Fds[p.flushNext], true, makeUD(udFsync, 0, slot))
	p.flushNext++
}

// onFsyncDone counts one fdatasync of the partition's flush; the flush is
// done when every descriptor it named is.
func (r *Reactor) onFsyncDone(o *ioOp, res int32) {
	p := o.part
	if res < 0 && p.flushErr == 0 {
		p.flushErr = res
	}
	p.flushLeft--
	if p.flushNext < len(p.flush.Fds) {
		r.submitFsync(p)
	}
	if p.flushLeft > 0 {
		return
	}
	r.srv.metrics.fsync(r.now.Sub(p.flushStart))
	r.touch(p)
	if p.flushErr < 0 {
		err := errnoErr(p.flushErr)
		p.log.FlushFailed(p.flush, err)
		p.rep.FlushFailed(err)
		r.srv.log.Error("fdatasync failed; partition fenced", "topic", p.topic.name, "partition", p.id, "err", err)
		r.noteFence(p)
		return
	}
	p.log.Flushed(p.flush)
	p.rep.FlushCompleted(p.flush.UpTo)
}

// tickPartitions gives every partition's replica the clock (interval
// flushes and checkpoints are due on it).
func (r *Reactor) tickPartitions() {
	for _, ps := range r.parts {
		for _, p := range ps {
			if p != nil {
				p.rep.Tick(r.now)
				r.touch(p)
			}
		}
	}
}

// watched records that p's replica holds waiters with deadline d.
func (r *Reactor) watched(p *partition, d time.Time) {
	if !p.waiting {
		p.waiting = true
		r.waitParts = append(r.waitParts, p)
	}
	if r.nextWaitTick.IsZero() || d.Before(r.nextWaitTick) {
		r.nextWaitTick = d
	}
}

// tickWaiting gives the clock to the replicas holding waiters once the
// earliest of their deadlines passed, so they expire their waiters.
func (r *Reactor) tickWaiting() {
	if r.nextWaitTick.IsZero() || r.now.Before(r.nextWaitTick) {
		return
	}
	r.nextWaitTick = time.Time{}
	keep := r.waitParts[:0]
	for _, p := range r.waitParts {
		if p.deleted {
			p.waiting = false
			continue
		}
		if !r.now.Before(p.rep.NextDeadline()) {
			p.rep.Tick(r.now)
			r.touch(p)
		}
		if p.rep.Waiters() == 0 {
			p.waiting = false
			continue
		}
		keep = append(keep, p)
		if d := p.rep.NextDeadline(); r.nextWaitTick.IsZero() || d.Before(r.nextWaitTick) {
			r.nextWaitTick = d
		}
	}
	clear(r.waitParts[len(keep):])
	r.waitParts = keep
}

// ackEntry is a produce part whose append the replica holds (its Token is
// the entry's slot): where to answer it.
type ackEntry struct {
	req     *request
	origin  *Reactor
	ti, pi  int32
	part    *partition
	writing bool // its segment write is in the kernel
}

// waitEntry is a fetch registered with a replica's Wait (its Token is the
// entry's slot): whom to wake.
type waitEntry struct {
	waiter
	part *partition
}

// slab is a table of entries with a free list; it does not allocate once
// warm. Each entry is taken exactly once (the replica returns a Token once).
type slab[T any] struct {
	ents []T
	free []uint32
	used []bool
}

func (s *slab[T]) put(v T) uint32 {
	if n := len(s.free); n > 0 {
		slot := s.free[n-1]
		s.free = s.free[:n-1]
		s.ents[slot], s.used[slot] = v, true
		return slot
	}
	s.ents = append(s.ents, v)
	s.used = append(s.used, true)
	return uint32(len(s.ents) - 1)
}

func (s *slab[T]) take(slot uint32) T {
	if !s.used[slot] {
		panic(fmt.Sprintf("BUG: reactor: token %d taken twice", slot))
	}
	v := s.ents[slot]
	var zero T
	s.ents[slot], s.used[slot] = zero, false
	s.free = append(s.free, slot)
	return v
}

// dropAcks answers the parts of a deleted partition the replica still
// holds (those with a write in flight are answered at its completion).
func (r *Reactor) dropAcks(p *partition) {
	for slot := range r.acks.ents {
		if e := &r.acks.ents[slot]; r.acks.used[slot] && e.part == p && !e.writing {
			a := r.acks.take(uint32(slot))
			r.partResult(a.req, a.origin, int(a.ti), int(a.pi), proto.UnknownTopic, 0, 0)
		}
	}
}

// dropWaiters wakes the fetches registered with a deleted partition.
func (r *Reactor) dropWaiters(p *partition) {
	for slot := range r.waits.ents {
		if r.waits.used[slot] && r.waits.ents[slot].part == p {
			r.notify(r.waits.take(uint32(slot)).waiter, true)
		}
	}
}

// levelOf is the replica's ack level of a produce request's acks field.
func levelOf(acks int8) replica.Level { return replica.Level(acks) }

// heldCQE is an fdatasync completion held back by the holdFsyncs seam.
type heldCQE struct {
	slot uint32
	res  int32
}

// releaseHeldFsyncs handles the held-back fdatasync completions once the
// seam is cleared.
func (r *Reactor) releaseHeldFsyncs() {
	if len(r.heldFsyncs) == 0 || r.srv.holdFsyncs.Load() {
		return
	}
	held := r.heldFsyncs
	r.heldFsyncs = nil
	for _, h := range held {
		r.onOp(udFsync, h.slot, h.res)
	}
}
