package replica

import (
	"fmt"
	"time"
)

// Flushes are planned by Ready, at most one in flight: with Sync, one
// every turn in which something visible is unflushed (the group commit:
// every append that completed in the turn shares it); otherwise on the
// first Ready after a Tick at or past each FlushInterval that found
// something not yet covered by a flush. A flush covers
// the offsets below the log end as of its Ready (Ready.FlushUpTo, which is
// storage's FlushOp.UpTo planned in the same turn).

// FlushCompleted records that the flush Ready returned completed; upTo is
// storage's FlushOp.UpTo and must be the Ready's FlushUpTo. The flushed
// offset advances, and with it the HW when Sync.
func (r *Replica) FlushCompleted(upTo uint64) {
	if !r.flushing {
		panic("BUG: replica: flush completed with none in flight")
	}
	if upTo != r.flushUpTo {
		panic(fmt.Sprintf("BUG: replica: flush completed up to %d, planned up to %d", upTo, r.flushUpTo))
	}
	r.flushing = false
	r.off.Flushed = max(r.off.Flushed, upTo)
	r.updateHW()
	r.check()
}

// FlushFailed records that the flush in flight failed (or that storage
// refused to plan it). The durability of everything unflushed is unknown,
// so the replica is fenced: no in-flight append becomes visible (as in
// storage's FlushFailed), every Ack not yet released is released with an
// error, waiters are woken with WakeFenced.
func (r *Replica) FlushFailed(err error) {
	if !r.flushing {
		panic("BUG: replica: flush failed with none in flight")
	}
	r.flushing = false
	at := r.next
	if r.inflight.len() > 0 {
		at = r.inflight.front().base
	}
	r.fence(at, fmt.Errorf("flush up to offset %d: %w", r.flushUpTo, err))
	r.check()
}

// FlushDeferred records that storage cannot plan the flush the last
// Ready asked for yet (on one node: a rolled segment's files are still
// being renamed into place); nothing failed. A later Ready asks again: the
// driver feeds the replica an input (and so steps it) when storage is
// ready.
func (r *Replica) FlushDeferred() {
	if !r.flushing {
		panic("BUG: replica: flush deferred with none in flight")
	}
	r.flushing = false
	if !r.cfg.Sync {
		r.flushDue = true
	}
	r.check()
}

// Tick tells the replica the time (the driver's clock; monotonic). It
// expires waiters whose deadline is not after now, and marks an interval
// flush and a checkpoint due when their periods have passed. Times only
// move forward: an earlier now than the last is ignored.
func (r *Replica) Tick(now time.Time) {
	if now.Before(r.now) {
		return
	}
	first := r.now.IsZero()
	r.now = now
	if first {
		r.nextFlush = now.Add(r.cfg.FlushInterval)
		r.nextCheckpoint = now.Add(r.cfg.CheckpointInterval)
		for i := range r.followers { // known before the clock: their lag starts now
			r.followers[i].lastCaughtUp = later(r.followers[i].lastCaughtUp, now)
		}
	}
	if !r.cfg.Sync && !now.Before(r.nextFlush) {
		covered := r.off.Flushed
		if r.flushing {
			covered = r.flushUpTo
		}
		r.flushDue = r.flushDue || r.off.LogEnd > covered
		r.nextFlush = now.Add(r.cfg.FlushInterval)
	}
	if !now.Before(r.nextCheckpoint) {
		r.checkpointDue = true
		r.nextCheckpoint = now.Add(r.cfg.CheckpointInterval)
	}
	r.expireWaiters()
	r.checkLag()
}

// NextDeadline is when the replica next wants a Tick: the next interval
// flush or checkpoint, or the earliest waiter deadline. It is zero before
// the first Tick.
func (r *Replica) NextDeadline() time.Time {
	next := r.nextCheckpoint
	if !r.cfg.Sync && r.nextFlush.Before(next) {
		next = r.nextFlush
	}
	for i := range r.waiters {
		if d := r.waiters[i].deadline; d.Before(next) {
			next = d
		}
	}
	return next
}

// LogStartMoved records that retention (or a delete-records request) moved
// the log start forward. It may not pass the HW: data not yet committed
// is never deleted. Waiters below the new start are woken with
// WakeOutOfRange.
func (r *Replica) LogStartMoved(start uint64) {
	if start <= r.off.LogStart {
		return
	}
	if start > r.off.HighWatermark {
		panic(fmt.Sprintf("BUG: replica: log start moved to %d, past the HW %d", start, r.off.HighWatermark))
	}
	r.off.LogStart = start
	r.off.Flushed = max(r.off.Flushed, start)
	r.checkpointed = max(r.checkpointed, start)
	for i := 0; i < len(r.waiters); {
		if r.waiters[i].offset < start {
			r.wake(i, WakeOutOfRange)
			continue
		}
		i++
	}
	r.check()
}

// wantFlush says whether Ready should plan a flush now.
func (r *Replica) wantFlush() bool {
	if r.flushing || r.fenceErr != nil || r.off.LogEnd <= r.off.Flushed {
		return false
	}
	return r.cfg.Sync || r.flushDue
}

// wantCheckpoint says whether Ready should ask for a checkpoint now.
func (r *Replica) wantCheckpoint() bool {
	return r.checkpointDue && r.off.Flushed > r.checkpointed
}
