package reactor

import (
	"errors"
	"time"

	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/replica"
)

// Idempotent producers (DESIGN.md §12.1): the owner of a partition asks
// its replica's producer state about every idempotent batch before it
// plans the append (checkProducer), answers a retry of an appended batch
// with the original offsets without writing it, writes the producer
// state's snapshot beside the recovery checkpoint (on the store's worker)
// and expires idle producers with retention. Recovery of the state at open
// is producer_recover.go, producer ids producer_ids.go.

// producerSnapshotFile is the snapshot beside a partition's recovery
// checkpoint, and producerSnapshotPrev the one before it (kept so a
// snapshot a power cut left ahead of the log has a fallback).
const (
	producerSnapshotFile = "producers.snapshot"
	producerSnapshotPrev = "producers.snapshot.prev"
)

// producerSnapshotEvery is the least time between two producer snapshots of
// a partition: each costs a file write and fdatasync on the store's worker,
// and recovery replays only the batch headers written since the last one.
const producerSnapshotEvery = 10 * time.Second

// producerSide is a partition's idempotence bookkeeping on its owner.
type producerSide struct {
	snapAt  time.Time // the last snapshot taken
	snapOff uint64    // its offset
}

// checkProducer runs the idempotent-producer check of a produce part on
// its owner, after CheckAppend allowed it and before storage plans it. It
// returns the producer header to hand to AppendPlanned and done=false when
// the part is to be appended; done=true when the part was answered here
// (refused, or a duplicate whose ack the replica releases). A part that is
// not idempotent passes with the zero header. It does not allocate when it
// allows the part.
func (r *Reactor) checkProducer(q *request, origin *Reactor, ti, pi int, part *partition, level replica.Level) (replica.ProducerBatch, bool) {
	records := q.produce.Topics[ti].Partitions[pi].Records
	h, err := proto.ParseBatchHeader(records)
	if err != nil || h.ProducerID < 0 {
		return replica.ProducerBatch{}, false // storage validates the part
	}
	if h.Size() != len(records) {
		// Kafka's rule for idempotent produce: one batch per partition.
		r.partResult(q, origin, ti, pi, proto.InvalidRequest, 0, 0)
		return replica.ProducerBatch{}, true
	}
	b := replica.ProducerBatch{ProducerID: h.ProducerID, Epoch: h.ProducerEpoch, BaseSeq: h.BaseSequence,
		Count: int32(h.RecordCount), MaxTimestamp: h.MaxTimestamp}
	dup, err := part.rep.CheckProducer(b)
	switch {
	case err != nil:
		r.partResult(q, origin, ti, pi, producerErrorCode(err), 0, 0)
		return b, true
	case dup.Found:
		r.srv.metrics.duplicate()
		tok := r.acks.put(ackEntry{req: q, origin: origin, ti: int32(ti), pi: int32(pi), part: part})
		part.rep.AckDuplicate(replica.Token(tok), level, dup)
		r.touch(part)
		return b, true
	}
	return b, false
}

// producerErrorCode maps a refusal of CheckProducer to its wire code.
func producerErrorCode(err error) proto.ErrorCode {
	switch {
	case errors.Is(err, replica.ErrFenced):
		return proto.PartitionFenced
	case errors.Is(err, replica.ErrOutOfOrderSequence):
		return proto.OutOfOrderSequence
	case errors.Is(err, replica.ErrProducerFenced):
		return proto.ProducerFenced
	case errors.Is(err, replica.ErrUnknownProducer):
		return proto.UnknownProducerID
	case errors.Is(err, replica.ErrDuplicateInFlight):
		return proto.DuplicateInFlight
	case errors.Is(err, replica.ErrTooManyProducers):
		return proto.TooManyProducers
	case errors.Is(err, replica.ErrBadProducerBatch):
		return proto.InvalidRequest
	}
	return proto.Unknown
}

// snapshotProducers writes the partition's producer state beside the
// checkpoint the replica just asked for, at most every
// producerSnapshotEvery and only when the log moved since the last one.
// The encoding happens here (no I/O); the file is written by the store's
// worker, after the checkpoint queued before it.
func (r *Reactor) snapshotProducers(p *partition) {
	ps := p.rep.Producers()
	if ps.End() == p.prod.snapOff || r.now.Sub(p.prod.snapAt) < producerSnapshotEvery {
		return
	}
	snap := ps.Snapshot()
	p.prod.snapAt, p.prod.snapOff = r.now, snap.Offset
	p.log.WriteFileAsync(producerSnapshotFile, producerSnapshotPrev, replica.AppendProducerSnapshot(nil, &snap))
}

// expireProducers forgets the idle producers of p (with retention).
func (r *Reactor) expireProducers(p *partition) {
	if n := p.rep.ExpireProducers(r.now); n > 0 {
		r.srv.log.Debug("idle producers expired", "topic", p.topic.name, "partition", p.id, "count", n)
	}
}
