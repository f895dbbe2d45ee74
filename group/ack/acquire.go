package ack

import (
	"math"
	"time"
)

// Meta is what the driver knows of one record from its batch: the hash
// of its key (key_shared) and its delivery time (delayed delivery).
type Meta struct {
	// KeyHash is the hash of the record's key; records without a key
	// share hash 0.
	KeyHash uint32
	// DeliverAt is the record's earliest delivery time in Unix
	// nanoseconds; 0: at once.
	DeliverAt int64
	// AppendTime is when the record was appended, Unix nanoseconds; with
	// Config.MaxDelay it caps DeliverAt. 0: unknown (no cap).
	AppendTime int64
}

// Source gives the Meta of records at or above the floor and below the
// log end passed to Acquire. It is consulted only for records not yet
// handed out, and (key_shared) for the key hash of released ones.
type Source interface {
	Meta(off uint64) Meta
}

// Range is a run of offsets [Start, End) handed to a member, each
// delivered for the Deliveries-th time.
type Range struct {
	Start, End uint64
	Deliveries int
}

// Acquire hands member m up to want records below logEnd and below
// floor + MaxUnacked, in offset order (so released records, which lie
// below the records never handed out, come first), locks them until
// now + AckTimeout and raises their delivery counts. It appends the
// ranges to dst. A record is not handed out before its delivery time or
// the end of its nack backoff. key_shared: only records whose key hash m
// owns, never a record of a key with records in flight to another member
// or an earlier record of its key that is not available yet. src may be
// nil when no record has a key or a delivery time.
func (t *Tracker) Acquire(dst []Range, m Member, now time.Time, want int, logEnd uint64, src Source) ([]Range, error) {
	if m == 0 {
		return dst, ErrNoMember
	}
	keyed := t.cfg.Mode == KeyShared
	if keyed {
		if _, ok := t.members[m]; !ok {
			return dst, ErrNoMember
		}
		clear(t.blocked)
	}
	ns := now.UnixNano()
	end := min(logEnd, t.floor+uint64(t.cfg.MaxUnacked))
	if end <= t.floor || want <= 0 {
		return dst, nil
	}
	t.ensure(end)
	deadline := ns + int64(t.cfg.AckTimeout)
	n, off, skipped := 0, max(t.floor, t.scan), uint64(math.MaxUint64)
	for ; off < end && n < want; off++ {
		s := t.slot(off)
		if s.state == stLocked || s.state == stDead || s.state == stDone {
			continue
		}
		if key, ok := t.eligible(off, s, m, ns, src); ok {
			t.lock(off, s, m, key, deadline)
			dst = appendRange(dst, off, int(s.count))
			n++
		} else if skipped == math.MaxUint64 {
			skipped = off
		}
	}
	t.scan = min(off, skipped)
	t.check()
	return dst, nil
}

// eligible reports whether the fresh or waiting record off may go to m
// now, and its key hash.
func (t *Tracker) eligible(off uint64, s *slot, m Member, ns int64, src Source) (uint32, bool) {
	keyed := t.cfg.Mode == KeyShared
	var meta Meta
	if src != nil && (keyed || s.state == stFresh) {
		meta = src.Meta(off) // (a restored waiting record has no key yet)
	}
	key := meta.KeyHash
	if keyed && !t.mine(m, key) {
		return key, false
	}
	if s.state == stWaiting && s.deadline > ns || s.state == stFresh && t.deliverAt(meta) > ns {
		t.block(key)
		return key, false
	}
	return key, !keyed || t.keyFree(m, key)
}

// mine reports whether m owns key (key_shared).
func (t *Tracker) mine(m Member, key uint32) bool { return t.ring.owner(key) == m }

// block holds back the later records of key for the rest of an Acquire
// (key_shared): an earlier one of them is not available yet.
func (t *Tracker) block(key uint32) {
	if t.blocked != nil {
		t.blocked[key] = struct{}{}
	}
}

// keyFree reports whether a record of key may go to m: no earlier record
// of key was held back in this Acquire, and none is in flight to another
// member.
func (t *Tracker) keyFree(m Member, key uint32) bool {
	if _, ok := t.blocked[key]; ok {
		return false
	}
	k, ok := t.keys[key]
	return !ok || k.member == m
}

func (t *Tracker) deliverAt(meta Meta) int64 {
	at := meta.DeliverAt
	if t.cfg.MaxDelay > 0 && meta.AppendTime > 0 && at > meta.AppendTime+int64(t.cfg.MaxDelay) {
		at = meta.AppendTime + int64(t.cfg.MaxDelay)
	}
	return at
}

func (t *Tracker) lock(off uint64, s *slot, m Member, key uint32, deadline int64) {
	if s.state == stWaiting {
		t.waiting--
	}
	if s.count > 0 {
		t.stats.Redeliveries++
	}
	if s.count < math.MaxUint16 {
		s.count++
	}
	s.state, s.member, s.deadline = stLocked, m, deadline
	t.locked++
	t.minDeadline = min(t.minDeadline, deadline)
	if off >= t.hi {
		t.hi = off + 1
	}
	if t.keys != nil {
		t.lockKey[off&t.mask] = key
		k := t.keys[key]
		k.member = m
		k.inflight++
		t.keys[key] = k
	}
	if n := len(t.acq); n > 0 && t.acq[n-1].End == off && t.acq[n-1].Count == int(s.count) {
		t.acq[n-1].End++
	} else {
		t.acq = append(t.acq, acqRun{Start: off, End: off + 1, Count: int(s.count)})
	}
	t.changes++
}

func appendRange(dst []Range, off uint64, count int) []Range {
	if n := len(dst); n > 0 && dst[n-1].End == off && dst[n-1].Deliveries == count {
		dst[n-1].End++
		return dst
	}
	return append(dst, Range{Start: off, End: off + 1, Deliveries: count})
}

// MemberJoined adds m to a key_shared tracker: it takes its share of the
// key-hash ranges from the members already there (and only from them).
// Records of moved keys already in flight stay with their holder until
// acked or released; the new owner gets the key's later records after
// that. A no-op for Shared, and for a member already joined.
func (t *Tracker) MemberJoined(m Member) error {
	if m == 0 {
		return ErrNoMember
	}
	if t.cfg.Mode != KeyShared {
		return nil
	}
	if _, ok := t.members[m]; ok {
		return nil
	}
	t.members[m] = struct{}{}
	t.ring.add(m, t.cfg.VNodes)
	return nil
}

// Owner returns the member that owns key hash h (key_shared; 0 when no
// member joined).
func (t *Tracker) Owner(h uint32) Member { return t.ring.owner(h) }

// KeyRanges appends the key-hash ranges m owns (key_shared).
func (t *Tracker) KeyRanges(dst []KeyRange, m Member) []KeyRange { return t.ring.ranges(dst, m) }
