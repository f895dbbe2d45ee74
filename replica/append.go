package replica

import (
	"fmt"
)

// Append is one planned append (storage.AppendOp's offsets and size), as
// the driver hands it to AppendPlanned before submitting the write.
type Append struct {
	Base, Last uint64 // first and last offset assigned
	Bytes      int    // bytes written (counted against fetch min_bytes)
	Level      Level  // the ack the produce part waits for
	Token      Token  // the driver's name for the part
	// Producer is the producer header of the part's one batch when it is
	// idempotent (after CheckProducer allowed it, or as replicated to a
	// follower); the zero value for anything else.
	Producer ProducerBatch
}

// Ack is a produce part to answer: its Token and Level as planned, its
// offsets, and Err: nil, or an error wrapping ErrFenced (or ErrReset) when
// it failed. Every planned append gets exactly one Ack, never before its
// write completion was reported (the driver may free the part's buffer
// then). For AckNone the driver sends nothing.
type Ack struct {
	Token      Token
	Level      Level
	Base, Last uint64
	Err        error
}

// pending is a planned append not yet visible.
type pending struct {
	base, last uint64
	bytes      uint64
	token      Token
	level      Level
	done       bool // its write completion (success or failure) was reported
	released   bool // its Ack was queued
}

// visible is a visible append not yet wholly below the HW.
type visible struct {
	base, last uint64
	bytes      uint64
	cumEnd     uint64 // leoBytes once it became visible
	token      Token
	level      Level
	waiting    bool // an acks=all Ack waits for the HW to pass last
}

// CheckAppend says whether an append at level may be planned now: nil,
// the fence error (wrapping ErrFenced), ErrNotEnoughReplicas for AckAll
// while the in-sync set is below MinInsync, or ErrBadLevel. The driver
// calls it before storage's PrepareAppend, so a refused append never
// reserves a file position.
func (r *Replica) CheckAppend(level Level) error {
	switch {
	case level != AckNone && level != AckLeader && level != AckAll:
		return fmt.Errorf("%w: %d", ErrBadLevel, int8(level))
	case r.rp.role != RoleLeader:
		return ErrNotLeader
	case r.fenceErr != nil:
		return r.fenceErr
	case level == AckAll && r.isrSize() < r.cfg.MinInsync:
		return ErrNotEnoughReplicas
	}
	return nil
}

// AppendPlanned records an append storage planned (after CheckAppend
// allowed it). Appends are planned in offset order with no gap: a.Base is
// the end of the previous one. It does not allocate in steady state.
func (r *Replica) AppendPlanned(a Append) {
	switch {
	case r.fenceErr != nil:
		panic("BUG: replica: append planned on a fenced replica (CheckAppend first)")
	case a.Level != AckNone && a.Level != AckLeader && a.Level != AckAll:
		panic(fmt.Sprintf("BUG: replica: append planned with ack level %d (CheckAppend first)", int8(a.Level)))
	case a.Base != r.next || a.Last < a.Base || a.Bytes <= 0:
		panic(fmt.Sprintf("BUG: replica: append %d-%d (%d bytes) planned, next offset is %d", a.Base, a.Last, a.Bytes, r.next))
	case r.rp.role != RoleLeader:
		panic("BUG: replica: append planned on a follower (CheckAppend first)")
	}
	if err := r.rp.epochs.Assign(r.rp.epoch, a.Base); err != nil {
		panic("BUG: replica: leader epoch behind its cache: " + err.Error())
	}
	r.inflight.push(pending{base: a.Base, last: a.Last, bytes: uint64(a.Bytes), token: a.Token, level: a.Level})
	r.next = a.Last + 1
	if a.Producer.idempotent() {
		r.prod.planned(a.Producer, a.Base, a.Last)
	}
}

// find returns the in-flight append starting at base.
func (r *Replica) find(base uint64) *pending {
	i := r.inflight.search(func(p *pending) bool { return p.base >= base })
	if i == r.inflight.len() || r.inflight.at(i).base != base {
		panic(fmt.Sprintf("BUG: replica: completion of unknown append at offset %d", base))
	}
	p := r.inflight.at(i)
	if p.done {
		panic(fmt.Sprintf("BUG: replica: append at offset %d completed twice", base))
	}
	return p
}

// AppendCompleted records that the write of the append at base completed.
// Completions may come in any order; the log end advances over the
// contiguous prefix of completed appends. It returns the fence error when
// the append can never become visible (an earlier write failed; its Ack
// carries the error too). It does not allocate.
func (r *Replica) AppendCompleted(base uint64) error {
	p := r.find(base)
	p.done = true
	switch {
	case r.fenceErr != nil:
		r.releasePending(p, r.fenceErr)
	case p.level == AckNone:
		r.releasePending(p, nil)
	}
	r.advance()
	r.check()
	if base >= r.fenceAt {
		return r.fenceErr
	}
	return nil
}

// AppendFailed records that the write of the append at base failed. The
// replica is fenced: the append and every later one never become visible,
// every Ack not yet released is released with an error (each as soon as
// its write completion is in), new appends are refused and waiters are
// woken with WakeFenced, until Reset. Appends planned before this one may
// still complete and become visible, as in storage.
func (r *Replica) AppendFailed(base uint64, err error) {
	p := r.find(base)
	p.done = true
	r.fence(base, fmt.Errorf("write of offsets %d-%d: %w", p.base, p.last, err))
	r.advance()
	r.check()
}

// fence stops every append at or after at from becoming visible and fails
// every Ack that can be failed now.
func (r *Replica) fence(at uint64, cause error) {
	r.fenceAt = min(r.fenceAt, at)
	if r.fenceErr == nil {
		r.fenceErr = fmt.Errorf("%w: %w", ErrFenced, cause)
	}
	for i := 0; i < r.inflight.len(); i++ {
		if p := r.inflight.at(i); p.done {
			r.releasePending(p, r.fenceErr)
		}
	}
	for i := 0; i < r.aboveHW.len(); i++ {
		if v := r.aboveHW.at(i); v.waiting {
			v.waiting = false
			r.release(v.token, v.level, v.base, v.last, r.fenceErr)
		}
	}
	r.failDupWaits(r.fenceErr)
	r.wakeAll(WakeFenced)
}

func (r *Replica) releasePending(p *pending, err error) {
	if !p.released {
		p.released = true
		r.release(p.token, p.level, p.base, p.last, err)
	}
}

func (r *Replica) release(tok Token, level Level, base, last uint64, err error) {
	r.acks = append(r.acks, Ack{Token: tok, Level: level, Base: base, Last: last, Err: err})
}

// advance makes the completed prefix of in-flight appends visible (or
// drops it past the fence), then recomputes the HW.
func (r *Replica) advance() {
	for r.inflight.len() > 0 && r.inflight.front().done {
		p := *r.inflight.front()
		r.inflight.pop()
		if p.base >= r.fenceAt {
			r.prod.dropped(p.base)
			continue
		}
		r.off.LogEnd = p.last + 1
		r.prod.visible(p.base, p.last)
		r.leoBytes += p.bytes
		if p.level == AckLeader && !p.released {
			p.released = true
			r.release(p.token, p.level, p.base, p.last, nil)
		}
		waiting := p.level == AckAll && !p.released
		if waiting && r.rp.role != RoleLeader {
			// planned as leader, visible as follower: the new leader
			// may not have it
			waiting, p.released = false, true
			r.release(p.token, p.level, p.base, p.last, ErrNotLeader)
		}
		r.aboveHW.push(visible{base: p.base, last: p.last, bytes: p.bytes, cumEnd: r.leoBytes,
			token: p.token, level: p.level, waiting: waiting})
	}
	r.updateHW()
}
