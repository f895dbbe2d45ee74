package reactor

import (
	"errors"
	"fmt"
	"time"

	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/replica"
	"github.com/ringmq/ringmq/storage"
)

// The reactor drives the replication outputs of each partition's replica
// (DESIGN.md §17), on the partition's owner:
//
//	controller   updateTopic → applyLead: BecomeLeader{epoch, partition epoch, ISR} here,
//	             BecomeFollower(epoch, leader) elsewhere
//	EpochChanged leader: log.SetLeaderEpoch; parked follower fetches re-read (NOT_LEADER now)
//	SendFetch    the node's fetcher for the leader (replica_follow.go) → msgReplicaAnswer →
//	             rep.Fetched (or rep.FetchFailed)
//	Replicate    log.AppendReplicated(the answer's bytes) → ring write → rep.AppendCompleted
//	Truncate     log.TruncateTo on a goroutine (blocking file calls) → msgTruncated →
//	             rep.TruncateCompleted
//	ProposeISR   expand-isr / shrink-isr through the controller (replica_isr.go)
//	Checkpoint   log.WriteEpochsAsync beside the recovery checkpoint

// replicateToken is the Token of every replicated append: its Ack
// (AckNone) needs no answer, and the write's ioOp holds the bytes until
// the completion, so it names nothing. Produce tokens are slab slots
// (uint32): they never reach it.
const replicateToken = replica.Token(1 << 32)

// applyLead hands p's replica the controller's decision for p (its
// topicInfo's lead). An older decision than the replica's is refused by
// the replica (ErrStaleEpoch) and ignored here.
func (r *Reactor) applyLead(p *partition) {
	if int(p.id) >= len(p.topic.lead) {
		return
	}
	l := &p.topic.lead[p.id]
	self := r.srv.cl.self
	var err error
	switch l.leader {
	case proto.NoNode:
		return // offline: keep the role until a leader is chosen
	case self:
		isr := make([]replica.ID, len(l.isr))
		for i, id := range l.isr {
			isr[i] = replica.ID(id)
		}
		err = p.rep.BecomeLeader(replica.LeaderState{Epoch: int32(l.epoch), PartitionEpoch: l.partEpoch, ISR: isr})
	default:
		err = p.rep.BecomeFollower(int32(l.epoch), replica.ID(l.leader))
	}
	if err != nil && !errors.Is(err, replica.ErrStaleEpoch) {
		r.srv.log.Warn("replica refused the controller's decision", "topic", p.topic.name, "partition", p.id,
			"leader", l.leader, "epoch", l.epoch, "err", err)
	}
	r.touch(p)
}

// stepReplication executes the replication part of rd (stepPartition).
func (r *Reactor) stepReplication(p *partition, rd *replica.Ready) {
	if rd.EpochChanged {
		if rd.Role == replica.RoleLeader {
			if err := p.log.SetLeaderEpoch(rd.LeaderEpoch); err != nil {
				r.srv.log.Error("leader epoch refused by the log", "topic", p.topic.name, "partition", p.id, "err", err)
			}
		}
		r.wakeFollowers(p, false) // fetches parked here re-read: NOT_LEADER, or the new epoch
	}
	if rd.Truncate {
		r.startTruncate(p, rd.TruncateTo)
	}
	if rd.Replicate {
		p.repl.work, p.repl.pending = rd.ReplicateWork, true
		r.startReplicate(p)
	}
	if rd.SendFetch {
		r.srv.follow.want(uint32(p.rep.Leader()), fetchWant{owner: r, part: p, topic: p.topic.name, id: p.id, req: rd.Fetch})
	}
	if rd.ProposeISR {
		r.srv.proposeISR(r, p, rd.ISRChange)
	}
}

// replState is a follower partition's fetched bytes waiting for their
// replicated append.
type replState struct {
	data       []byte // the records of the last answer (aliasing its frame)
	batches    []replica.Batch
	work       replica.Replicate
	pending    bool // work is planned by the replica, not yet written (a roll was pending)
	truncating bool // log.TruncateTo runs on a goroutine: the reactor leaves the log alone
}

// onReplicaAnswer applies a leader's answer for p (or the fetch's failure).
func (r *Reactor) onReplicaAnswer(a *fetchAnswer) {
	p := a.part
	if p.deleted {
		return
	}
	r.touch(p)
	if a.failed || a.hdr.Error != proto.None {
		p.rep.FetchFailed()
		return
	}
	f := replica.Fetched{Token: replicateToken, LeaderEpoch: a.hdr.LeaderEpoch, HighWatermark: a.hdr.HighWatermark,
		Diverging: a.hdr.Diverging, DivergingEpoch: a.hdr.DivergingEpoch, DivergingEnd: a.hdr.DivergingEnd}
	if !a.hdr.Diverging {
		f.Batches = parseBatches(p.repl.batches[:0], a.records)
		p.repl.batches = f.Batches
		p.repl.data = a.records
	}
	if err := p.rep.Fetched(f); err != nil && !errors.Is(err, replica.ErrStaleFetch) && !errors.Is(err, replica.ErrNotFollower) {
		r.srv.log.Warn("replica fetch answer refused", "topic", p.topic.name, "partition", p.id, "err", err)
	}
}

// parseBatches appends the headers of the whole batches of b to dst.
func parseBatches(dst []replica.Batch, b []byte) []replica.Batch {
	for len(b) >= proto.BatchHeaderSize {
		h, err := proto.ParseBatchHeader(b)
		if err != nil || h.Size() > len(b) {
			break
		}
		dst = append(dst, replica.Batch{Base: h.BaseOffset, Last: h.LastOffset(), Epoch: h.LeaderEpoch, Bytes: h.Size(),
			Producer: replica.ProducerBatch{ProducerID: h.ProducerID, Epoch: h.ProducerEpoch,
				BaseSeq: h.BaseSequence, Count: int32(h.RecordCount), MaxTimestamp: h.MaxTimestamp}})
		b = b[h.Size():]
	}
	return dst
}

// startReplicate writes the replicated append the replica planned: the
// first work.Bytes bytes of the last answer, keeping the leader's offsets
// and epochs. A pending roll holds it until msgLogReady (onLogReady).
func (r *Reactor) startReplicate(p *partition) {
	w := p.repl.work
	if w.Bytes > len(p.repl.data) {
		panic(fmt.Sprintf("BUG: reactor: replicated append of %d bytes, the answer holds %d", w.Bytes, len(p.repl.data)))
	}
	op, err := p.log.AppendReplicated(p.repl.data[:w.Bytes])
	if errors.Is(err, storage.ErrRollPending) {
		return // onLogReady tries again
	}
	p.repl.pending = false
	p.repl.data, p.repl.batches = nil, p.repl.batches[:0]
	if err == nil && op.Base != w.Base {
		err = fmt.Errorf("storage planned the replicated append at %d, the replica at %d", op.Base, w.Base)
	}
	if err != nil {
		r.srv.log.Error("replicated append refused; partition fenced", "topic", p.topic.name, "partition", p.id, "err", err)
		p.rep.AppendFailed(w.Base, err)
		r.noteFence(p)
		r.touch(p)
		return
	}
	slot, o := r.ops.alloc()
	*o = ioOp{part: p, append: op, replicated: true, wbuf: op.Buf, wpos: op.Pos}
	r.ring.PrepareWrite(op.Fd, op.Buf, uint64(op.Pos), makeUD(udWrite, 0, slot))
	r.srv.metrics.replicated(len(op.Buf))
}

// startTruncate runs log.TruncateTo off the reactor: it makes blocking
// file calls (fdatasync, unlink, fallocate). Nothing is in flight (the
// replica asks only then); the reactor leaves the log alone until
// msgTruncated.
func (r *Reactor) startTruncate(p *partition, off uint64) {
	p.repl.truncating = true
	r.truncateAfter(p, off, 0)
}

// truncateAfter runs p.log.TruncateTo(off) on a goroutine after pause and
// posts the result to the owner.
func (r *Reactor) truncateAfter(p *partition, off uint64, pause time.Duration) {
	mb, fl := r.mb, &r.srv.follow
	fl.truncs.Add(1)
	go func() {
		defer fl.truncs.Done()
		if pause > 0 {
			select { // a retry's pause, off the reactor
			case <-time.After(pause):
			case <-fl.stop:
			}
		}
		err := p.log.TruncateTo(off)
		var snap *replica.ProducerSnapshot
		if err == nil {
			snap = truncatedProducers(p)
		}
		mb.post(message{kind: msgTruncated, part: p, base: off, err: err, prodSnap: snap})
	}()
}

// truncatedProducers rebuilds the producer state of p's log just cut (on
// the truncation's goroutine): the replica's TruncateTo forgets the
// batches past the cut and, with them, a producer whose remembered batches
// all were; its older batches are still in the log. A new leader that
// forgot a producer answers its next batch UNKNOWN_PRODUCER_ID, and the
// client then starts over in a new epoch, storing its unresolved batches
// again. nil: not rebuilt (the replica's own truncation stands; a
// snapshot file that could not be replaced may still be past the cut).
func truncatedProducers(p *partition) *replica.ProducerSnapshot {
	if p.log.LogEnd() == p.log.LogStart() {
		return nil
	}
	snap, _, err := rebuildProducers(p.log)
	if err != nil {
		return nil
	}
	// A snapshot on disk past the cut describes batches the log no longer
	// holds; once the log grows past it again, a recovery would take it.
	// Both files become the rebuilt state, durably, before the log moves
	// on (TruncateTo waited for the snapshot writes queued before it).
	data := replica.AppendProducerSnapshot(nil, snap)
	for _, name := range []string{producerSnapshotPrev, producerSnapshotFile} {
		if err := p.log.WriteFile(name, data); err != nil {
			return nil
		}
	}
	return snap
}

// onTruncated completes a truncation on the owner; a failed one is tried
// again after a second.
func (r *Reactor) onTruncated(p *partition, off uint64, err error, snap *replica.ProducerSnapshot) {
	if err != nil {
		r.srv.log.Error("follower truncation failed; retrying", "topic", p.topic.name, "partition", p.id, "offset", off, "err", err)
		if !r.stopping && !p.deleted {
			r.truncateAfter(p, off, time.Second)
		}
		return
	}
	p.repl.truncating = false
	if p.deleted {
		return
	}
	if err := p.rep.TruncateCompleted(off); err != nil {
		panic(fmt.Sprintf("BUG: reactor: %s/%d: %v", p.topic.name, p.id, err))
	}
	if snap != nil && snap.Offset == off {
		if err := p.rep.Producers().Restore(snap, off); err != nil {
			r.srv.log.Warn("producer state not rebuilt after a truncation", "topic", p.topic.name, "partition", p.id, "err", err)
		} else {
			p.prod.snapAt, p.prod.snapOff = r.now, off // written by truncatedProducers
		}
	}
	r.srv.metrics.truncated()
	r.srv.log.Info("follower truncated its log", "topic", p.topic.name, "partition", p.id, "offset", off)
	r.publishStats(p, p.log.Stats(), false)
	r.touch(p)
}

// followerLag is, on p's leader, the largest lag of p's followers behind
// its log end (their match offsets); 0 on a follower. A follower that has
// not fetched in this leadership counts as far behind as the whole log.
func (r *Reactor) followerLag(p *partition, logEnd uint64) uint64 {
	if role, _ := p.rep.Role(); role != replica.RoleLeader || int(p.id) >= len(p.topic.lead) {
		return 0
	}
	var lag uint64
	for _, id := range p.topic.lead[p.id].replicas {
		if id == r.srv.cl.self {
			continue
		}
		_, match, ok := p.rep.FollowerLEO(replica.ID(id))
		if !ok {
			match = 0
		}
		lag = max(lag, logEnd-min(match, logEnd))
	}
	return lag
}
