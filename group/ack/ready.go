package ack

import "github.com/RoaringBitmap/roaring/v2"

// Ready is the work the driver must do after feeding the tracker inputs.
// Its slices belong to the tracker and stay valid until Advance.
type Ready struct {
	// Log is one or more frames to append, as one record, to the group's
	// internal log. Append it durably before answering the inputs that
	// produced it: before sending acquired records to the member (or a
	// crash forgets those deliveries in the counts) and before confirming
	// acks to the client (or a crash redelivers acked records).
	Log []byte
	// Snapshot: Log starts with a snapshot, so this partition's earlier
	// records in the internal log may be dropped once Log is durable.
	Snapshot bool
	// DeadLetters are records to append to the dead-letter topic; confirm
	// each with DeadLettered once its append is durable.
	DeadLetters []DeadLetter
}

// HasReady reports whether Ready has anything for the driver.
func (t *Tracker) HasReady() bool {
	return t.wantSnap || len(t.acq) > 0 || len(t.doneOut) > 0 || len(t.deadLog) > 0 || len(t.deadOut) > 0
}

// Ready returns the work to do now: the state changes since the last
// Ready as frames (a snapshot instead every SnapshotEvery changes) and
// the dead letters queued since. Call Advance before the next Ready.
func (t *Tracker) Ready() Ready {
	if t.handed {
		panic("BUG: ack: Ready called twice without Advance")
	}
	t.handed = true
	buf := t.buf[:0]
	var snap bool
	switch {
	case t.wantSnap || t.changes >= t.cfg.SnapshotEvery:
		s := t.Snapshot()
		buf = AppendSnapshot(buf, &s)
		snap, t.wantSnap, t.changes = true, false, 0
	default:
		// Done first: replayed, it moves the floor to where it is now, so
		// every offset of the frames after it lies below floor + window.
		if len(t.doneOut) > 0 {
			buf = AppendDone(buf, t.doneOut)
		}
		for _, dl := range t.deadLog {
			buf = AppendDeadLetter(buf, Entry{Offset: dl.Offset, Deliveries: dl.Deliveries, LastError: dl.LastError, Dead: true})
		}
		if len(t.acq) > 0 {
			buf = AppendAcquired(buf, t.acq)
		}
	}
	t.buf = buf
	t.acq, t.doneOut, t.deadLog = shrink(t.acq), shrink(t.doneOut), t.deadLog[:0]
	t.nDead = len(t.deadOut)
	return Ready{Log: buf, Snapshot: snap, DeadLetters: t.deadOut}
}

// Advance tells the tracker the last Ready was acted on.
func (t *Tracker) Advance() {
	if !t.handed {
		panic("BUG: ack: Advance without Ready")
	}
	t.handed = false
	if cap(t.buf) > keepBytes {
		t.buf = nil // a snapshot of a large window: do not keep its buffer
	}
	t.deadOut = t.deadOut[:copy(t.deadOut, t.deadOut[t.nDead:])]
	t.nDead = 0
}

// Snapshot returns the durable state: the floor, the done offsets above
// it and every record handed out and not done, with its delivery count.
// Lock holders and deadlines are not part of it (a restart releases every
// lock), nor are nack backoffs.
func (t *Tracker) Snapshot() Snapshot {
	done := t.done
	if t.base != t.floor {
		done = roaring.AddOffset64(t.done, -int64(t.floor-t.base))
	} else {
		done = done.Clone()
	}
	s := Snapshot{Floor: t.floor, Done: done}
	for off := t.floor; off < t.hi; off++ {
		sl := t.slot(off)
		if sl.count == 0 || sl.state == stDone {
			continue
		}
		e := Entry{Offset: off, Deliveries: int(sl.count)}
		if sl.state == stDead {
			e.Dead, e.LastError = true, t.errs[off]
		}
		s.Entries = append(s.Entries, e)
	}
	return s
}

// keepBytes and keepRuns bound the output buffers kept between Readys.
const (
	keepBytes = 1 << 20
	keepRuns  = 4096
)

// shrink empties a slice, dropping it when a burst made it large.
func shrink[T any](s []T) []T {
	if cap(s) > keepRuns {
		return nil
	}
	return s[:0]
}
