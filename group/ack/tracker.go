package ack

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
)

// Errors the Tracker returns. Check them with errors.Is.
var (
	// ErrBadConfig: a Config that cannot work (see Config).
	ErrBadConfig = errors.New("ack: bad config")
	// ErrNotHeld: the member does not hold the record (never handed out,
	// acquired by another member, or on its way to the dead-letter topic).
	ErrNotHeld = errors.New("ack: record not held by this member")
	// ErrNoMember: the member is 0, or (key_shared) not joined.
	ErrNoMember = errors.New("ack: unknown member")
	// ErrNotDeadLetter: DeadLettered for a record that was not handed out
	// as a dead letter.
	ErrNotDeadLetter = errors.New("ack: record is not waiting for the dead-letter topic")
)

// Member names a group member to the tracker: a small number the
// coordinator gives each member (its slot, say). 0 is no member.
type Member uint32

// Mode is the subscription type the tracker serves.
type Mode uint8

const (
	// Shared hands any available record to any member.
	Shared Mode = iota
	// KeyShared hands a record only to the member whose key-hash ranges
	// hold its key hash, one member per key at a time, in offset order.
	KeyShared
)

// UseBackoff as a Nack delay asks for the group's backoff list.
const UseBackoff time.Duration = -1

// maxWindow bounds MaxUnacked: the done bitmap holds offsets relative to
// a base within 2^31 of the floor.
const maxWindow = 1 << 30

// maxCount is where delivery counts saturate (they are uint16).
const maxCount = math.MaxUint16

// Config is one (group, partition) tracker's policy.
type Config struct {
	// Topic and Partition name the partition; they are copied into each
	// DeadLetter.
	Topic     string
	Partition int32
	// Mode is Shared or KeyShared.
	Mode Mode
	// AckTimeout is the lock of an acquired record (ack_timeout); > 0.
	AckTimeout time.Duration
	// MaxUnacked is the in-flight window (max_unacked): no record at or
	// past floor + MaxUnacked is handed out. 1 ≤ MaxUnacked ≤ 2^30.
	MaxUnacked int
	// MaxDeliveries (max_deliveries): a record delivered that many times
	// and released again (nack, lock expiry, member gone) or rejected goes
	// to the dead-letter topic instead. 0: never (no dead-lettering;
	// Reject marks a record done). At most 65535.
	MaxDeliveries int
	// Backoff is the redelivery delay after the n-th delivery was nacked
	// (with UseBackoff) or expired: Backoff[min(n, len)-1]. Empty: at once.
	Backoff []time.Duration
	// MaxDelay caps delayed delivery: a record is due no later than its
	// append time + MaxDelay, whatever its delivery time says. 0: no cap.
	MaxDelay time.Duration
	// SnapshotEvery: after this many state changes, the next Ready carries
	// a snapshot instead of deltas. 0 means 4096.
	SnapshotEvery int
	// VNodes is the number of points per member on the key-hash ring
	// (key_shared). 0 means 64.
	VNodes int
}

func (c *Config) validate() error {
	switch {
	case c.Mode != Shared && c.Mode != KeyShared:
		return fmt.Errorf("%w: mode %d", ErrBadConfig, c.Mode)
	case c.AckTimeout <= 0:
		return fmt.Errorf("%w: ack_timeout %v must be > 0", ErrBadConfig, c.AckTimeout)
	case c.MaxUnacked < 1 || c.MaxUnacked > maxWindow:
		return fmt.Errorf("%w: max_unacked %d outside [1, %d]", ErrBadConfig, c.MaxUnacked, maxWindow)
	case c.MaxDeliveries < 0 || c.MaxDeliveries > maxCount:
		return fmt.Errorf("%w: max_deliveries %d outside [0, %d]", ErrBadConfig, c.MaxDeliveries, maxCount)
	case c.MaxDelay < 0 || c.SnapshotEvery < 0 || c.VNodes < 0:
		return fmt.Errorf("%w: negative max_delay, snapshot interval or vnodes", ErrBadConfig)
	}
	for _, d := range c.Backoff {
		if d < 0 {
			return fmt.Errorf("%w: negative backoff %v", ErrBadConfig, d)
		}
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = 4096
	}
	if c.VNodes == 0 {
		c.VNodes = 64
	}
	return nil
}

// Record states in a slot. The zero value is fresh, so a slot past hi
// needs no initialisation.
const (
	stFresh   uint8 = iota // never handed out (count 0)
	stLocked               // acquired by member until deadline
	stWaiting              // released; available again from deadline on
	stDead                 // waiting for the dead-letter append to be confirmed
	stDone                 // acked, rejected or dead-lettered (also in the bitmap)
)

// slot is the state of one offset in [floor, hi): 16 bytes.
type slot struct {
	deadline int64  // stLocked: lock deadline; stWaiting: not before (Unix ns)
	member   Member // stLocked: holder; stWaiting: last holder (late acks)
	count    uint16 // deliveries so far
	state    uint8
}

// keyState is what key_shared knows of one key hash: which member holds
// its in-flight records and how many there are.
type keyState struct {
	member   Member
	inflight int32
}

// Tracker is the ack state of one (group, partition) of a shared or
// key_shared subscription. It is owned by one goroutine (the group's
// coordinator) and is not safe for concurrent use. See the package doc.
type Tracker struct {
	cfg Config

	floor   uint64          // every offset below is done
	base    uint64          // done holds offset-base; base ≤ floor
	done    *roaring.Bitmap // done offsets ≥ floor (mirrored by stDone slots)
	slots   []slot          // ring: offset o lives in slots[o&mask]
	lockKey []uint32        // key_shared: key hash of a locked record, beside its slot
	mask    uint64
	hi      uint64 // one past the highest offset with state; slots outside [floor, hi) are zero
	scan    uint64 // no record in [floor, scan) is available (fresh or waiting): Acquire starts here

	stats       Stats // the counters of Stats (not persisted)
	locked      int   // slots in stLocked
	waiting     int   // slots in stWaiting
	minDeadline int64 // ≤ every lock deadline (math.MaxInt64: none)
	errs        map[uint64]string

	members map[Member]struct{} // key_shared: joined members
	ring    hashRing            // key_shared
	keys    map[uint32]keyState // key_shared: keys with records in flight
	blocked map[uint32]struct{} // scratch of Acquire

	// Outputs waiting for Ready.
	acq      []acqRun     // acquisitions (offset runs with their count)
	doneOut  []Run        // offsets marked done
	deadLog  []DeadLetter // dead-letter deltas to log
	deadOut  []DeadLetter // dead letters to hand to the driver
	changes  int          // state changes since the last snapshot
	wantSnap bool
	buf      []byte
	handed   bool
	nDead    int
}

// New returns an empty tracker: nothing done, floor at start (the
// partition's log start, or where the group starts reading).
func New(cfg Config, start uint64) (*Tracker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	t := &Tracker{
		cfg:         cfg,
		floor:       start,
		base:        start,
		hi:          start,
		scan:        start,
		done:        roaring.New(),
		minDeadline: math.MaxInt64,
		errs:        map[uint64]string{},
		wantSnap:    true, // the first record states the floor
	}
	t.slots = make([]slot, 64)
	t.mask = 63
	if cfg.Mode == KeyShared {
		t.members = map[Member]struct{}{}
		t.keys = map[uint32]keyState{}
		t.blocked = map[uint32]struct{}{}
		t.lockKey = make([]uint32, len(t.slots))
	}
	return t, nil
}

// Stats are what `groups describe` shows of one partition. The
// counters start at zero with the tracker (they are not persisted).
type Stats struct {
	Floor        uint64 // F
	InFlight     int    // records locked by members
	Waiting      int    // released records waiting for redelivery
	Redeliveries uint64 // hand-outs of a record delivered before
	DeadLetters  uint64 // records confirmed appended to the dead-letter topic
}

// Stats returns the partition's numbers now.
func (t *Tracker) Stats() Stats {
	st := t.stats
	st.Floor, st.InFlight, st.Waiting = t.floor, t.locked, t.waiting
	return st
}

// Floor returns F: every offset below it is done.
func (t *Tracker) Floor() uint64 { return t.floor }

// InFlight returns the number of records locked by members.
func (t *Tracker) InFlight() int { return t.locked }

// Waiting returns the number of released records waiting for redelivery.
func (t *Tracker) Waiting() int { return t.waiting }

// Done reports whether off is done.
func (t *Tracker) Done(off uint64) bool {
	return off < t.floor || (off < t.hi && t.slot(off).state == stDone)
}

// Deliveries returns how many times off was handed out (0 once done
// below the floor).
func (t *Tracker) Deliveries(off uint64) int {
	if off < t.floor || off >= t.hi {
		return 0
	}
	return int(t.slot(off).count)
}

// NextDeadline returns a time at or before the earliest lock deadline
// (the zero Time when nothing is locked): call Expire then.
func (t *Tracker) NextDeadline() time.Time {
	if t.locked == 0 || t.minDeadline == math.MaxInt64 {
		return time.Time{}
	}
	return time.Unix(0, t.minDeadline)
}

func (t *Tracker) slot(off uint64) *slot { return &t.slots[off&t.mask] }

// ensure grows the ring so that it holds [floor, end).
func (t *Tracker) ensure(end uint64) {
	need := end - t.floor
	if need <= uint64(len(t.slots)) {
		return
	}
	n := uint64(len(t.slots))
	for n < need {
		n *= 2
	}
	slots := make([]slot, n)
	var keys []uint32
	if t.lockKey != nil {
		keys = make([]uint32, n)
	}
	for o := t.floor; o < t.hi; o++ {
		slots[o&(n-1)] = *t.slot(o)
		if keys != nil {
			keys[o&(n-1)] = t.lockKey[o&t.mask]
		}
	}
	t.slots, t.lockKey, t.mask = slots, keys, n-1
}

// Ack marks off done. A member may ack what it holds, and what it held
// until a lock expiry or nack as long as no other member acquired it
// since. Acking what is already done is a no-op (acks are retried).
func (t *Tracker) Ack(m Member, off uint64) error {
	if off < t.floor {
		return nil
	}
	if off >= t.hi {
		return ErrNotHeld
	}
	s := t.slot(off)
	switch {
	case s.state == stDone:
		return nil
	case (s.state == stLocked || s.state == stWaiting) && s.member == m && m != 0:
		t.markDone(off, s)
		t.check()
		return nil
	}
	return ErrNotHeld
}

// AckRange acks the records [start, end) that m holds (Ack of each) and
// returns how many it acked and the error of the first it could not.
func (t *Tracker) AckRange(m Member, start, end uint64) (int, error) {
	n := 0
	var first error
	for off := max(start, t.floor); off < end && off < t.hi; off++ {
		if off < t.floor || t.slot(off).state == stDone {
			continue // done before, or the floor passed it during this loop
		}
		if err := t.Ack(m, off); err != nil {
			if first == nil {
				first = fmt.Errorf("%w: offset %d", err, off)
			}
			continue
		}
		n++
	}
	if end > t.hi && first == nil {
		first = fmt.Errorf("%w: offset %d", ErrNotHeld, max(start, t.hi))
	}
	return n, first
}

// AckCumulative acks every record below upTo that m holds (a shared
// subscription has no cumulative position; records held by others stay
// theirs). It returns how many it acked.
func (t *Tracker) AckCumulative(m Member, upTo uint64) int {
	n := 0
	end := min(upTo, t.hi)
	for off := t.floor; off < end; off++ {
		if s := t.slot(off); s.state == stLocked && s.member == m {
			t.markDone(off, s)
			n++
		}
	}
	t.check()
	return n
}

// Nack releases a record m holds for redelivery after delay (UseBackoff:
// the group's backoff list). reason, if not empty, is kept as the
// record's last error for the dead-letter topic. A record that has had
// MaxDeliveries deliveries goes to the dead-letter topic instead.
func (t *Tracker) Nack(m Member, off uint64, now time.Time, delay time.Duration, reason string) error {
	s, err := t.held(m, off)
	if err != nil {
		return err
	}
	if reason != "" {
		t.errs[off] = reason
	}
	if delay == UseBackoff {
		delay = t.backoff(s.count)
	}
	t.release(off, s, now.UnixNano()+int64(delay))
	t.check()
	return nil
}

// Reject gives up on a record m holds: it goes to the dead-letter topic
// when dead-lettering is on (MaxDeliveries > 0), else it is marked done.
func (t *Tracker) Reject(m Member, off uint64, reason string) error {
	s, err := t.held(m, off)
	if err != nil {
		return err
	}
	if reason != "" {
		t.errs[off] = reason
	}
	if t.cfg.MaxDeliveries > 0 {
		t.deadLetter(off, s)
	} else {
		t.markDone(off, s)
	}
	t.check()
	return nil
}

// Expire releases every record whose lock deadline is at or before now
// (with the backoff of its delivery count) and returns how many.
func (t *Tracker) Expire(now time.Time) int {
	ns := now.UnixNano()
	if t.locked == 0 || ns < t.minDeadline {
		return 0
	}
	n, next := 0, int64(math.MaxInt64)
	for off := t.floor; off < t.hi; off++ {
		s := t.slot(off)
		if s.state != stLocked {
			continue
		}
		if s.deadline > ns {
			next = min(next, s.deadline)
			continue
		}
		t.release(off, s, ns+int64(t.backoff(s.count)))
		n++
	}
	t.minDeadline = next
	t.check()
	return n
}

// MemberLeft releases every record m holds, for redelivery at once, and
// (key_shared) gives its key-hash ranges to the remaining members. It
// returns how many records it released.
func (t *Tracker) MemberLeft(m Member, now time.Time) int {
	n := 0
	ns := now.UnixNano()
	for off := t.floor; off < t.hi; off++ {
		s := t.slot(off)
		if s.member != m {
			continue
		}
		if s.state == stLocked {
			t.release(off, s, ns)
			n++
		}
		s.member = 0 // no late acks from a member that is gone
	}
	if t.cfg.Mode == KeyShared {
		if _, ok := t.members[m]; ok {
			delete(t.members, m)
			t.ring.remove(m)
		}
	}
	t.check()
	return n
}

// DeadLettered confirms that the driver appended the DeadLetter of off
// to the dead-letter topic: off is done.
func (t *Tracker) DeadLettered(off uint64) error {
	if off < t.floor || off >= t.hi || t.slot(off).state != stDead {
		return fmt.Errorf("%w: offset %d", ErrNotDeadLetter, off)
	}
	t.markDone(off, t.slot(off))
	t.stats.DeadLetters++
	t.check()
	return nil
}

// held returns off's slot when m holds its lock.
func (t *Tracker) held(m Member, off uint64) (*slot, error) {
	if off < t.floor || off >= t.hi {
		return nil, fmt.Errorf("%w: offset %d", ErrNotHeld, off)
	}
	s := t.slot(off)
	if s.state != stLocked || s.member != m {
		return nil, fmt.Errorf("%w: offset %d", ErrNotHeld, off)
	}
	return s, nil
}

func (t *Tracker) backoff(count uint16) time.Duration {
	b := t.cfg.Backoff
	if len(b) == 0 || count == 0 {
		return 0
	}
	return b[min(int(count), len(b))-1]
}

// unlock drops the bookkeeping of a locked or waiting record and leaves
// it fresh (not counted anywhere) for the caller to set its next state;
// a second unlock is a no-op.
func (t *Tracker) unlock(off uint64, s *slot) {
	switch s.state {
	case stLocked:
		t.locked--
		if t.keys != nil {
			key := t.lockKey[off&t.mask]
			k := t.keys[key]
			if k.inflight--; k.inflight == 0 {
				delete(t.keys, key)
			} else {
				t.keys[key] = k
			}
		}
	case stWaiting:
		t.waiting--
	default:
		return
	}
	s.state = stFresh
}

// release makes a locked record available from notBefore on, or sends it
// to the dead-letter topic when its deliveries are used up.
func (t *Tracker) release(off uint64, s *slot, notBefore int64) {
	t.unlock(off, s)
	if t.cfg.MaxDeliveries > 0 && int(s.count) >= t.cfg.MaxDeliveries {
		t.deadLetter(off, s)
		return
	}
	s.state, s.deadline = stWaiting, notBefore
	t.waiting++
	t.scan = min(t.scan, off)
}

func (t *Tracker) deadLetter(off uint64, s *slot) {
	t.unlock(off, s)
	s.state, s.deadline = stDead, 0
	dl := DeadLetter{Topic: t.cfg.Topic, Partition: t.cfg.Partition, Offset: off,
		Deliveries: int(s.count), LastError: t.errs[off]}
	t.deadLog = append(t.deadLog, dl)
	t.deadOut = append(t.deadOut, dl)
	t.changes++
}

// markDone marks off done and moves the floor over the done prefix.
func (t *Tracker) markDone(off uint64, s *slot) {
	t.unlock(off, s)
	s.state = stDone
	t.done.Add(uint32(off - t.base))
	if len(t.errs) > 0 {
		delete(t.errs, off)
	}
	if n := len(t.doneOut); n > 0 && t.doneOut[n-1].End == off {
		t.doneOut[n-1].End++
	} else {
		t.doneOut = append(t.doneOut, Run{Start: off, End: off + 1})
	}
	t.changes++
	t.advanceFloor()
}

func (t *Tracker) advanceFloor() {
	old := t.floor
	for t.floor < t.hi && t.slot(t.floor).state == stDone {
		*t.slot(t.floor) = slot{}
		t.floor++
	}
	if t.floor == old {
		return
	}
	t.scan = max(t.scan, t.floor)
	if t.floor == t.hi {
		// Nothing tracked above the floor: the bitmap is empty.
		t.done.Clear()
		t.base = t.floor
		return
	}
	t.done.RemoveRange(old-t.base, t.floor-t.base)
	if t.floor-t.base >= 1<<31 {
		t.done = roaring.AddOffset64(t.done, -int64(t.floor-t.base))
		t.base = t.floor
	}
}
