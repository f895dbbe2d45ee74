package replica

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Errors a Replica returns or puts in an Ack. Check them with errors.Is:
// an Ack's error wraps ErrFenced together with the failure that fenced.
var (
	// ErrFenced: a write or flush failed; nothing is accepted until Reset.
	ErrFenced = errors.New("replica: fenced by a failed write or flush")
	// ErrNotEnoughReplicas: acks=all while the in-sync replicas are fewer
	// than Config.MinInsync (the append is refused before it is planned).
	ErrNotEnoughReplicas = errors.New("replica: fewer in-sync replicas than min_insync_replicas")
	// ErrBadLevel: an ack level other than AckNone, AckLeader or AckAll.
	ErrBadLevel = errors.New("replica: unknown ack level")
	// ErrReset: the log was reset (reopened) while the append waited for
	// the HW; whether it survived is unknown.
	ErrReset = errors.New("replica: reset while the append waited")
	// ErrBusy: Reset while appends or a flush are still in flight.
	ErrBusy = errors.New("replica: appends or a flush still in flight")
	// ErrBadOffsets: offsets that break log start ≤ flushed ≤ log end, or a
	// follower match past the log end.
	ErrBadOffsets = errors.New("replica: offsets out of order")
	// ErrBadConfig: a Config that cannot work (see Config).
	ErrBadConfig = errors.New("replica: bad config")
)

// Level is the acknowledgement a produce part waits for. The values are
// the wire's acks field (proto.AcksNone, AcksLeader, AcksAll), so a driver
// converts with Level(acks).
type Level int8

const (
	AckNone   Level = 0  // no response; released when the write completes
	AckLeader Level = 1  // released when the append is visible in the local log
	AckAll    Level = -1 // released when the high watermark passes the append
)

func (l Level) String() string {
	switch l {
	case AckNone:
		return "acks=0"
	case AckLeader:
		return "acks=1"
	case AckAll:
		return "acks=all"
	}
	return fmt.Sprintf("acks=%d", int8(l))
}

// Token is the driver's opaque name for a produce part or a waiter (an op
// slot, say). The replica never interprets it.
type Token uint64

// ID names a replica of the partition (a broker id).
type ID int32

// Config is one replica's policy.
type Config struct {
	// ID is this replica's id; it is always in its own in-sync set.
	ID ID
	// Sync is the topic's flush=sync: the local match offset is the flushed
	// offset (a power cut cannot take back what the HW covers), and a flush
	// starts every turn something is unflushed (group commit). Otherwise
	// (flush=interval) the local match offset is the log end and a flush
	// starts on the first Tick at or after each FlushInterval.
	Sync bool
	// FlushInterval is the period of flushes for flush=interval; required
	// (> 0) unless Sync.
	FlushInterval time.Duration
	// CheckpointInterval is how often a recovery-point checkpoint of the
	// flushed offset is asked for (0: FlushInterval; required when Sync
	// and FlushInterval is 0).
	CheckpointInterval time.Duration
	// MinInsync is min_insync_replicas: while fewer replicas are in sync
	// (the local one included) the HW does not advance and acks=all appends
	// are refused. 0 means 1.
	MinInsync int
	// ProducerIdleExpiry is how long a producer with no new batch is
	// remembered (ExpireProducers); 0 means DefaultProducerIdleExpiry.
	ProducerIdleExpiry time.Duration
	// MaxProducers bounds the producers the partition remembers: a new one
	// past it is refused (ErrTooManyProducers). 0 means DefaultMaxProducers.
	MaxProducers int
	// ReplicaLagTime is replica_lag_time: a follower in the ISR that has
	// not caught up for longer is proposed for removal. 0 means
	// DefaultReplicaLagTime.
	ReplicaLagTime time.Duration
}

// Offsets are the partition's positions, each an offset (the next one to
// be written at that level):
//
//	LogStart ≤ HighWatermark ≤ (Flushed if Sync, else LogEnd) ≤ LogEnd
//	LogStart ≤ Flushed ≤ LogEnd
type Offsets struct {
	// LogStart is the first offset still in the log (retention moves it).
	LogStart uint64
	// HighWatermark (HW): offsets below it are on every in-sync replica
	// (durably when Sync); fetch serves only offsets below it, and acks=all
	// is released when it passes an append. Never decreases (except Reset).
	HighWatermark uint64
	// Flushed: offsets below it were fdatasync'd locally.
	Flushed uint64
	// LogEnd (LEO): offsets below it are written and visible locally: the
	// contiguous prefix of completed appends.
	LogEnd uint64
}

// progress is what the leader knows of one follower.
type progress struct {
	id    ID
	match uint64 // the follower has every offset below match (fsync'd if Sync)
	inISR bool
	// From its fetches in this leader epoch (leader.go): its log end, and
	// whether it fetched at all.
	leo     uint64
	fetched bool
	// lastCaughtUp: when it last had the leader's log end (Kafka's rule);
	// lastFetch and lastFetchLEO: the time and the leader's log end at its
	// previous fetch.
	lastCaughtUp time.Time
	lastFetch    time.Time
	lastFetchLEO uint64
}

// Replica is the state machine of one partition replica. It is owned by
// one goroutine (the reactor that owns the partition) and is not safe for
// concurrent use. See the package doc for the contract.
type Replica struct {
	cfg Config
	off Offsets
	// next is the offset the next planned append must start at.
	next uint64

	// inflight: planned appends not yet visible, in plan (= offset) order.
	inflight fifo[pending]
	// aboveHW: visible appends not yet wholly below the HW, in order.
	aboveHW fifo[visible]
	// leoBytes and hwBytes count the bytes of the appends that became
	// visible, and of those wholly below the HW, since New or Reset.
	leoBytes, hwBytes uint64

	// fenceAt: appends starting at or after it never become visible
	// (math.MaxUint64 when not fenced); fenceErr is set once fenced.
	fenceAt  uint64
	fenceErr error

	// syncFloor is the HW when the replica switched to Sync (SetSync):
	// what flush=interval already exposed stays exposed, so the local match
	// is at least that until the flushed offset passes it.
	syncFloor uint64

	flushing  bool   // a flush returned by Ready is in flight
	flushUpTo uint64 // what it covers
	flushDue  bool   // an interval passed: flush=interval wants a flush

	now            time.Time // the last Tick
	nextFlush      time.Time
	nextCheckpoint time.Time
	checkpointDue  bool
	checkpointed   uint64 // flushed offset of the last checkpoint asked for

	followers []progress
	rp        repl // replication: role, epochs, fetch and ISR state (replication.go)

	// prod is the idempotent-producer state (producer.go); dupWaits the
	// acks=all Acks of duplicates waiting for the HW (producer_dup.go).
	prod     ProducerState
	dupWaits []dupWait

	waiters []waiter

	acks      []Ack
	wakes     []Wake
	handedOut bool // Ready returned, Advance not yet called
	nAcks     int  // acks handed out by Ready
	nWakes    int
	published Offsets // Offsets as of the last Ready
}

// New returns the replica of a partition opened with the given offsets
// (storage's LogStart, FlushedOffset and LogEnd). HighWatermark is where
// the HW starts (a persisted HW, or 0), clamped to [LogStart, local match
// offset]; with only the local replica in sync it then moves to the local
// match offset at once. A Flushed below LogStart is raised to it.
func New(cfg Config, o Offsets) (*Replica, error) {
	if cfg.MinInsync == 0 {
		cfg.MinInsync = 1
	}
	if cfg.CheckpointInterval == 0 {
		cfg.CheckpointInterval = cfg.FlushInterval
	}
	if cfg.ProducerIdleExpiry == 0 {
		cfg.ProducerIdleExpiry = DefaultProducerIdleExpiry
	}
	if cfg.MaxProducers == 0 {
		cfg.MaxProducers = DefaultMaxProducers
	}
	if cfg.ReplicaLagTime == 0 {
		cfg.ReplicaLagTime = DefaultReplicaLagTime
	}
	switch {
	case cfg.MinInsync < 0:
		return nil, fmt.Errorf("%w: min_insync_replicas %d", ErrBadConfig, cfg.MinInsync)
	case !cfg.Sync && cfg.FlushInterval <= 0:
		return nil, fmt.Errorf("%w: flush=interval needs a flush interval > 0 (got %v)", ErrBadConfig, cfg.FlushInterval)
	case cfg.CheckpointInterval <= 0:
		return nil, fmt.Errorf("%w: checkpoint interval %v", ErrBadConfig, cfg.CheckpointInterval)
	case cfg.ProducerIdleExpiry < 0:
		return nil, fmt.Errorf("%w: producer idle expiry %v", ErrBadConfig, cfg.ProducerIdleExpiry)
	case cfg.MaxProducers < 0:
		return nil, fmt.Errorf("%w: max producers %d", ErrBadConfig, cfg.MaxProducers)
	case cfg.ReplicaLagTime < 0:
		return nil, fmt.Errorf("%w: replica lag time %v", ErrBadConfig, cfg.ReplicaLagTime)
	}
	r := &Replica{cfg: cfg, fenceAt: math.MaxUint64}
	r.rp.lagTime = cfg.ReplicaLagTime
	r.prod.SetMaxProducers(cfg.MaxProducers)
	if err := r.setOffsets(o); err != nil {
		return nil, err
	}
	r.published = r.off
	return r, nil
}

func (r *Replica) setOffsets(o Offsets) error {
	o.Flushed = max(o.Flushed, o.LogStart)
	if o.Flushed > o.LogEnd {
		return fmt.Errorf("%w: log start %d, flushed %d, log end %d", ErrBadOffsets, o.LogStart, o.Flushed, o.LogEnd)
	}
	r.off = o
	r.syncFloor = 0
	r.off.HighWatermark = min(max(o.HighWatermark, o.LogStart), r.localMatch())
	r.next = o.LogEnd
	r.checkpointed = o.Flushed
	r.leoBytes, r.hwBytes = 0, 0
	for i := range r.followers {
		r.followers[i].match = min(r.followers[i].match, o.LogEnd)
	}
	r.updateHW()
	r.check()
	return nil
}

// Offsets returns the partition's offsets now.
func (r *Replica) Offsets() Offsets { return r.off }

// HighWatermark is Offsets().HighWatermark: fetch serves offsets below it.
func (r *Replica) HighWatermark() uint64 { return r.off.HighWatermark }

// Fenced returns the error that fenced the replica (wrapping ErrFenced),
// or nil.
func (r *Replica) Fenced() error { return r.fenceErr }

// InFlight is the number of planned appends whose completion has not been
// handed to the replica yet, plus one while a flush is in flight.
func (r *Replica) InFlight() int {
	n := 0
	for i := 0; i < r.inflight.len(); i++ {
		if !r.inflight.at(i).done {
			n++
		}
	}
	if r.flushing {
		n++
	}
	return n
}

// localMatch is the local replica's match offset: what it has durably
// when Sync (or what an earlier flush=interval HW already exposed, see
// SetSync), what it has visibly otherwise.
func (r *Replica) localMatch() uint64 {
	if r.cfg.Sync {
		return max(r.off.Flushed, r.syncFloor)
	}
	return r.off.LogEnd
}

// Reset clears a fence after the driver reopened (and so recovered) the
// partition's log, taking its offsets as New does. It needs nothing in
// flight (ErrBusy otherwise: wait for the completions). Waiters are woken
// with WakeReset. The HW is recomputed from the new offsets and so may
// move back (a truncated log); the in-sync set and follower matches
// (clamped to the new log end) are kept, and the producer state forgets
// batches at or after the new log end (ProducerState.TruncateTo).
func (r *Replica) Reset(o Offsets) error {
	if r.inflight.len() > 0 || r.flushing {
		return ErrBusy
	}
	if o.LogStart > o.LogEnd || max(o.Flushed, o.LogStart) > o.LogEnd {
		return fmt.Errorf("%w: log start %d, flushed %d, log end %d", ErrBadOffsets, o.LogStart, o.Flushed, o.LogEnd)
	}
	for r.aboveHW.len() > 0 {
		v := r.aboveHW.front()
		if v.waiting {
			r.release(v.token, v.level, v.base, v.last, ErrReset)
		}
		r.aboveHW.pop()
	}
	r.failDupWaits(ErrReset)
	r.wakeAll(WakeReset)
	if err := r.prod.TruncateTo(o.LogEnd); err != nil {
		panic("BUG: replica: producer batches in flight with no append in flight: " + err.Error())
	}
	r.fenceAt, r.fenceErr = math.MaxUint64, nil
	r.flushDue, r.checkpointDue = false, false
	r.rp.fetching, r.rp.haveRepl, r.rp.truncate, r.rp.truncating = false, false, false, false
	r.rp.epochs.TruncateFrom(o.LogEnd)
	r.rp.leaderHW = min(r.rp.leaderHW, o.LogEnd)
	return r.setOffsets(o)
}
