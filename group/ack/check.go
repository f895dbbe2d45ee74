package ack

import "fmt"

// check panics when the tracker's bookkeeping breaks. It is a handful of
// comparisons and always runs; checkDeep (build tag invariants) walks the
// window too.
func (t *Tracker) check() {
	if t.floor > t.hi || t.scan < t.floor || t.scan > t.hi || t.hi-t.floor > uint64(len(t.slots)) || t.base > t.floor ||
		t.locked < 0 || t.waiting < 0 {
		panic(fmt.Sprintf("BUG: ack: floor %d, scan %d, hi %d, base %d, ring %d, locked %d, waiting %d",
			t.floor, t.scan, t.hi, t.base, len(t.slots), t.locked, t.waiting))
	}
	if invariants {
		t.checkDeep()
	}
}

// checkDeep recounts the window: the bitmap mirrors the done slots, the
// counters and per-key in-flight counts agree with the slots, the floor
// is not done, and slots outside [floor, hi) are zero.
func (t *Tracker) checkDeep() {
	locked, waiting := 0, 0
	keys := map[uint32]int32{}
	for off := t.floor; off < t.hi; off++ {
		s := t.slot(off)
		if (s.state == stDone) != t.done.Contains(uint32(off-t.base)) {
			panic(fmt.Sprintf("BUG: ack: offset %d state %d but bitmap says %v", off, s.state, !(s.state == stDone)))
		}
		switch s.state {
		case stLocked:
			locked++
			if t.lockKey != nil {
				keys[t.lockKey[off&t.mask]]++
			}
			if s.deadline < t.minDeadline {
				panic(fmt.Sprintf("BUG: ack: lock deadline %d before the minimum %d", s.deadline, t.minDeadline))
			}
		case stWaiting:
			waiting++
		}
		if off < t.scan && (s.state == stWaiting || s.state == stFresh) {
			panic(fmt.Sprintf("BUG: ack: offset %d is available (state %d) below the scan start %d", off, s.state, t.scan))
		}
		if s.state != stFresh && s.state != stDone && s.count == 0 {
			panic(fmt.Sprintf("BUG: ack: offset %d in state %d never delivered", off, s.state))
		}
	}
	if t.floor < t.hi && t.slot(t.floor).state == stDone {
		panic(fmt.Sprintf("BUG: ack: floor %d is done", t.floor))
	}
	if locked != t.locked || waiting != t.waiting || uint64(t.done.GetCardinality()) > t.hi-t.floor {
		panic(fmt.Sprintf("BUG: ack: %d locked (counted %d), %d waiting (counted %d), %d done",
			locked, t.locked, waiting, t.waiting, t.done.GetCardinality()))
	}
	for i := uint64(0); i < uint64(len(t.slots))-(t.hi-t.floor); i++ {
		if off := t.hi + i; *t.slot(off) != (slot{}) {
			panic(fmt.Sprintf("BUG: ack: slot of offset %d outside the window is not zero", off))
		}
	}
	if t.keys != nil {
		for k, n := range keys {
			if t.keys[k].inflight != n {
				panic(fmt.Sprintf("BUG: ack: key %#x has %d in flight, counted %d", k, t.keys[k].inflight, n))
			}
		}
		if len(keys) != len(t.keys) {
			panic(fmt.Sprintf("BUG: ack: %d keys in flight, counted %d", len(t.keys), len(keys)))
		}
	}
}
