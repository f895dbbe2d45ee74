package replica

import (
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
)

// pb is an idempotent batch of producer id with the given epoch, base
// sequence and record count, stamped at ts milliseconds.
func pb(id int64, epoch int16, seq, count int32, ts int64) ProducerBatch {
	return ProducerBatch{ProducerID: id, Epoch: epoch, BaseSeq: seq, Count: count, MaxTimestamp: ts}
}

// offer checks b as a reactor would and, when it is new, plans its append
// (Count offsets, AckLeader). It returns the planned base (or the original
// offsets of a duplicate) and the check's error.
func (d *driver) offer(b ProducerBatch) (base uint64, dup Duplicate, err error) {
	d.t.Helper()
	if err := d.r.CheckAppend(AckLeader); err != nil {
		return 0, Duplicate{}, err
	}
	dup, err = d.r.CheckProducer(b)
	if err != nil || dup.Found {
		return 0, dup, err
	}
	base = d.r.next
	n := uint64(max(b.Count, 1))
	d.r.AppendPlanned(Append{Base: base, Last: base + n - 1, Bytes: 10 * int(n), Level: AckLeader, Token: Token(base), Producer: b})
	return base, Duplicate{}, nil
}

// write offers b and completes its append; it must be new.
func (d *driver) write(b ProducerBatch) uint64 {
	d.t.Helper()
	base, dup, err := d.offer(b)
	if err != nil || dup.Found {
		d.t.Fatalf("batch %+v: duplicate %+v, error %v; want it appended", b, dup, err)
	}
	must(d.t, d.r.AppendCompleted(base))
	return base
}

func (d *driver) expectDup(b ProducerBatch, base, last uint64) {
	d.t.Helper()
	next := d.r.next
	_, dup, err := d.offer(b)
	if err != nil || dup != (Duplicate{Found: true, Base: base, Last: last}) {
		d.t.Fatalf("retry of %+v: duplicate %+v, error %v; want the original offsets %d-%d", b, dup, err, base, last)
	}
	if d.r.next != next {
		d.t.Fatalf("a duplicate was planned: next offset %d, was %d", d.r.next, next)
	}
}

func (d *driver) expectRefused(b ProducerBatch, want error) {
	d.t.Helper()
	next := d.r.next
	_, dup, err := d.offer(b)
	if !errors.Is(err, want) || dup.Found {
		d.t.Fatalf("batch %+v: duplicate %+v, error %v; want %v", b, dup, err, want)
	}
	if d.r.next != next {
		d.t.Fatalf("a refused batch was planned: next offset %d, was %d", d.r.next, next)
	}
}

func (d *driver) expectTail(id int64, epoch int16, lastSeq int32) {
	d.t.Helper()
	e, l, ok := d.r.Producers().Lookup(id)
	if !ok || e != epoch || l != lastSeq {
		d.t.Fatalf("producer %d: epoch %d last sequence %d (known %v), want epoch %d last sequence %d", id, e, l, ok, epoch, lastSeq)
	}
}

// A retry of any of the last five batches is answered with the original
// offsets and not written; an older one is out of order.
func TestProducerDuplicateAnsweredWithOriginalOffsets(t *testing.T) {
	d := newDriver(t, intervalConfig(), Offsets{})
	d.write(pb(-1, 0, 0, 4, 0)) // offsets 0-3, not idempotent
	var bases []uint64
	for i := int32(0); i < 7; i++ {
		bases = append(bases, d.write(pb(7, 0, 3*i, 3, 100)))
	}
	d.expectTail(7, 0, 20)
	for i := 2; i < 7; i++ { // the last five
		d.expectDup(pb(7, 0, 3*int32(i), 3, 100), bases[i], bases[i]+2)
	}
	d.expectRefused(pb(7, 0, 3, 3, 100), ErrOutOfOrderSequence)  // forgotten (sixth newest)
	d.expectRefused(pb(7, 0, 18, 2, 100), ErrOutOfOrderSequence) // same start, other range
	d.expectRefused(pb(8, 0, 18, 3, 100), ErrUnknownProducer)    // a new producer starts at 0
	b8 := d.write(pb(8, 0, 0, 3, 100))
	d.expectDup(pb(8, 0, 0, 3, 100), b8, b8+2)
	d.write(pb(7, 0, 21, 1, 100))                           // the next in sequence is new
	d.expectOffsets(Offsets{HighWatermark: 29, LogEnd: 29}) // 4 + 21 + 3 + 1, each written once
}

// A gap in sequence is refused with ErrOutOfOrderSequence and nothing is
// written; the next batch in sequence is still taken.
func TestProducerGapRefused(t *testing.T) {
	d := newDriver(t, intervalConfig(), Offsets{})
	d.write(pb(1, 0, 0, 2, 0))
	d.expectRefused(pb(1, 0, 3, 1, 0), ErrOutOfOrderSequence) // skips sequence 2
	d.expectRefused(pb(1, 0, 1, 2, 0), ErrOutOfOrderSequence) // overlaps 0-1
	d.expectTail(1, 0, 1)
	d.write(pb(1, 0, 2, 5, 0))
	d.expectTail(1, 0, 6)
	d.expectRefused(pb(1, 0, -1, 1, 0), ErrBadProducerBatch)
	d.expectRefused(pb(1, 0, 7, 0, 0), ErrBadProducerBatch)
	d.expectRefused(pb(1, -2, 7, 1, 0), ErrBadProducerBatch)
}

// An older epoch is fenced; a newer one must start at sequence 0 and then
// replaces the producer's batches.
func TestProducerEpochFencingAndBump(t *testing.T) {
	d := newDriver(t, intervalConfig(), Offsets{})
	b0 := d.write(pb(5, 1, 0, 3, 0))
	d.write(pb(5, 1, 3, 3, 0))
	d.expectRefused(pb(5, 0, 6, 1, 0), ErrProducerFenced)
	d.expectRefused(pb(5, 0, 0, 3, 0), ErrProducerFenced) // even a retry
	d.expectRefused(pb(5, 2, 6, 1, 0), ErrOutOfOrderSequence)
	d.expectDup(pb(5, 1, 0, 3, 0), b0, b0+2)
	b2 := d.write(pb(5, 2, 0, 2, 0))
	d.expectTail(5, 2, 1)
	d.expectRefused(pb(5, 1, 6, 1, 0), ErrProducerFenced)
	d.expectRefused(pb(5, 1, 0, 3, 0), ErrProducerFenced) // the old epoch's batches are gone
	d.expectDup(pb(5, 2, 0, 2, 0), b2, b2+1)
	if snap := d.r.Producers().Snapshot(); len(snap.Producers) != 1 || len(snap.Producers[0].Batches) != 1 {
		t.Fatalf("after the epoch bump the producer keeps %+v, want its one batch of epoch 2", snap.Producers)
	}
	// A bump while the old epoch's batch is in flight: checked against it.
	base, _, err := d.offer(pb(5, 2, 2, 1, 0))
	must(t, err)
	d.expectRefused(pb(5, 2, 3, 1, 0).withEpoch(1), ErrProducerFenced)
	if _, _, err := d.offer(pb(5, 3, 0, 1, 0)); err != nil {
		t.Fatalf("epoch 3 from sequence 0 with epoch 2 in flight: %v", err)
	}
	d.expectRefused(pb(5, 2, 3, 1, 0), ErrProducerFenced) // the newest in flight is epoch 3
	must(t, d.r.AppendCompleted(base))
	must(t, d.r.AppendCompleted(base+1))
	d.expectTail(5, 3, 0)
}

func (b ProducerBatch) withEpoch(e int16) ProducerBatch { b.Epoch = e; return b }

// Sequences wrap from math.MaxInt32 to 0, as Kafka's do.
func TestProducerSequenceWraps(t *testing.T) {
	if got := pb(1, 0, math.MaxInt32-2, 5, 0).LastSeq(); got != 1 {
		t.Fatalf("last sequence of 5 records from MaxInt32-2: %d, want 1", got)
	}
	if got := pb(1, 0, math.MaxInt32, 1, 0).LastSeq(); got != math.MaxInt32 {
		t.Fatalf("last sequence of 1 record at MaxInt32: %d", got)
	}
	d := newDriver(t, intervalConfig(), Offsets{})
	d.write(pb(1, 0, 0, math.MaxInt32-4, 0)) // sequences 0 .. MaxInt32-5
	d.write(pb(1, 0, math.MaxInt32-4, 3, 0))
	b1 := d.write(pb(1, 0, math.MaxInt32-1, 2, 0))
	d.expectTail(1, 0, math.MaxInt32)
	d.expectRefused(pb(1, 0, 1, 1, 0), ErrOutOfOrderSequence)
	b2 := d.write(pb(1, 0, 0, 3, 0))
	d.write(pb(1, 0, 3, 1, 0))
	d.expectDup(pb(1, 0, math.MaxInt32-1, 2, 0), b1, b1+1)
	d.expectDup(pb(1, 0, 0, 3, 0), b2, b2+2)
	// A batch that itself wraps.
	d2 := newDriver(t, intervalConfig(), Offsets{})
	d2.write(pb(2, 0, 0, math.MaxInt32-1, 0))       // sequences 0 .. MaxInt32-2
	bw := d2.write(pb(2, 0, math.MaxInt32-1, 4, 0)) // sequences MaxInt32-1 .. 1
	d2.expectTail(2, 0, 1)
	d2.expectDup(pb(2, 0, math.MaxInt32-1, 4, 0), bw, bw+3)
	d2.write(pb(2, 0, 2, 1, 0))
}

// A batch that is not idempotent bypasses the state: written every time.
func TestProducerNonIdempotentBypasses(t *testing.T) {
	d := newDriver(t, intervalConfig(), Offsets{})
	for i := 0; i < 3; i++ {
		d.write(pb(NoProducer, 9, 0, 2, 0))
		d.write(pb(-7, -1, -1, 2, 0))
	}
	if n := d.r.Producers().Len(); n != 0 {
		t.Fatalf("%d producers remembered from batches that are not idempotent", n)
	}
	d.expectOffsets(Offsets{HighWatermark: 12, LogEnd: 12})
	if d.r.Producers().End() != 12 {
		t.Fatalf("producer state covers up to %d, want the log end 12", d.r.Producers().End())
	}
}

// A producer idle for ProducerIdleExpiry (by its batches' timestamps) is
// forgotten, unless a batch of it is in flight; once forgotten it may
// start at any sequence.
func TestProducerExpiry(t *testing.T) {
	cfg := intervalConfig()
	cfg.ProducerIdleExpiry = time.Minute
	d := newDriver(t, cfg, Offsets{})
	ms := t0.UnixMilli()
	d.write(pb(1, 0, 0, 1, ms))
	d.write(pb(2, 0, 0, 1, ms+30_000))
	base, _, err := d.offer(pb(3, 0, 0, 1, ms-3_600_000)) // old, but in flight
	must(t, err)
	if n := d.r.ExpireProducers(t0.Add(time.Minute - time.Millisecond)); n != 0 {
		t.Fatalf("%d producers expired before their idle time", n)
	}
	if n := d.r.ExpireProducers(t0.Add(time.Minute)); n != 1 {
		t.Fatalf("%d producers expired at producer 1's idle time, want 1", n)
	}
	if _, _, ok := d.r.Producers().Lookup(1); ok {
		t.Fatal("producer 1 still known after it expired")
	}
	d.expectTail(2, 0, 0)
	must(t, d.r.AppendCompleted(base))
	d.expectTail(3, 0, 0)
	if n := d.r.ExpireProducers(t0.Add(2 * time.Minute)); n != 2 {
		t.Fatalf("%d producers expired two minutes on, want 2 (producer 3 once written)", n)
	}
	d.expectRefused(pb(1, 0, 1, 1, ms), ErrUnknownProducer) // forgotten: starts over
	d.write(pb(1, 1, 0, 1, ms))
	d.expectTail(1, 1, 0)
	// The default is Kafka's day.
	r, err := New(intervalConfig(), Offsets{})
	must(t, err)
	if r.cfg.ProducerIdleExpiry != DefaultProducerIdleExpiry {
		t.Fatalf("default idle expiry %v", r.cfg.ProducerIdleExpiry)
	}
	if _, err := New(Config{FlushInterval: time.Second, ProducerIdleExpiry: -1}, Offsets{}); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("negative idle expiry: %v, want ErrBadConfig", err)
	}
}

// A retry of a batch still being written is refused with the retriable
// ErrDuplicateInFlight (never written twice); the batch after it is taken
// (pipelining); once the write completed the retry gets the original
// offsets.
func TestProducerInFlightDuplicate(t *testing.T) {
	d := newDriver(t, intervalConfig(), Offsets{})
	b0, _, err := d.offer(pb(1, 0, 0, 2, 0))
	must(t, err)
	d.expectRefused(pb(1, 0, 0, 2, 0), ErrDuplicateInFlight)
	b1, _, err := d.offer(pb(1, 0, 2, 2, 0)) // next in sequence after the one in flight
	must(t, err)
	d.expectRefused(pb(1, 0, 0, 2, 0), ErrDuplicateInFlight)
	d.expectRefused(pb(1, 0, 2, 2, 0), ErrDuplicateInFlight)
	d.expectRefused(pb(1, 0, 5, 1, 0), ErrOutOfOrderSequence) // a gap after the newest in flight
	if _, _, ok := d.r.Producers().Lookup(1); ok {
		t.Fatal("a producer is known before any of its batches is visible")
	}
	must(t, d.r.AppendCompleted(b1)) // out of order: b1 is not visible yet
	d.expectRefused(pb(1, 0, 2, 2, 0), ErrDuplicateInFlight)
	must(t, d.r.AppendCompleted(b0))
	d.expectDup(pb(1, 0, 0, 2, 0), b0, b0+1)
	d.expectDup(pb(1, 0, 2, 2, 0), b1, b1+1)
	d.expectOffsets(Offsets{HighWatermark: 4, LogEnd: 4})
}

// A batch whose write failed is not remembered: after the reset its retry
// is appended, and the batches planned after it were forgotten too.
func TestProducerFailedWriteNotRemembered(t *testing.T) {
	d := newDriver(t, intervalConfig(), Offsets{})
	b0 := d.write(pb(1, 0, 0, 1, 0))
	b1, _, _ := d.offer(pb(1, 0, 1, 1, 0))
	b2, _, _ := d.offer(pb(1, 0, 2, 1, 0))
	b3, _, _ := d.offer(pb(2, 0, 0, 1, 0)) // a new producer, also lost
	d.r.AppendFailed(b1, errors.New("EIO"))
	if _, err := d.r.CheckProducer(pb(1, 0, 3, 1, 0)); !errors.Is(err, ErrFenced) {
		t.Fatalf("CheckProducer on a fenced replica: %v", err)
	}
	d.r.AppendCompleted(b3)
	d.r.AppendCompleted(b2)
	d.turn()
	must(t, d.r.Reset(Offsets{LogEnd: b1, Flushed: b1}))
	d.expectTail(1, 0, 0)
	if _, _, ok := d.r.Producers().Lookup(2); ok {
		t.Fatal("producer 2 remembered though its only batch was never written")
	}
	d.expectDup(pb(1, 0, 0, 1, 0), b0, b0)
	d.expectRefused(pb(1, 0, 2, 1, 0), ErrOutOfOrderSequence)
	if got := d.write(pb(1, 0, 1, 1, 0)); got != b1 {
		t.Fatalf("retry appended at %d, want %d", got, b1)
	}
	d.write(pb(1, 0, 2, 1, 0))
}

// Reset to a shorter log (a truncation) forgets the batches past it.
func TestProducerResetTruncates(t *testing.T) {
	d := newDriver(t, intervalConfig(), Offsets{})
	d.write(pb(1, 0, 0, 2, 0))
	cut := d.write(pb(1, 0, 2, 2, 0))
	d.write(pb(2, 0, 0, 2, 0))
	d.write(pb(3, 0, 0, 1, 0))
	d.turn()
	must(t, d.r.Reset(Offsets{LogEnd: cut, Flushed: cut}))
	d.expectTail(1, 0, 1)
	if d.r.Producers().Len() != 1 || d.r.Producers().End() != cut {
		t.Fatalf("after truncation to %d: %d producers, state ends at %d", cut, d.r.Producers().Len(), d.r.Producers().End())
	}
	d.write(pb(1, 0, 2, 2, 0))
}

// The live state equals the state recovery rebuilds from a snapshot plus
// the log after it, from the log alone, and on a follower that is handed
// the same batches.
func TestProducerRecoveryFromSnapshotAndLogTail(t *testing.T) {
	d := newDriver(t, intervalConfig(), Offsets{LogEnd: 100, Flushed: 100, LogStart: 100})
	fol := newDriver(t, intervalConfig(), Offsets{LogEnd: 100, Flushed: 100, LogStart: 100})
	var log []LogBatch
	seq := map[int64]int32{}
	epoch := map[int64]int16{}
	var snapBytes []byte
	for i := 0; i < 60; i++ {
		id := int64(i % 4)
		if i%4 == 3 {
			id = NoProducer
		}
		if i == 33 {
			epoch[1], seq[1] = 1, 0
		}
		b := pb(id, epoch[id], seq[id], int32(1+i%3), int64(1000+i))
		base := d.write(b)
		seq[id] += b.Count
		log = append(log, LogBatch{ProducerBatch: b, BaseOffset: base, LastOffset: base + uint64(b.Count) - 1})
		// The follower takes the leader's batch as it is, unchecked.
		fol.r.AppendPlanned(Append{Base: base, Last: base + uint64(b.Count) - 1, Bytes: 1, Level: AckLeader, Producer: b})
		must(t, fol.r.AppendCompleted(base))
		if i == 25 {
			snap := d.r.Producers().Snapshot()
			snapBytes = AppendProducerSnapshot(nil, &snap)
		}
	}
	live := d.r.Producers().Snapshot()
	if len(live.Producers) != 3 || live.Offset != d.r.Offsets().LogEnd {
		t.Fatalf("live state: %+v", live)
	}
	if got := fol.r.Producers().Snapshot(); !reflect.DeepEqual(got, live) {
		t.Fatalf("follower's state\n%+v\nleader's\n%+v", got, live)
	}

	snap, rest, err := ParseProducerSnapshot(snapBytes)
	if err != nil || len(rest) != 0 {
		t.Fatalf("parse snapshot: %v (%d bytes left)", err, len(rest))
	}
	var rec ProducerState
	must(t, rec.Restore(&snap, d.r.Offsets().LogEnd))
	for _, lb := range log { // the whole log: what the snapshot covers is skipped
		must(t, rec.Replay(lb))
	}
	if got := rec.Snapshot(); !reflect.DeepEqual(got, live) {
		t.Fatalf("snapshot + log tail rebuilt\n%+v\nlive\n%+v", got, live)
	}
	var scan ProducerState
	for _, lb := range log {
		must(t, scan.Replay(lb))
	}
	if got := scan.Snapshot(); !reflect.DeepEqual(got, live) {
		t.Fatalf("log alone rebuilt\n%+v\nlive\n%+v", got, live)
	}

	// A recovered replica keeps deduplicating: the last batches are known.
	r2 := newDriver(t, intervalConfig(), Offsets{LogEnd: d.r.Offsets().LogEnd, Flushed: d.r.Offsets().LogEnd})
	must(t, r2.r.Producers().Restore(&snap, r2.r.Offsets().LogEnd))
	for _, lb := range log[26:] {
		must(t, r2.r.Producers().Replay(lb))
	}
	last := log[len(log)-2] // producer 2's last batch
	r2.expectDup(last.ProducerBatch, last.BaseOffset, last.LastOffset)
	r2.write(pb(2, 0, seq[2], 1, 0))

	// Misuse is refused.
	if err := new(ProducerState).Restore(&snap, snap.Offset-1); !errors.Is(err, ErrSnapshotAhead) {
		t.Fatalf("restore of a snapshot ahead of the log: %v", err)
	}
	if err := rec.Replay(LogBatch{ProducerBatch: pb(1, 0, 0, 2, 0), BaseOffset: rec.End() - 1, LastOffset: rec.End()}); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay of a batch straddling the state's end: %v", err)
	}
}

// A duplicate's answer comes through Ready: at once for acks=1, and for
// acks=all only when the HW passes the original (never more than the
// original's own answer says); a fence or a reset fails the wait.
func TestProducerDuplicateAckWaitsForHW(t *testing.T) {
	d := newDriver(t, syncConfig(), Offsets{})
	b := pb(1, 0, 0, 2, 0)
	must(t, d.r.CheckAppend(AckAll))
	d.r.AppendPlanned(Append{Base: 0, Last: 1, Bytes: 20, Level: AckAll, Token: 100, Producer: b})
	must(t, d.r.AppendCompleted(0))
	d.turn() // plans the flush
	dup, err := d.r.CheckProducer(b)
	if err != nil || dup != (Duplicate{Found: true, Base: 0, Last: 1}) {
		t.Fatalf("retry before the flush: %+v %v", dup, err)
	}
	d.r.AckDuplicate(101, AckAll, dup)
	d.r.AckDuplicate(102, AckLeader, dup)
	d.turn()
	d.expectAcks("0:acks=1:ok") // the acks=1 retry; the acks=all ones wait
	d.flushDone()
	d.turn()
	d.expectAcks("0:acks=all:ok 0:acks=all:ok")
	d.r.AckDuplicate(103, AckAll, dup) // below the HW now: at once
	d.turn()
	d.expectAcks("0:acks=all:ok")

	// Fenced while waiting.
	must(t, d.r.CheckAppend(AckAll))
	b2 := pb(1, 0, 2, 1, 0)
	d.r.AppendPlanned(Append{Base: 2, Last: 2, Bytes: 10, Level: AckLeader, Token: 200, Producer: b2})
	must(t, d.r.AppendCompleted(2))
	d.turn()
	d.expectAcks("2:acks=1:ok")
	dup2, _ := d.r.CheckProducer(b2)
	d.r.AckDuplicate(201, AckAll, dup2)
	d.r.FlushFailed(errors.New("EIO"))
	d.inFlight = false
	d.turn()
	d.expectAcks("2:acks=all:err")
	// Reset while waiting.
	must(t, d.r.Reset(Offsets{LogEnd: 3, Flushed: 2}))
	dup3, _ := d.r.CheckProducer(b2)
	d.r.AckDuplicate(202, AckAll, dup3)
	must(t, d.r.Reset(Offsets{LogEnd: 3, Flushed: 2}))
	d.turn()
	if len(d.acks) != 1 || !errors.Is(d.acks[0].Err, ErrReset) || d.acks[0].Token != 202 {
		t.Fatalf("acks after a reset: %+v, want token 202 with ErrReset", d.acks)
	}
}

// A new producer past MaxProducers is refused until one expires; known
// producers go on.
func TestProducerLimit(t *testing.T) {
	cfg := intervalConfig()
	cfg.MaxProducers, cfg.ProducerIdleExpiry = 2, time.Minute
	d := newDriver(t, cfg, Offsets{})
	ms := t0.UnixMilli()
	d.write(pb(1, 0, 0, 1, ms))
	base, _, err := d.offer(pb(2, 0, 0, 1, ms+1000)) // in flight counts
	must(t, err)
	d.expectRefused(pb(3, 0, 0, 1, ms), ErrTooManyProducers)
	d.write(pb(1, 0, 1, 1, ms))
	must(t, d.r.AppendCompleted(base))
	if n := d.r.ExpireProducers(t0.Add(time.Minute)); n != 1 {
		t.Fatalf("%d expired, want producer 1", n)
	}
	d.write(pb(3, 0, 0, 1, ms))
	if _, err := New(Config{FlushInterval: time.Second, MaxProducers: -1}, Offsets{}); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("negative max producers: %v, want ErrBadConfig", err)
	}
}
