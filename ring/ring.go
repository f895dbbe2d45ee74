package ring

import (
	"errors"
	"fmt"
	"syscall"
	"time"
	"unsafe"

	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"
)

// Sentinel errors. Test with errors.Is.
var (
	// ErrNotIssuer: the ring was set up with SINGLE_ISSUER and a thread other
	// than the one that created it tried to submit or wait (kernel EEXIST).
	ErrNotIssuer = errors.New("ring: submit from a thread other than the ring's issuer")
	// ErrSQFull: a Prepare call found no free SQE even after submitting; the
	// operation was dropped, so the ring's state is unknown and the owner
	// must shut it down. The error is sticky.
	ErrSQFull = errors.New("ring: submission queue full after submit; operation dropped")
	// ErrUnsupported: the kernel lacks a feature the package relies on.
	ErrUnsupported = errors.New("ring: kernel lacks a required io_uring feature")
	// ErrClosed: the ring was closed.
	ErrClosed = errors.New("ring: closed")
)

// Options select optional setup flags. Flags the kernel refuses (EINVAL) are
// dropped one step at a time; the ring reports what it got.
type Options struct {
	// SingleIssuer asks for IORING_SETUP_SINGLE_ISSUER: only the creating
	// thread may submit. The caller must hold runtime.LockOSThread.
	SingleIssuer bool
	// DeferTaskrun asks for IORING_SETUP_DEFER_TASKRUN (implies
	// SingleIssuer): completions are posted only when the owner waits, which
	// SubmitAndWait does.
	DeferTaskrun bool
	// CQEntries sizes the completion queue (rounded up to a power of two,
	// clamped by the kernel); 0 means twice the submission queue.
	CQEntries uint32
}

// Ring is one io_uring instance. It is owned by one goroutine and is not safe
// for concurrent use (see the package documentation).
type Ring struct {
	ring      *giouring.Ring
	flags     uint32 // setup flags the kernel accepted
	features  uint32
	sqEntries uint32
	cqEntries uint32

	// sqeSeq counts SQEs handed out; ts[sqeSeq%len(ts)] holds the timespec
	// of a timeout SQE until the kernel has consumed that SQE.
	sqeSeq uint32
	ts     []unix.Timespec
	last   *sqe           // most recently prepared SQE (tests inspect it)
	spare  sqe            // target of a Prepare call that found no SQE (see ErrSQFull)
	sink   unsafe.Pointer // see addr: forces kernel-bound memory to escape

	waitTS   syscall.Timespec
	err      error // sticky: ErrSQFull
	bufRings []*BufRing
	closed   bool
}

// New creates a ring with at least entries submission slots.
func New(entries uint32, opts Options) (*Ring, error) {
	r := &Ring{ring: giouring.NewRing()}
	p, err := setupRing(entries, opts, func(n uint32, p *setupParams) error {
		return r.ring.QueueInitParams(n, (*giouring.Params)(unsafe.Pointer(p)))
	})
	if err != nil {
		return nil, fmt.Errorf("ring: io_uring_setup(%d): %w", entries, err)
	}
	r.flags, r.features = p.flags, p.features
	r.sqEntries, r.cqEntries = p.sqEntries, p.cqEntries
	if r.features&giouring.FeatExtArg == 0 || r.features&giouring.FeatSubmitStable == 0 {
		r.ring.QueueExit()
		return nil, fmt.Errorf("%w: EXT_ARG and SUBMIT_STABLE (Linux 5.11+)", ErrUnsupported)
	}
	r.ts = make([]unix.Timespec, r.sqEntries)
	return r, nil
}

// setupAttempts lists the setup flag sets to try, best first.
func setupAttempts(opts Options) []uint32 {
	base := uint32(0)
	if opts.CQEntries > 0 {
		base |= giouring.SetupCQSize | giouring.SetupClamp
	}
	modern := base | giouring.SetupSubmitAll
	var out []uint32
	if opts.DeferTaskrun {
		out = append(out, modern|giouring.SetupSingleIssuer|giouring.SetupDeferTaskrun)
	}
	if opts.SingleIssuer || opts.DeferTaskrun {
		out = append(out, modern|giouring.SetupSingleIssuer|giouring.SetupCoopTaskrun)
	}
	return append(out, modern|giouring.SetupCoopTaskrun, base)
}

// setupRing tries each flag set in turn, moving on only when the kernel
// answers EINVAL (an unknown or unsupported flag).
func setupRing(entries uint32, opts Options, initRing func(uint32, *setupParams) error) (*setupParams, error) {
	var err error
	for _, flags := range setupAttempts(opts) {
		p := &setupParams{flags: flags, cqEntries: opts.CQEntries}
		if err = initRing(entries, p); err == nil {
			return p, nil
		}
		if !errors.Is(err, unix.EINVAL) {
			return nil, err
		}
	}
	return nil, err
}

// Close closes any BufRing still open, unmaps the ring and closes its fd.
// Call it only after the ring's operations have completed or been cancelled
// and reaped: the kernel cancels what is left, but until it has, those
// operations may still use their memory.
func (r *Ring) Close() error {
	if r.closed {
		return ErrClosed
	}
	var first error
	for len(r.bufRings) > 0 {
		if err := r.bufRings[len(r.bufRings)-1].Close(); err != nil && first == nil {
			first = err
		}
	}
	r.ring.QueueExit()
	r.closed = true
	r.err = ErrClosed
	return first
}

// Fd returns the ring's file descriptor, the target of MSG_RING from
// another ring.
func (r *Ring) Fd() int { return r.ring.RingFd() }

// SingleIssuer reports whether the kernel accepted IORING_SETUP_SINGLE_ISSUER.
func (r *Ring) SingleIssuer() bool { return r.flags&giouring.SetupSingleIssuer != 0 }

// DeferTaskrun reports whether the kernel accepted IORING_SETUP_DEFER_TASKRUN.
func (r *Ring) DeferTaskrun() bool { return r.flags&giouring.SetupDeferTaskrun != 0 }

// Entries returns the submission and completion queue sizes.
func (r *Ring) Entries() (sq, cq uint32) { return r.sqEntries, r.cqEntries }

// getSQE returns a zeroed SQE, submitting first when the queue is full.
func (r *Ring) getSQE() *sqe {
	if r.closed {
		panic("BUG: ring: Prepare on a closed ring")
	}
	s := r.ring.GetSQE()
	if s == nil {
		_, err := r.Submit()
		if s = r.ring.GetSQE(); s == nil {
			if r.err == nil {
				r.err = ErrSQFull
				if err != nil {
					r.err = fmt.Errorf("%w: %w", ErrSQFull, err)
				}
			}
			s = &r.spare
		}
	}
	if s != &r.spare {
		r.sqeSeq++
	}
	*s = sqe{}
	r.last = s
	return s
}

// tsSlot returns the timespec storage tied to the SQE just handed out.
func (r *Ring) tsSlot() *unix.Timespec {
	return &r.ts[(r.sqeSeq-1)%uint32(len(r.ts))]
}

// Submit hands every prepared SQE to the kernel and returns how many it
// consumed. EINTR, EAGAIN and EBUSY are not errors: the SQEs stay queued
// and the next Submit or SubmitAndWait retries them.
func (r *Ring) Submit() (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.ring.Submit()
	return int(n), enterError(err)
}

// SubmitAndWait submits every prepared SQE and waits until at least waitNr
// completions are ready or the timeout passes (timeout <= 0: no limit).
// Returning nil does not promise that waitNr completions are ready: a
// timeout, a signal (EINTR) or EAGAIN/EBUSY return early; drain with
// ForEachCQE and loop.
func (r *Ring) SubmitAndWait(waitNr uint32, timeout time.Duration) error {
	if r.err != nil {
		return r.err
	}
	if timeout <= 0 {
		_, err := r.ring.SubmitAndWait(waitNr)
		return enterError(err)
	}
	r.waitTS = syscall.NsecToTimespec(int64(timeout))
	_, err := r.ring.SubmitAndWaitTimeout(waitNr, &r.waitTS, nil)
	return enterError(err)
}

// enterError classifies an io_uring_enter error.
func enterError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EINTR), errors.Is(err, unix.ETIME),
		errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EBUSY):
		return nil
	case errors.Is(err, unix.EEXIST):
		return ErrNotIssuer
	}
	return fmt.Errorf("ring: io_uring_enter: %w", err)
}

// ForEachCQE calls fn for every completion ready now, in order, then marks
// them consumed. It returns how many it saw. fn may prepare new SQEs.
func (r *Ring) ForEachCQE(fn func(ud uint64, res int32, flags uint32)) int {
	if r.closed {
		panic("BUG: ring: ForEachCQE on a closed ring")
	}
	n := 0
	r.ring.ForEachCQE(func(c *giouring.CompletionQueueEvent) {
		fn(c.UserData, c.Res, c.Flags)
		n++
	})
	r.ring.CQAdvance(uint32(n))
	return n
}

// HasMore reports IORING_CQE_F_MORE: the operation (multishot, or a
// zero-copy send awaiting its notification) will post more completions.
func HasMore(flags uint32) bool { return flags&giouring.CQEFMore != 0 }

// BufferID returns the provided-buffer id the completion consumed, if any.
func BufferID(flags uint32) (uint16, bool) {
	if flags&giouring.CQEFBuffer == 0 {
		return 0, false
	}
	return uint16(flags >> giouring.CQEBufferShift), true
}

// IsNotif reports IORING_CQE_F_NOTIF: the zero-copy send's buffer is free.
func IsNotif(flags uint32) bool { return flags&giouring.CQEFNotif != 0 }

// SockNonEmpty reports IORING_CQE_F_SOCK_NONEMPTY: more data is waiting.
func SockNonEmpty(flags uint32) bool { return flags&giouring.CQEFSockNonempty != 0 }

// Supports reports whether the kernel implements opcode op
// (IORING_REGISTER_PROBE), e.g. giouring.OpSendMsgZC; false when the probe
// itself is unsupported. It makes one io_uring_register call: ask once at
// setup, not on a hot path.
func (r *Ring) Supports(op uint8) bool {
	p, err := r.ring.GetProbeRing()
	return err == nil && p.IsSupported(op)
}

// SupportsSendmsgZC reports whether PrepareSendmsgZC's opcode
// (IORING_OP_SENDMSG_ZC, Linux 6.1) is available. ZCReportUsage needs 6.2:
// on 6.1 a send asking for it fails with -EINVAL before sending anything.
func (r *Ring) SupportsSendmsgZC() bool { return r.Supports(giouring.OpSendMsgZC) }
