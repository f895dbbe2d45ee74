package ring

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"
)

// kernelAtLeast reports whether the running kernel is at least major.minor.
func kernelAtLeast(t *testing.T, major, minor int) bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	rel := unix.ByteSliceToString(u.Release[:])
	parts := strings.SplitN(rel, ".", 3)
	maj, _ := strconv.Atoi(parts[0])
	mnr, _ := strconv.Atoi(strings.TrimFunc(parts[1], func(c rune) bool { return c < '0' || c > '9' }))
	return maj > major || maj == major && mnr >= minor
}

func TestNewGetsSingleIssuerAndDeferTaskrun(t *testing.T) {
	defer runtime.UnlockOSThread()
	r := newTestRing(t, 64)
	if !kernelAtLeast(t, 6, 1) {
		t.Skip("DEFER_TASKRUN needs Linux 6.1")
	}
	if !r.SingleIssuer() || !r.DeferTaskrun() {
		t.Fatalf("single issuer %v, defer taskrun %v; want both", r.SingleIssuer(), r.DeferTaskrun())
	}
	if sq, cq := r.Entries(); sq != 64 || cq != 128 {
		t.Fatalf("entries sq %d cq %d, want 64/128", sq, cq)
	}
	if r.Fd() < 0 {
		t.Fatalf("fd %d", r.Fd())
	}
}

func TestNewCQSize(t *testing.T) {
	r, err := New(8, Options{CQEntries: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if sq, cq := r.Entries(); sq != 8 || cq != 128 {
		t.Fatalf("entries sq %d cq %d, want 8/128", sq, cq)
	}
	if r.SingleIssuer() || r.DeferTaskrun() {
		t.Fatal("got issuer flags that were not asked for")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v, want ErrClosed", err)
	}
}

// TestSetupFallsBackOnEINVAL drives setupRing with a kernel that refuses
// DEFER_TASKRUN, then one that refuses everything but plain setup, then one
// that fails with another error (which must not be retried).
func TestSetupFallsBackOnEINVAL(t *testing.T) {
	opts := Options{SingleIssuer: true, DeferTaskrun: true, CQEntries: 256}
	var tried []uint32
	refuse := func(mask uint32) func(uint32, *setupParams) error {
		return func(_ uint32, p *setupParams) error {
			tried = append(tried, p.flags)
			if p.cqEntries != 256 {
				return fmt.Errorf("cq entries %d not passed", p.cqEntries)
			}
			if p.flags&mask != 0 {
				return unix.EINVAL
			}
			return nil
		}
	}
	cq := giouring.SetupCQSize | giouring.SetupClamp
	p, err := setupRing(8, opts, refuse(giouring.SetupDeferTaskrun))
	want := cq | giouring.SetupSubmitAll | giouring.SetupSingleIssuer | giouring.SetupCoopTaskrun
	if err != nil || p.flags != want || len(tried) != 2 {
		t.Fatalf("no DEFER_TASKRUN: flags %#x err %v after %d tries, want %#x", p.flags, err, len(tried), want)
	}
	tried = nil
	p, err = setupRing(8, opts, refuse(^cq))
	if err != nil || p.flags != cq || len(tried) != 4 {
		t.Fatalf("old kernel: flags %#x err %v after %d tries %#x", p.flags, err, len(tried), tried)
	}
	tried = nil
	_, err = setupRing(8, opts, func(_ uint32, p *setupParams) error { tried = append(tried, p.flags); return unix.ENOMEM })
	if !errors.Is(err, unix.ENOMEM) || len(tried) != 1 {
		t.Fatalf("ENOMEM: err %v after %d tries", err, len(tried))
	}
}

// TestSubmitFromOtherThreadIsNotIssuer: a SINGLE_ISSUER ring refuses a
// submit from another thread, and the error is classified.
func TestSubmitFromOtherThreadIsNotIssuer(t *testing.T) {
	defer runtime.UnlockOSThread()
	r := newTestRing(t, 8)
	if !r.SingleIssuer() {
		t.Skip("kernel without SINGLE_ISSUER")
	}
	r.PrepareNop(7)
	errc := make(chan error)
	go func() {
		runtime.LockOSThread() // a locked goroutine has a thread of its own
		defer runtime.UnlockOSThread()
		_, err := r.Submit()
		errc <- err
	}()
	if err := <-errc; !errors.Is(err, ErrNotIssuer) {
		t.Fatalf("submit from another thread: %v, want ErrNotIssuer", err)
	}
	if c := collectOne(t, r, 7); c.res != 0 {
		t.Fatalf("nop res %d", c.res)
	}
}

// TestPrepareSubmitsWhenSQFull: more Prepare calls than SQ entries submit on
// the way and none is lost.
func TestPrepareSubmitsWhenSQFull(t *testing.T) {
	defer runtime.UnlockOSThread()
	r := newTestRing(t, 4)
	const n = 11 // < CQ size (8) + 4 would overflow; drain between batches
	seen := map[uint64]bool{}
	for i := uint64(0); i < n; i++ {
		r.PrepareNop(i)
		if i%4 == 3 { // SQ full after this one; reap what the next Prepare submits
			r.PrepareNop(100 + i)
			for _, c := range collect(t, r, 5) {
				seen[c.ud] = true
			}
		}
	}
	for _, c := range collect(t, r, n%4) {
		seen[c.ud] = true
	}
	for i := uint64(0); i < n; i++ {
		if !seen[i] {
			t.Fatalf("nop %d lost; seen %v", i, seen)
		}
	}
}

// growStack recurses with large frames so the goroutine's stack is copied.
func growStack(depth int) byte {
	var pad [1024]byte
	pad[depth%1024] = byte(depth)
	if depth == 0 {
		return pad[0]
	}
	return growStack(depth-1) + pad[depth%1024]
}

// TestPrepareKeepsBuffersOffTheStack: a buffer declared as a local array is
// received into after the goroutine's stack has grown (and moved). Had the
// compiler kept the array on the stack, the kernel would write to the old
// stack and the array would stay empty.
func TestPrepareKeepsBuffersOffTheStack(t *testing.T) {
	defer runtime.UnlockOSThread()
	r := newTestRing(t, 8)
	a, b := socketPair(t)
	var buf [32]byte
	r.PrepareRecv(a, buf[:], 1)
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	growStack(2048) // ~2 MiB of frames
	msg := []byte("after the stack moved")
	if _, err := unix.Write(b, msg); err != nil {
		t.Fatal(err)
	}
	c := collectOne(t, r, 1)
	// string() copies: passing buf itself to Fatalf would make it escape.
	if got := string(buf[:max(c.res, 0)]); got != string(msg) {
		t.Fatalf("res %d buf %q, want %q", c.res, got, msg)
	}
}

// TestRoundTripAllocatesNothing: prepare (send, recv, timeout) + submit and
// wait + drain, the reactor's steady state, allocates nothing.
func TestRoundTripAllocatesNothing(t *testing.T) {
	defer runtime.UnlockOSThread()
	r := newTestRing(t, 16)
	a, b := socketPair(t)
	out, in := pattern(512, 1), make([]byte, 512)
	ts := &unix.Timespec{Sec: 10}
	var sent, recvd, cancelled int
	handle := func(ud uint64, res int32, _ uint32) {
		switch ud {
		case 1:
			sent += int(res)
		case 2:
			recvd += int(res)
		case 3:
			cancelled++
		}
	}
	allocs := testing.AllocsPerRun(200, func() {
		r.PrepareSend(a, out, 0, 1)
		r.PrepareRecv(b, in, 2)
		r.PrepareTimeout(ts, 0, 3)
		r.PrepareCancel(3, 4)
		for n := 0; n < 4; {
			if err := r.SubmitAndWait(1, time.Second); err != nil {
				t.Fatal(err)
			}
			n += r.ForEachCQE(handle)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per round trip, want 0", allocs)
	}
	if sent != recvd || sent != 201*512 || cancelled != 201 || !bytes.Equal(in, out) {
		t.Fatalf("sent %d received %d cancelled %d", sent, recvd, cancelled)
	}
}

// TestDroppedPrepareIsSticky: when a Prepare finds the SQ full and cannot
// submit (here: called from a thread that is not the issuer, so the kernel
// refuses), the operation is dropped and every later Submit reports
// ErrSQFull; SQEs already queued are untouched.
func TestDroppedPrepareIsSticky(t *testing.T) {
	defer runtime.UnlockOSThread()
	r := newTestRing(t, 1)
	if !r.SingleIssuer() {
		t.Skip("kernel without SINGLE_ISSUER")
	}
	ts := unix.Timespec{Sec: 1}
	r.PrepareTimeout(&ts, 0, 1) // fills the only SQE slot
	queued := r.last
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		r.PrepareNop(2)
		r.PrepareTimeout(&unix.Timespec{Sec: 99}, 0, 3)
		close(done)
	}()
	<-done
	if r.ts[0] != ts {
		t.Fatalf("dropped timeout overwrote the queued one's timespec: %+v", r.ts[0])
	}
	if queued.UserData != 1 || queued.OpCode != giouring.OpTimeout {
		t.Fatalf("queued SQE changed: %+v", *queued)
	}
	for i := 0; i < 2; i++ {
		if _, err := r.Submit(); !errors.Is(err, ErrSQFull) || !errors.Is(err, ErrNotIssuer) {
			t.Fatalf("Submit %d: %v, want ErrSQFull wrapping ErrNotIssuer", i, err)
		}
	}
	if err := r.SubmitAndWait(1, time.Millisecond); !errors.Is(err, ErrSQFull) {
		t.Fatalf("SubmitAndWait: %v, want ErrSQFull", err)
	}
}
