package replica

import (
	"fmt"
	"time"
)

// The leader's side of replication: follower fetches, the HW over the
// ISR, ISR proposals.
//
//   - A follower fetch at Offset with LastEpoch is checked against the
//     leader's epoch cache (KIP-320): when the leader's epoch at or below
//     LastEpoch is older, or ends before Offset, the follower's log
//     diverges and the answer says where (DivergingEpoch, DivergingEnd);
//     the follower's progress is not updated. Otherwise the follower has
//     exactly the leader's log below Offset: its LEO is Offset and its
//     match is Offset (flush=interval) or min(Flushed, Offset) (flush=sync).
//   - HW = min(local match, match of every follower in the ISR or being
//     added to it), only while the committed ISR has MinInsync members;
//     it never moves back. A shrink counts the follower until the
//     controller committed it, an expand from the moment it is proposed:
//     the set the leader counts always contains the controller's ISR, from
//     which the next leader is chosen.
//   - A follower in the ISR that has not caught up (Kafka's rule: fetched
//     up to the leader's log end, or up to the log end as of its previous
//     fetch) for more than ReplicaLagTime is proposed for removal; one not
//     in the ISR whose match reached the HW and the start of the leader's
//     epoch is proposed for addition. One proposal at a time, carrying the
//     partition epoch; ISRChanged or ISRChangeRefused ends it.

// FollowerFetch checks a follower's fetch and records its progress. The
// driver reads [Offset, UpTo) of the log (up to its fetch budget) and
// sends it with HighWatermark and LeaderEpoch; a Diverging answer carries
// no data. A fetch that finds nothing new may be parked like a consumer's
// (Wait, with the HW the answer carries).
func (r *Replica) FollowerFetch(q FetchRequest) FetchAnswer {
	switch {
	case r.rp.role != RoleLeader:
		return FetchAnswer{Err: ErrNotLeader}
	case q.LeaderEpoch < r.rp.epoch:
		return FetchAnswer{Err: fmt.Errorf("%w: fetch in epoch %d, leader is in %d", ErrFencedEpoch, q.LeaderEpoch, r.rp.epoch)}
	case q.LeaderEpoch > r.rp.epoch:
		return FetchAnswer{Err: fmt.Errorf("%w: fetch in epoch %d, leader is in %d", ErrUnknownEpoch, q.LeaderEpoch, r.rp.epoch)}
	case q.Replica == r.cfg.ID:
		return FetchAnswer{Err: fmt.Errorf("%w: replica %d fetches from itself", ErrBadConfig, q.Replica)}
	case q.Offset < r.off.LogStart:
		return FetchAnswer{Err: fmt.Errorf("%w: offset %d, log start %d", ErrFetchOutOfRange, q.Offset, r.off.LogStart)}
	}
	a := FetchAnswer{LeaderEpoch: r.rp.epoch, LogStart: r.off.LogStart}
	if q.LastEpoch != NoEpoch || q.Offset > r.off.LogEnd {
		e, end := r.rp.epochs.EndOffsetFor(q.LastEpoch, r.off.LogEnd)
		if e < q.LastEpoch || end < q.Offset || q.LastEpoch == NoEpoch {
			a.Diverging, a.DivergingEpoch, a.DivergingEnd = true, e, end
			a.HighWatermark = r.off.HighWatermark
			return a
		}
	}
	f := r.follower(q.Replica)
	f.leo, f.fetched = q.Offset, true
	f.match = q.Offset
	if r.cfg.Sync {
		f.match = min(q.Flushed, q.Offset)
	}
	switch {
	case q.Offset >= r.off.LogEnd:
		f.lastCaughtUp = later(f.lastCaughtUp, r.now)
	case q.Offset >= f.lastFetchLEO:
		f.lastCaughtUp = later(f.lastCaughtUp, f.lastFetch)
	}
	f.lastFetchLEO, f.lastFetch = r.off.LogEnd, r.now
	r.updateHW()
	r.maybeExpand(f)
	r.check()
	a.Offset, a.UpTo, a.HighWatermark = q.Offset, r.off.LogEnd, r.off.HighWatermark
	return a
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// epochStart is where the leader's current epoch starts.
func (r *Replica) epochStart() uint64 {
	c := &r.rp.epochs
	if n := len(c.e); n > 0 && c.e[n-1].Epoch == r.rp.epoch {
		return c.e[n-1].Start
	}
	return r.next
}

// maybeExpand proposes adding f to the ISR once it caught up.
func (r *Replica) maybeExpand(f *progress) {
	if f.inISR || r.rp.proposing || !f.fetched || r.rp.role != RoleLeader {
		return
	}
	if f.match >= r.off.HighWatermark && f.leo >= r.epochStart() {
		r.propose(ISRExpand, f.id)
	}
}

// checkLag proposes removing a follower of the ISR that has not caught up
// for more than ReplicaLagTime (from Tick).
func (r *Replica) checkLag() {
	if r.rp.role != RoleLeader || r.rp.proposing || r.now.IsZero() {
		return
	}
	for i := range r.followers {
		if f := &r.followers[i]; f.inISR && r.now.Sub(f.lastCaughtUp) > r.rp.lagTime {
			r.propose(ISRShrink, f.id)
			return
		}
	}
}

func (r *Replica) propose(op ISROp, id ID) {
	isr := append(r.rp.isrBuf[:0], r.cfg.ID)
	for i := range r.followers {
		if f := &r.followers[i]; f.inISR && !(op == ISRShrink && f.id == id) {
			isr = append(isr, f.id)
		}
	}
	if op == ISRExpand {
		isr = append(isr, id)
	}
	r.rp.isrBuf = isr
	r.rp.proposal = ISRChange{Op: op, Replica: id, LeaderEpoch: r.rp.epoch, PartitionEpoch: r.rp.partitionEpoch, ISR: isr}
	r.rp.proposing, r.rp.proposed = true, false
}

// pendingAdd reports whether id is being added to the ISR (counted toward
// the HW already).
func (r *Replica) pendingAdd(id ID) bool {
	return r.rp.proposing && r.rp.proposal.Op == ISRExpand && r.rp.proposal.Replica == id
}

// ISRChanged applies the ISR the controller committed at partitionEpoch
// (the leader's proposal, or a change of its own such as a fenced broker
// leaving). An older partition epoch than the leader's is ignored
// (ErrStaleEpoch). A newer one ends the proposal in flight: it was
// committed, or can never be.
func (r *Replica) ISRChanged(partitionEpoch int32, isr []ID) error {
	if r.rp.role != RoleLeader {
		return ErrNotLeader
	}
	if partitionEpoch < r.rp.partitionEpoch {
		return fmt.Errorf("%w: ISR of partition epoch %d, leader has %d", ErrStaleEpoch, partitionEpoch, r.rp.partitionEpoch)
	}
	if r.rp.proposing && partitionEpoch > r.rp.proposal.PartitionEpoch {
		// the controller moved on: the proposal was committed (this is
		// it) or can never be
		r.rp.proposing, r.rp.proposed = false, false
	}
	r.rp.partitionEpoch = partitionEpoch
	r.setISR(isr)
	return nil
}

// ISRChangeRefused ends the proposal made at partitionEpoch without a
// change: the controller refused it (a stale partition epoch, or this
// leader was replaced), so it can never be committed; a later Tick or
// fetch may propose again. A refusal of another proposal is ignored. A
// proposal whose answer was lost must not be given up (a committed expand
// would then not be counted): the driver sends it again, or waits for the
// controller's state (ISRChanged, BecomeLeader).
func (r *Replica) ISRChangeRefused(partitionEpoch int32) {
	if !r.rp.proposing || r.rp.proposal.PartitionEpoch != partitionEpoch {
		return
	}
	r.rp.proposing, r.rp.proposed = false, false
	r.updateHW()
	r.check()
}

// PartitionEpoch is the partition epoch of the leader's ISR.
func (r *Replica) PartitionEpoch() int32 { return r.rp.partitionEpoch }

// FollowerLEO returns what the leader knows of follower id: its log end
// (fetch offset) and match offset; ok is false before its first fetch in
// this leader epoch.
func (r *Replica) FollowerLEO(id ID) (leo, match uint64, ok bool) {
	for i := range r.followers {
		if f := &r.followers[i]; f.id == id {
			return f.leo, f.match, f.fetched
		}
	}
	return 0, 0, false
}
