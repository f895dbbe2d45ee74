package replica

// Ready is the work the driver must do after feeding the replica inputs:
// answer Acks, wake Wakes, start the flush, write the checkpoint, publish
// the offsets. Its slices belong to the replica and stay valid until
// Advance.
type Ready struct {
	// Acks are the produce parts to answer, in release order.
	Acks []Ack
	// Wakes are the waiters to wake, each once.
	Wakes []Wake
	// Flush: plan and start one flush now (storage's PrepareFlush, then an
	// fdatasync of each file it names); report FlushCompleted(FlushUpTo) or
	// FlushFailed. It is in flight from this Ready on.
	Flush     bool
	FlushUpTo uint64
	// Checkpoint: persist the recovery point of the last completed flush
	// (storage's WriteCheckpointAsync; CheckpointAt is the flushed offset
	// it covers). Nothing is reported back: storage's worker owns it.
	Checkpoint   bool
	CheckpointAt uint64
	// Offsets are the offsets now; OffsetsChanged says whether they moved
	// since the last Ready (publish them, then).
	Offsets        Offsets
	OffsetsChanged bool

	// Replication (replication.go, leader.go, follower.go).
	//
	// EpochChanged: a BecomeLeader or BecomeFollower changed the role or
	// the leader epoch: Role, LeaderEpoch and Leader are the new ones (a
	// leader stamps LeaderEpoch into the batches it appends: storage's
	// SetLeaderEpoch; a follower connects to Leader).
	EpochChanged bool
	Role         Role
	LeaderEpoch  int32
	Leader       ID
	// Truncate (follower): cut the log at TruncateTo (storage's
	// TruncateTo), then TruncateCompleted(TruncateTo). Nothing else is
	// in flight when it comes, and nothing is planned until it completed.
	Truncate   bool
	TruncateTo uint64
	// Replicate (follower): append the fetched batches it names keeping
	// their offsets (storage's AppendReplicated); in flight from this Ready.
	Replicate     bool
	ReplicateWork Replicate
	// SendFetch (follower): send Fetch to the leader; in flight until
	// Fetched or FetchFailed.
	SendFetch bool
	Fetch     FetchRequest
	// ProposeISR (leader): send ISRChange to the controller; answered by
	// ISRChanged or ISRChangeRefused. ISRChange.ISR is valid until then.
	ProposeISR bool
	ISRChange  ISRChange
}

// HasReady reports whether Ready has anything for the driver.
func (r *Replica) HasReady() bool {
	return len(r.acks) > 0 || len(r.wakes) > 0 || r.wantFlush() || r.wantCheckpoint() || r.off != r.published ||
		r.rp.epochChanged || r.wantTruncate() || (r.rp.haveRepl && r.fenceErr == nil) || r.wantFetch() || (r.rp.proposing && !r.rp.proposed)
}

// wantTruncate says whether Ready should hand out the due truncation:
// only once nothing is in flight.
func (r *Replica) wantTruncate() bool {
	return r.rp.truncate && !r.rp.truncating && r.inflight.len() == 0 && !r.flushing
}

// readyReplication fills in the replication work of rd.
func (r *Replica) readyReplication(rd *Ready) {
	rp := &r.rp
	if rp.epochChanged {
		rd.EpochChanged, rd.Role, rd.LeaderEpoch, rd.Leader = true, rp.role, rp.epoch, r.Leader()
		rp.epochChanged = false
	}
	if rp.proposing && !rp.proposed {
		rd.ProposeISR, rd.ISRChange = true, rp.proposal
		rp.proposed = true
	}
	if rp.role != RoleFollower {
		return
	}
	switch {
	case r.wantTruncate():
		rp.truncate, rp.truncating = false, true
		rd.Truncate, rd.TruncateTo = true, rp.truncateTo
	case rp.haveRepl && r.fenceErr == nil:
		rd.Replicate, rd.ReplicateWork = true, r.planReplicate()
	case r.wantFetch():
		rp.fetching = true
		rd.SendFetch, rd.Fetch = true, r.NextFetch()
	}
}

// Ready returns the work to do now. The flush and checkpoint it returns
// are planned (in flight) from this call on; its Acks and Wakes are
// dropped at Advance. Inputs may arrive between Ready and Advance (the
// driver executing a Ready may feed, say, FlushFailed); what they produce
// comes in the next Ready. Call Advance before the next Ready. The driver
// calls Ready once per loop turn, after the turn's completions: that is
// what makes the flush of a turn a group commit.
func (r *Replica) Ready() Ready {
	if r.handedOut {
		panic("BUG: replica: Ready called twice without Advance")
	}
	r.handedOut = true
	rd := Ready{Acks: r.acks, Wakes: r.wakes, Offsets: r.off, OffsetsChanged: r.off != r.published}
	r.nAcks, r.nWakes = len(r.acks), len(r.wakes)
	r.published = r.off
	if r.wantFlush() && !r.rp.truncating {
		r.flushing, r.flushUpTo, r.flushDue = true, r.off.LogEnd, false
		rd.Flush, rd.FlushUpTo = true, r.off.LogEnd
	}
	r.readyReplication(&rd)
	if r.wantCheckpoint() {
		r.checkpointed = r.off.Flushed
		rd.Checkpoint, rd.CheckpointAt = true, r.off.Flushed
	}
	r.checkpointDue = false
	return rd
}

// Advance tells the replica the last Ready was acted on: its Acks and
// Wakes are dropped (those queued since stay for the next Ready).
func (r *Replica) Advance() {
	if !r.handedOut {
		panic("BUG: replica: Advance without Ready")
	}
	r.handedOut = false
	r.acks = dropFront(r.acks, r.nAcks)
	r.wakes = dropFront(r.wakes, r.nWakes)
	r.nAcks, r.nWakes = 0, 0
}

// dropFront removes the first n elements of s in place.
func dropFront[T any](s []T, n int) []T {
	rest := copy(s, s[n:])
	clear(s[rest:])
	return s[:rest]
}
