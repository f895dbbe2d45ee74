package replica

import "time"

// Wait is one long-poll registration: a fetch that read this partition
// from Offset and got less than it wanted.
type Wait struct {
	Token  Token
	Offset uint64
	// Seen is the HW the fetch's read of this partition saw (the one it
	// would report). If the HW moved past it before the registration (a
	// read answered through another reactor's mailbox), Wait returns
	// WakeData at once: read again. Never wakes twice at one HW.
	Seen uint64
	// MinBytes: wake when at least this many more bytes are readable at
	// Offset below the HW than at registration (the fetch's min_bytes less
	// what it already has; 1 for "any new data").
	MinBytes int
	// Deadline: wake at the first Tick not before it (max_wait). Required:
	// a zero Deadline has passed.
	Deadline time.Time
}

// WakeReason says why a waiter was woken (or, from Wait, why it was not
// registered). Every reason but WakeNone is final for that registration:
// the driver answers the fetch (WakeData: read again, then answer or
// register anew) and never gets a second Wake for it.
type WakeReason uint8

const (
	WakeNone       WakeReason = iota // registered; a Wake will come
	WakeData                         // MinBytes more bytes readable below the HW
	WakeDeadline                     // the deadline passed
	WakeOutOfRange                   // the offset is below log start or past the log end
	WakeFenced                       // the replica is fenced: no data will come
	WakeReset                        // the replica was reset: read again
)

func (w WakeReason) String() string {
	return [...]string{"none", "data", "deadline", "out-of-range", "fenced", "reset", "?"}[min(int(w), 6)]
}

// Wake is a waiter to wake: its Token and why.
type Wake struct {
	Token  Token
	Reason WakeReason
}

type waiter struct {
	token    Token
	offset   uint64
	start    uint64 // bytes readable at offset below the HW when registered (a hwBytes value)
	need     uint64
	deadline time.Time
}

// Wait registers a long-poll waiter. It returns WakeNone when registered:
// exactly one Wake for it follows in a later Ready (unless CancelWait).
// Otherwise it is not registered and the reason is the answer now: an
// offset outside [log start, log end] (WakeOutOfRange), a fenced replica
// (WakeFenced), a deadline not after the last Tick (WakeDeadline), or
// WakeData when MinBytes ≤ 0 or the HW has passed Seen (read again). So a
// fetch that cannot be served by waiting is never parked, a registration
// is never woken twice, and a WakeData always follows a move of the HW:
// nothing can wake a driver in a loop. It does not allocate in steady
// state.
func (r *Replica) Wait(w Wait) WakeReason {
	switch {
	case w.Offset < r.off.LogStart || w.Offset > r.off.LogEnd:
		return WakeOutOfRange
	case r.fenceErr != nil:
		return WakeFenced
	case !w.Deadline.After(r.now):
		return WakeDeadline
	case w.MinBytes <= 0 || w.Seen < r.off.HighWatermark:
		return WakeData
	}
	r.waiters = append(r.waiters, waiter{token: w.Token, offset: w.Offset, start: r.bytesAt(w.Offset),
		need: uint64(w.MinBytes), deadline: w.Deadline})
	return WakeNone
}

// CancelWait removes the registration with token tok (the fetch was woken
// by another partition, or its connection closed) without a Wake. It
// reports whether there was one.
func (r *Replica) CancelWait(tok Token) bool {
	for i := range r.waiters {
		if r.waiters[i].token == tok {
			r.remove(i)
			return true
		}
	}
	return false
}

// Waiters is the number of registered waiters.
func (r *Replica) Waiters() int { return len(r.waiters) }

// bytesAt is the byte count (a hwBytes value) at which data at off starts
// to be readable below the HW: the HW's own count when off is below it,
// else the start of the visible append holding off.
func (r *Replica) bytesAt(off uint64) uint64 {
	if off <= r.off.HighWatermark {
		return r.hwBytes
	}
	i := r.aboveHW.search(func(v *visible) bool { return v.last >= off })
	if i == r.aboveHW.len() {
		return r.leoBytes
	}
	v := r.aboveHW.at(i)
	return v.cumEnd - v.bytes
}

// wakeReaders wakes the waiters that have their bytes below the HW.
func (r *Replica) wakeReaders() {
	for i := 0; i < len(r.waiters); {
		if w := &r.waiters[i]; r.hwBytes >= w.start+w.need {
			r.wake(i, WakeData)
			continue
		}
		i++
	}
}

func (r *Replica) expireWaiters() {
	for i := 0; i < len(r.waiters); {
		if !r.waiters[i].deadline.After(r.now) {
			r.wake(i, WakeDeadline)
			continue
		}
		i++
	}
}

func (r *Replica) wakeAll(reason WakeReason) {
	for len(r.waiters) > 0 {
		r.wake(len(r.waiters)-1, reason)
	}
}

// wake queues the Wake of waiter i and removes it (the last waiter takes
// its index).
func (r *Replica) wake(i int, reason WakeReason) {
	r.wakes = append(r.wakes, Wake{Token: r.waiters[i].token, Reason: reason})
	r.remove(i)
}

func (r *Replica) remove(i int) {
	last := len(r.waiters) - 1
	r.waiters[i] = r.waiters[last]
	r.waiters[last] = waiter{}
	r.waiters = r.waiters[:last]
}
