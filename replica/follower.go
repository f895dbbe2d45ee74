package replica

import "fmt"

// The follower's side of replication. A follower has one fetch out at a
// time, and asks for the next one (Ready.SendFetch) only when nothing is
// in flight: no replicated append, no truncation, and on flush=sync topics
// no unflushed data, so each fetch reports a log end and a flushed offset
// the leader may count (group commit on the follower: one fdatasync per
// fetch answer).
//
//	Ready.SendFetch{Offset: log end, Flushed, LastEpoch: epoch of the last batch}
//	   → leader's FollowerFetch → answer → Fetched:
//	     diverging: truncate to min(the leader's end of DivergingEpoch,
//	                our end of it) (our end of the largest epoch below it
//	                when we do not know it; the next fetch checks again)
//	                → Ready.Truncate → storage's TruncateTo → TruncateCompleted
//	     batches:   the contiguous prefix starting at the log end, epochs
//	                not decreasing and not above ours → Ready.Replicate
//	                → storage's AppendReplicated → AppendCompleted
//	     HW:        min(leader's HW, local match), never back
//
// The follower never truncates to its HW (KIP-101): only by epoch.

// wantFetch says whether Ready should ask for a fetch now.
func (r *Replica) wantFetch() bool {
	rp := &r.rp
	return rp.role == RoleFollower && !rp.fetching && !rp.haveRepl && !rp.truncate && !rp.truncating &&
		r.fenceErr == nil && r.inflight.len() == 0 && !(r.cfg.Sync && (r.flushing || r.off.Flushed < r.off.LogEnd))
}

// NextFetch is the fetch a follower would send now.
func (r *Replica) NextFetch() FetchRequest {
	return FetchRequest{Replica: r.cfg.ID, LeaderEpoch: r.rp.epoch, Offset: r.off.LogEnd,
		Flushed: r.off.Flushed, LastEpoch: r.lastEpoch()}
}

// FetchFailed records that the fetch in flight got no answer (a broken
// connection, a timeout): the next Ready asks for another.
func (r *Replica) FetchFailed() { r.rp.fetching = false }

// Fetched applies the leader's answer to the fetch in flight: a divergence
// becomes a truncation, batches become a replicated append, the leader's
// HW moves the follower's. An answer for another epoch, or whose batches
// do not start at the log end, is ignored (ErrStaleFetch); the next Ready
// asks again.
func (r *Replica) Fetched(f Fetched) error {
	if r.rp.role != RoleFollower {
		return ErrNotFollower
	}
	r.rp.fetching = false
	switch {
	case f.LeaderEpoch != r.rp.epoch:
		return fmt.Errorf("%w: answer in epoch %d, following in %d", ErrStaleFetch, f.LeaderEpoch, r.rp.epoch)
	case f.Err != nil:
		return nil
	case r.rp.haveRepl || r.rp.truncate || r.rp.truncating || r.inflight.len() > 0:
		return fmt.Errorf("%w: an answer while the last one is being applied", ErrStaleFetch)
	case f.Diverging:
		r.diverged(f.DivergingEpoch, f.DivergingEnd)
		return nil
	}
	if len(f.Batches) > 0 {
		if err := r.acceptBatches(f); err != nil {
			return err
		}
	}
	r.rp.leaderHW = f.HighWatermark
	r.updateHW()
	r.check()
	return nil
}

// diverged plans the truncation a divergence answer asks for.
func (r *Replica) diverged(epoch int32, end uint64) {
	target := min(end, r.off.LogEnd)
	if e, ourEnd := r.rp.epochs.EndOffsetFor(epoch, r.off.LogEnd); e != NoEpoch {
		if e == epoch {
			target = min(ourEnd, end, r.off.LogEnd)
		} else {
			target = min(ourEnd, r.off.LogEnd)
		}
	}
	target = max(target, r.off.LogStart)
	if target >= r.off.LogEnd {
		r.rp.epochs.TruncateFrom(r.off.LogEnd) // epochs that wrote nothing
		return
	}
	r.rp.truncate, r.rp.truncateTo = true, target
}

// acceptBatches keeps the prefix of f's batches that continues the log.
func (r *Replica) acceptBatches(f Fetched) error {
	if f.Batches[0].Base != r.next {
		return fmt.Errorf("%w: batches from offset %d, log end %d", ErrStaleFetch, f.Batches[0].Base, r.next)
	}
	next, last := r.next, r.lastEpoch()
	rep := Replicate{Token: f.Token, Base: next}
	for _, b := range f.Batches {
		if b.Base != next || b.Last < b.Base || b.Bytes <= 0 || b.Epoch < last || b.Epoch > r.rp.epoch {
			break
		}
		if err := r.rp.epochs.Assign(b.Epoch, b.Base); err != nil {
			break
		}
		last, next = b.Epoch, b.Last+1
		rep.Batches++
		rep.Bytes += b.Bytes
	}
	if rep.Batches == 0 {
		return fmt.Errorf("%w: first batch %d-%d of epoch %d does not continue the log (epoch %d)",
			ErrStaleFetch, f.Batches[0].Base, f.Batches[0].Last, f.Batches[0].Epoch, r.rp.epoch)
	}
	rep.Last = next - 1
	r.rp.replicate, r.rp.haveRepl = rep, true
	// The producer state follows the log as it is planned (a failed append
	// fences and truncates, which forgets these again). Nothing is in
	// flight on a fetching follower, and the batches continue the log, so
	// Replay cannot refuse them.
	for _, b := range f.Batches[:rep.Batches] {
		_ = r.prod.Replay(LogBatch{ProducerBatch: b.Producer, BaseOffset: b.Base, LastOffset: b.Last})
	}
	return nil
}

// planReplicate plans the replicated append Ready hands out.
func (r *Replica) planReplicate() Replicate {
	rep := r.rp.replicate
	r.rp.haveRepl = false
	r.inflight.push(pending{base: rep.Base, last: rep.Last, bytes: uint64(rep.Bytes), token: rep.Token, level: AckNone})
	r.next = rep.Last + 1
	return rep
}

// TruncateCompleted records that the log was cut at offset, the
// truncation the last Ready asked for (Ready.TruncateTo).
func (r *Replica) TruncateCompleted(offset uint64) error {
	if !r.rp.truncating || offset != r.rp.truncateTo {
		return fmt.Errorf("%w: truncation to %d completed, none in flight to it", ErrBadOffsets, offset)
	}
	r.rp.truncating = false
	r.truncateLocal(offset)
	r.check()
	return nil
}

// truncateLocal drops every offset at or after end from the replica's
// state (nothing is in flight): the log end, flushed offset and (only in
// a log that broke the rules) the HW move back; acks waiting past it fail;
// waiters past it wake out of range; epochs and producers past it are
// forgotten.
func (r *Replica) truncateLocal(end uint64) {
	if end >= r.off.LogEnd {
		return
	}
	for r.aboveHW.len() > 0 {
		v := r.aboveHW.back()
		if v.last < end {
			break
		}
		if v.base < end { // an append of several batches cut inside
			v.last = end - 1
			break
		}
		if v.waiting {
			r.release(v.token, v.level, v.base, v.last, ErrNotLeader)
		}
		r.leoBytes -= v.bytes
		r.aboveHW.popBack()
	}
	if end < r.off.HighWatermark {
		r.off.HighWatermark = end
		r.hwBytes = r.leoBytes
		r.aboveHW.clear()
	}
	r.off.LogEnd, r.next = end, end
	r.off.Flushed = min(r.off.Flushed, end)
	r.checkpointed = min(r.checkpointed, end)
	r.rp.leaderHW = min(r.rp.leaderHW, end)
	r.rp.epochs.TruncateFrom(end)
	if err := r.prod.TruncateTo(end); err != nil {
		panic("BUG: replica: producer batches in flight at a truncation: " + err.Error())
	}
	for i := range r.followers {
		r.followers[i].match = min(r.followers[i].match, end)
	}
	for i := 0; i < len(r.waiters); {
		if r.waiters[i].offset > end {
			r.wake(i, WakeOutOfRange)
			continue
		}
		i++
	}
}
