package ack

import (
	"fmt"

	"github.com/RoaringBitmap/roaring/v2"
)

// maxSpan bounds how far above the floor a restored offset may lie: no
// window is larger (Ready writes done runs first, so replaying them moves
// the floor before the offsets handed out after it are met).
const maxSpan = maxWindow

// Restore rebuilds a tracker from the frames it emitted (the Log of its
// Readys, concatenated in order, from the last snapshot on or from the
// first). The first frame must be a snapshot (a new tracker's first Ready
// is one). Every record handed out and not done is available again at
// once with its delivery count, except that one whose deliveries are used
// up goes to the dead-letter topic (the restart released its last
// delivery); records waiting for the dead-letter topic are handed out
// again in the next Ready's DeadLetters.
func Restore(cfg Config, log []byte) (*Tracker, error) {
	t, err := rebuild(cfg, log)
	if err != nil {
		return nil, err
	}
	t.restart()
	return t, nil
}

// rebuild replays the frames into a tracker whose durable state is the
// one that emitted them (records handed out are waiting, not locked).
func rebuild(cfg Config, log []byte) (*Tracker, error) {
	t, err := New(cfg, 0)
	if err != nil {
		return nil, err
	}
	if len(log) == 0 {
		return nil, fmt.Errorf("%w: restore: no frames", ErrCorrupt)
	}
	for i := 0; len(log) > 0; i++ {
		rec, rest, err := Parse(log)
		if err != nil {
			return nil, fmt.Errorf("ack: restore frame %d: %w", i, err)
		}
		if i == 0 && rec.Kind != KindSnapshot {
			return nil, fmt.Errorf("%w: restore: first frame is kind %d, not a snapshot", ErrCorrupt, rec.Kind)
		}
		if err := t.apply(&rec); err != nil {
			return nil, fmt.Errorf("ack: restore frame %d: %w", i, err)
		}
		log = rest
	}
	t.changes, t.wantSnap = 0, false
	t.check()
	return t, nil
}

// restart applies what a restart means to a rebuilt tracker: every lock
// was released, so a record whose deliveries are used up goes to the
// dead-letter topic, and every record waiting for the dead-letter topic
// is handed out again.
func (t *Tracker) restart() {
	for off := t.floor; off < t.hi; off++ {
		s := t.slot(off)
		if s.state == stWaiting && t.cfg.MaxDeliveries > 0 && int(s.count) >= t.cfg.MaxDeliveries {
			t.deadLetter(off, s)
		} else if s.state == stDead {
			t.deadOut = append(t.deadOut, DeadLetter{Topic: t.cfg.Topic, Partition: t.cfg.Partition,
				Offset: off, Deliveries: int(s.count), LastError: t.errs[off]})
		}
	}
	t.check()
}

// apply replays one frame. Deltas commute: counts merge by maximum, done
// is final and dead-letter waits for done, so their order inside a
// Ready does not matter.
func (t *Tracker) apply(rec *Record) error {
	switch rec.Kind {
	case KindSnapshot:
		return t.applySnapshot(&rec.Snapshot)
	case KindAcquired:
		for _, r := range rec.Acquired {
			if r.End-1 >= t.floor && r.End-1-t.floor >= maxSpan {
				return fmt.Errorf("%w: acquired run ends at %d, floor %d", ErrCorrupt, r.End, t.floor)
			}
			for off := max(r.Start, t.floor); off < r.End; off++ {
				s, err := t.restoreSlot(off)
				if err != nil {
					return err
				}
				s.count = max(s.count, uint16(r.Count))
				if s.state == stFresh {
					s.state = stWaiting
					t.waiting++
				}
			}
		}
	case KindDone:
		for _, r := range rec.Done {
			if r.End-1 >= t.floor && r.End-1-t.floor >= maxSpan {
				return fmt.Errorf("%w: done run ends at %d, floor %d", ErrCorrupt, r.End, t.floor)
			}
			for off := max(r.Start, t.floor); off < r.End; off++ {
				s, err := t.restoreSlot(off)
				if err != nil {
					return err
				}
				if s.state != stDone {
					t.unlock(off, s)
					s.state = stDone
					t.done.Add(uint32(off - t.base))
				}
			}
		}
		t.advanceFloor()
		for off := range t.errs {
			if off < t.floor {
				delete(t.errs, off)
			}
		}
	case KindDeadLetter:
		e := rec.DeadLetter
		if e.Offset < t.floor {
			return nil
		}
		s, err := t.restoreSlot(e.Offset)
		if err != nil {
			return err
		}
		if s.state == stDone {
			return nil
		}
		t.unlock(e.Offset, s)
		s.state, s.count = stDead, max(s.count, uint16(e.Deliveries))
		if e.LastError != "" {
			t.errs[e.Offset] = e.LastError
		}
	}
	return nil
}

// restoreSlot returns off's slot, growing the ring and hi to hold it.
func (t *Tracker) restoreSlot(off uint64) (*slot, error) {
	if off-t.floor >= maxSpan {
		return nil, fmt.Errorf("%w: offset %d too far above the floor %d", ErrCorrupt, off, t.floor)
	}
	t.ensure(off + 1)
	if off >= t.hi {
		t.hi = off + 1
	}
	return t.slot(off), nil
}

func (t *Tracker) applySnapshot(s *Snapshot) error {
	if !s.Done.IsEmpty() && uint64(s.Done.Maximum()) >= maxSpan {
		return fmt.Errorf("%w: done offset %d above the floor", ErrCorrupt, s.Done.Maximum())
	}
	fresh, _ := New(t.cfg, s.Floor)
	fresh.members, fresh.ring = t.members, t.ring
	*t = *fresh
	var err error
	s.Done.Iterate(func(x uint32) bool {
		var sl *slot
		if sl, err = t.restoreSlot(s.Floor + uint64(x)); err != nil {
			return false
		}
		sl.state = stDone
		return true
	})
	if err != nil {
		return err
	}
	t.done = roaring.New()
	t.done.Or(s.Done)
	for _, e := range s.Entries {
		sl, err := t.restoreSlot(e.Offset)
		if err != nil {
			return err
		}
		if sl.state == stDone {
			return fmt.Errorf("%w: snapshot entry %d is also done", ErrCorrupt, e.Offset)
		}
		sl.count = uint16(e.Deliveries)
		if e.Dead {
			sl.state = stDead
			if e.LastError != "" {
				t.errs[e.Offset] = e.LastError
			}
		} else {
			sl.state = stWaiting
			t.waiting++
		}
	}
	t.advanceFloor()
	return nil
}
