package ring

import (
	"fmt"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Waker lets ordinary goroutines wake a ring: Wake writes to an eventfd that
// the ring reads (PrepareWakerRead). Wake is safe from any goroutine and
// coalesces: after the first Wake, further calls are a single atomic load
// until the ring's owner calls Ack.
//
// Protocol for the owner: arm PrepareWakerRead; when its completion arrives,
// call Ack, then look for work (a mailbox), then re-arm. A Wake that races
// with the look either is seen by it or writes the eventfd again, so no
// wake-up is lost.
type Waker struct {
	fd      int
	pending atomic.Bool
	one     [8]byte // the counter increment, read-only after NewWaker
	buf     [8]byte // read target; owned by the kernel while a read is in flight
}

// NewWaker creates a Waker with its eventfd. The fd is blocking on purpose:
// a ring read of a non-blocking eventfd may complete with -EAGAIN instead of
// waiting.
func NewWaker() (*Waker, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("ring: eventfd: %w", err)
	}
	w := &Waker{fd: fd}
	w.one[0] = 1 // the counter is a host-endian u64; this package is little-endian only
	return w, nil
}

// Wake makes the ring's pending eventfd read complete. Cheap when a wake-up
// is already pending.
func (w *Waker) Wake() error {
	if w.pending.Load() || w.pending.Swap(true) {
		return nil
	}
	if _, err := unix.Write(w.fd, w.one[:]); err != nil {
		w.pending.Store(false)
		return fmt.Errorf("ring: wake: %w", err)
	}
	return nil
}

// Ack re-enables Wake; the owner calls it on the read's completion, before
// it looks for work.
func (w *Waker) Ack() { w.pending.Store(false) }

// Fd returns the eventfd, e.g. for PreparePollAdd.
func (w *Waker) Fd() int { return w.fd }

// Close closes the eventfd. No read of it may be in flight.
func (w *Waker) Close() error { return unix.Close(w.fd) }
