package replica

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Errors of the idempotent-producer check (CheckProducer). Check them with
// errors.Is.
var (
	// ErrOutOfOrderSequence: the batch's base sequence is not the next one
	// the producer owes (a gap, a range overlapping an appended one, or a
	// new epoch not starting at 0). Wire: OUT_OF_ORDER_SEQUENCE.
	ErrOutOfOrderSequence = errors.New("replica: out of order sequence number")
	// ErrProducerFenced: the batch's epoch is older than the producer's
	// current one; a newer instance of the producer took over. Wire:
	// PRODUCER_FENCED, not retriable.
	ErrProducerFenced = errors.New("replica: producer epoch is older than the current one")
	// ErrDuplicateInFlight: the batch is a retry of one still being written.
	// Retriable: once the write completes a retry is answered with the
	// original offsets (or, if the write failed, appended).
	ErrDuplicateInFlight = errors.New("replica: duplicate of a batch still being written; retry")
	// ErrUnknownProducer: the partition has no state for the producer (new,
	// or forgotten: expired, or truncated away) and the batch does not
	// start its epoch at sequence 0. A client retries it after an earlier
	// batch still unanswered; with none, its state here is lost and it
	// starts over with a new epoch (Kafka's KIP-360). Wire:
	// UNKNOWN_PRODUCER_ID, not retriable as such.
	ErrUnknownProducer = errors.New("replica: unknown producer and the batch does not start at sequence 0")
	// ErrTooManyProducers: a new producer while the partition already
	// remembers Config.MaxProducers; retriable once some expire. Wire: a
	// retriable code (the partition is busy), not a fatal one.
	ErrTooManyProducers = errors.New("replica: too many producers on the partition")
	// ErrBadProducerBatch: an idempotent batch with a negative epoch or base
	// sequence, or a record count < 1. Wire: INVALID_REQUEST.
	ErrBadProducerBatch = errors.New("replica: invalid producer fields in batch")
	// ErrReplay: a log batch handed to Replay overlaps what the state covers.
	ErrReplay = errors.New("replica: log batch overlaps the producer state")
	// ErrSnapshotAhead: Restore of a snapshot that covers offsets the log no
	// longer has (its offset is past the recovered log end).
	ErrSnapshotAhead = errors.New("replica: producer snapshot is ahead of the log")
)

// NoProducer is the producer id of a batch that is not idempotent (any
// negative id is treated the same).
const NoProducer int64 = -1

// ProducerBatches is how many of a producer's latest batches are
// remembered, so a retry of any of them is answered with its offsets.
// It is Kafka's number, and the most requests per partition an
// idempotent client may have in flight.
const ProducerBatches = 5

// DefaultProducerIdleExpiry is Config.ProducerIdleExpiry when 0 (Kafka's
// producer.id.expiration.ms).
const DefaultProducerIdleExpiry = 24 * time.Hour

// DefaultMaxProducers is Config.MaxProducers when 0: about 2 MB of
// producer state per partition at most.
const DefaultMaxProducers = 10_000

// ProducerBatch is the producer header of one record batch: its producer
// id, epoch and base sequence, its record count and its max timestamp (as
// stored, in unix milliseconds). The zero Count, or a negative ProducerID,
// means the batch is not idempotent.
type ProducerBatch struct {
	ProducerID   int64
	Epoch        int16
	BaseSeq      int32
	Count        int32
	MaxTimestamp int64
}

func (b ProducerBatch) idempotent() bool { return b.ProducerID >= 0 && b.Count != 0 }

// LastSeq is the sequence of the batch's last record. Sequences wrap from
// math.MaxInt32 to 0, as Kafka's do.
func (b ProducerBatch) LastSeq() int32 {
	return addSeq(b.BaseSeq, b.Count-1)
}

func addSeq(seq, n int32) int32 {
	if seq > math.MaxInt32-n {
		return n - (math.MaxInt32 - seq) - 1
	}
	return seq + n
}

// nextSeq reports whether next is the sequence that follows last.
func nextSeq(last, next int32) bool {
	return int64(next) == int64(last)+1 || (next == 0 && last == math.MaxInt32)
}

// LogBatch is a batch header as recovery reads it from the log, or as a
// follower replicates it: its producer header and the offsets it holds.
type LogBatch struct {
	ProducerBatch
	BaseOffset, LastOffset uint64
}

// Duplicate is CheckProducer's answer for a retry of a remembered batch:
// Found, and the offsets the original was appended at.
type Duplicate struct {
	Found      bool
	Base, Last uint64
}

// batchMeta is a remembered batch of a producer.
type batchMeta struct {
	firstSeq, lastSeq int32
	base, last        uint64
	maxTimestamp      int64
}

// producerEntry is one producer's state: its epoch and up to
// ProducerBatches of its latest appended batches (all of that epoch),
// oldest first from head, plus a summary of its batches in flight.
type producerEntry struct {
	epoch   int16
	n, head uint8
	batches [ProducerBatches]batchMeta

	// inflight counts its planned batches not yet visible or dropped;
	// pendEpoch and pendLast are the epoch and last sequence of the newest.
	inflight  int32
	pendEpoch int16
	pendLast  int32
}

func (e *producerEntry) at(i int) *batchMeta {
	return &e.batches[(int(e.head)+i)%ProducerBatches]
}

func (e *producerEntry) newest() *batchMeta { return e.at(int(e.n) - 1) }

// add remembers a batch appended by the producer, forgetting the oldest
// past ProducerBatches; a batch of another epoch starts over.
func (e *producerEntry) add(epoch int16, m batchMeta) {
	if e.n > 0 && epoch != e.epoch {
		e.n, e.head = 0, 0
	}
	e.epoch = epoch
	if e.n == ProducerBatches {
		e.batches[e.head] = m
		e.head = (e.head + 1) % ProducerBatches
		return
	}
	e.n++
	*e.at(int(e.n) - 1) = m
}

// tail is the epoch and last sequence the producer's next batch follows:
// its newest batch in flight, else its newest appended one.
func (e *producerEntry) tail() (epoch int16, last int32) {
	if e.inflight > 0 {
		return e.pendEpoch, e.pendLast
	}
	return e.epoch, e.newest().lastSeq
}

// pendingBatch is a planned idempotent batch, not yet visible.
type pendingBatch struct {
	b          ProducerBatch
	base, last uint64
}

// ProducerState is the idempotent-producer state of one partition: for
// each producer id its epoch and its last ProducerBatches batches'
// sequence ranges, offsets and timestamps, as of the batches visible in
// the log (below End), plus the batches planned and not yet visible. A
// Replica owns one (Producers); recovery builds it with Restore and
// Replay. It does no I/O and is not safe for concurrent use.
type ProducerState struct {
	producers map[int64]*producerEntry
	// pending: planned idempotent batches not yet visible, in offset order.
	pending fifo[pendingBatch]
	// end: the state covers every batch below it and none at or after.
	end uint64
	// limit: Check refuses a new producer while this many are remembered
	// (0: no limit).
	limit int
}

// End is the offset the state covers up to: every batch below it was
// applied, none at or after it.
func (s *ProducerState) End() uint64 { return s.end }

// SetMaxProducers makes Check refuse a new producer while n are
// remembered (0: no limit). Restore, Replay and a follower's appends are
// not limited: the log is the truth.
func (s *ProducerState) SetMaxProducers(n int) { s.limit = n }

// Len is the number of producers remembered.
func (s *ProducerState) Len() int { return len(s.producers) }

// Check decides what to do with an incoming batch b: append it (a zero
// Duplicate and nil), answer it with the offsets of the original it
// repeats (Duplicate.Found) without writing it, or refuse it with
// ErrOutOfOrderSequence, ErrProducerFenced, ErrDuplicateInFlight,
// ErrUnknownProducer, ErrTooManyProducers or ErrBadProducerBatch. It
// changes nothing; a batch it allows is remembered once the append is
// planned (Replica.AppendPlanned) and becomes part of the state when it
// is visible. A batch that is not idempotent is always allowed. The
// answers that allow a batch do not allocate (refusals format an error).
//
// The batch is checked against the producer's newest batch, in flight or
// appended: the same epoch must continue its sequence (wrapping after
// math.MaxInt32), a newer epoch must start at sequence 0, an older one is
// fenced. A producer the state does not know (new, expired, or whose
// batches a truncation removed) must start at sequence 0 too: Kafka takes
// any sequence there, but then a new producer whose first batch was
// refused (a fence, too few in-sync replicas) could have its pipelined
// second batch appended before it, a gap no retry can fill.
func (s *ProducerState) Check(b ProducerBatch) (Duplicate, error) {
	if b.ProducerID < 0 {
		return Duplicate{}, nil
	}
	if b.Epoch < 0 || b.BaseSeq < 0 || b.Count < 1 {
		return Duplicate{}, fmt.Errorf("%w: producer %d epoch %d base sequence %d count %d",
			ErrBadProducerBatch, b.ProducerID, b.Epoch, b.BaseSeq, b.Count)
	}
	e := s.producers[b.ProducerID]
	if e == nil {
		switch {
		case b.BaseSeq != 0:
			return Duplicate{}, fmt.Errorf("%w: producer %d epoch %d sequence %d", ErrUnknownProducer, b.ProducerID, b.Epoch, b.BaseSeq)
		case s.limit > 0 && len(s.producers) >= s.limit:
			return Duplicate{}, fmt.Errorf("%w: %d remembered", ErrTooManyProducers, len(s.producers))
		}
		return Duplicate{}, nil
	}
	epoch, last := e.tail()
	switch {
	case b.Epoch < epoch:
		return Duplicate{}, fmt.Errorf("%w: producer %d epoch %d, current %d", ErrProducerFenced, b.ProducerID, b.Epoch, epoch)
	case b.Epoch > epoch:
		if b.BaseSeq != 0 {
			return Duplicate{}, fmt.Errorf("%w: producer %d new epoch %d starts at sequence %d, not 0",
				ErrOutOfOrderSequence, b.ProducerID, b.Epoch, b.BaseSeq)
		}
		return Duplicate{}, nil
	case nextSeq(last, b.BaseSeq):
		return Duplicate{}, nil
	}
	return s.checkRetry(e, b, last)
}

// checkRetry handles a batch of the current epoch that does not follow
// the producer's newest: a retry of a remembered or an in-flight batch,
// or out of order.
func (s *ProducerState) checkRetry(e *producerEntry, b ProducerBatch, last int32) (Duplicate, error) {
	lastSeq := b.LastSeq()
	if e.n > 0 && e.epoch == b.Epoch {
		for i := 0; i < int(e.n); i++ {
			if m := e.at(i); m.firstSeq == b.BaseSeq && m.lastSeq == lastSeq {
				return Duplicate{Found: true, Base: m.base, Last: m.last}, nil
			}
		}
	}
	if e.inflight > 0 {
		for i := 0; i < s.pending.len(); i++ {
			p := s.pending.at(i)
			if p.b.ProducerID == b.ProducerID && p.b.Epoch == b.Epoch && p.b.BaseSeq == b.BaseSeq && p.b.LastSeq() == lastSeq {
				return Duplicate{}, fmt.Errorf("%w: producer %d sequences %d-%d at offsets %d-%d",
					ErrDuplicateInFlight, b.ProducerID, b.BaseSeq, lastSeq, p.base, p.last)
			}
		}
	}
	return Duplicate{}, fmt.Errorf("%w: producer %d epoch %d: sequence %d after %d",
		ErrOutOfOrderSequence, b.ProducerID, b.Epoch, b.BaseSeq, last)
}

// planned remembers an idempotent batch planned at offsets base..last.
// It allocates only for a producer it does not know yet.
func (s *ProducerState) planned(b ProducerBatch, base, last uint64) {
	e := s.producers[b.ProducerID]
	if e == nil {
		if s.producers == nil {
			s.producers = make(map[int64]*producerEntry)
		}
		e = &producerEntry{}
		s.producers[b.ProducerID] = e
	}
	e.inflight++
	e.pendEpoch, e.pendLast = b.Epoch, b.LastSeq()
	s.pending.push(pendingBatch{b: b, base: base, last: last})
}

// visible applies the append at base..last, now visible in the log: the
// planned batch there, if any, joins its producer's state.
func (s *ProducerState) visible(base, last uint64) {
	if s.pending.len() > 0 && s.pending.front().base == base {
		p := *s.pending.front()
		s.pending.pop()
		e := s.producers[p.b.ProducerID]
		e.inflight--
		e.add(p.b.Epoch, batchMeta{firstSeq: p.b.BaseSeq, lastSeq: p.b.LastSeq(), base: p.base, last: p.last, maxTimestamp: p.b.MaxTimestamp})
	}
	s.end = last + 1
}

// dropped forgets the planned append at base: it will never be visible
// (a failed write, or one after it). Every later planned batch is dropped
// too, so while some of a producer's are still in flight its in-flight
// tail may name a dropped one; the replica is fenced until they are all
// out (CheckProducer refuses), and then the tail is its visible newest.
func (s *ProducerState) dropped(base uint64) {
	if s.pending.len() == 0 || s.pending.front().base != base {
		return
	}
	id := s.pending.front().b.ProducerID
	s.pending.pop()
	e := s.producers[id]
	e.inflight--
	if e.inflight == 0 && e.n == 0 {
		delete(s.producers, id)
	}
}

// Replay applies a batch read from the log (recovery, after Restore) or
// replicated from the leader (a follower): the log is the truth, so it is
// not checked against the state, and a batch of another epoch starts the
// producer over. Batches must come in offset order; one wholly below End
// is skipped (already covered), one straddling End is ErrReplay. Batches
// that are not idempotent only move End.
func (s *ProducerState) Replay(lb LogBatch) error {
	switch {
	case lb.LastOffset < lb.BaseOffset:
		return fmt.Errorf("%w: batch at offsets %d-%d", ErrReplay, lb.BaseOffset, lb.LastOffset)
	case lb.LastOffset < s.end:
		return nil
	case lb.BaseOffset < s.end:
		return fmt.Errorf("%w: batch at offsets %d-%d, state covers up to %d", ErrReplay, lb.BaseOffset, lb.LastOffset, s.end)
	case s.pending.len() > 0:
		return fmt.Errorf("%w: batches in flight", ErrBusy)
	}
	if lb.idempotent() {
		s.apply(lb.ProducerID, lb.Epoch, batchMeta{firstSeq: lb.BaseSeq, lastSeq: lb.LastSeq(),
			base: lb.BaseOffset, last: lb.LastOffset, maxTimestamp: lb.MaxTimestamp})
	}
	s.end = lb.LastOffset + 1
	return nil
}

func (s *ProducerState) apply(id int64, epoch int16, m batchMeta) {
	e := s.producers[id]
	if e == nil {
		if s.producers == nil {
			s.producers = make(map[int64]*producerEntry)
		}
		e = &producerEntry{}
		s.producers[id] = e
	}
	e.add(epoch, m)
}

// Expire forgets every producer with nothing in flight whose newest batch's
// max timestamp is idle or more before now, and returns how many it
// forgot. Like Kafka it measures idleness with the batches' own timestamps,
// so a state rebuilt from the log expires the same producers. A later
// batch of a forgotten producer is ErrUnknownProducer unless it starts at
// sequence 0 (Check).
func (s *ProducerState) Expire(now time.Time, idle time.Duration) int {
	nowMs, idleMs := now.UnixMilli(), idle.Milliseconds()
	n := 0
	for id, e := range s.producers {
		if e.inflight == 0 && e.n > 0 && nowMs-e.newest().maxTimestamp >= idleMs {
			delete(s.producers, id)
			n++
		}
	}
	return n
}

// TruncateTo forgets every batch at or after end (the log was cut there);
// a producer left with no batch is forgotten. What was forgotten beyond
// the last ProducerBatches cannot come back: a driver that needs the exact
// state rebuilds it (Restore of an older snapshot, then Replay).
func (s *ProducerState) TruncateTo(end uint64) error {
	if s.pending.len() > 0 {
		return fmt.Errorf("%w: batches in flight", ErrBusy)
	}
	for id, e := range s.producers {
		for e.n > 0 && e.newest().last >= end {
			e.n--
		}
		if e.n == 0 {
			delete(s.producers, id)
		}
	}
	s.end = min(s.end, end)
	return nil
}

// Lookup returns a producer's epoch and the last sequence of its newest
// appended batch; ok is false for a producer the state does not know or
// whose first batch is still in flight.
func (s *ProducerState) Lookup(id int64) (epoch int16, lastSeq int32, ok bool) {
	e := s.producers[id]
	if e == nil || e.n == 0 {
		return 0, 0, false
	}
	return e.epoch, e.newest().lastSeq, true
}

// CheckProducer is the idempotent-producer check of an incoming batch
// (ProducerState.Check), after CheckAppend allowed the append: the fence
// error when fenced, else Check's answer. The driver calls it before
// storage's PrepareAppend and then passes the batch in Append.Producer. An
// idempotent batch must be the only batch of its produce part (Kafka's
// rule for produce v3+); the driver refuses a part that mixes one with
// others. It does not allocate.
func (r *Replica) CheckProducer(b ProducerBatch) (Duplicate, error) {
	if r.fenceErr != nil {
		return Duplicate{}, r.fenceErr
	}
	return r.prod.Check(b)
}

// Producers returns the replica's producer state: Restore and Replay it
// at recovery, before the first append; Snapshot it beside each recovery
// checkpoint. A follower needs no Replay of what it replicates: the
// header it passes in Append.Producer takes the same path (unchecked).
func (r *Replica) Producers() *ProducerState { return &r.prod }

// ExpireProducers forgets producers idle for Config.ProducerIdleExpiry
// (ProducerState.Expire) and returns how many. The driver calls it on a
// timer of its own (Kafka checks every 10 minutes).
func (r *Replica) ExpireProducers(now time.Time) int {
	return r.prod.Expire(now, r.cfg.ProducerIdleExpiry)
}
