package ring

import (
	"unsafe"

	"github.com/pawelgaczynski/giouring"
)

// Kernel ABI pieces that giouring either lacks or exposes only through
// unexported fields. Values come from include/uapi/linux/io_uring.h and never
// change.

// sqe is the 64-byte io_uring_sqe as giouring lays it out.
type sqe = giouring.SubmissionQueueEntry

const (
	sqeSize    = 64
	bufEntSize = 16 // struct io_uring_buf

	// bufRingTailOff is the offset of the shared tail in struct
	// io_uring_buf_ring: it overlays bufs[0].resv.
	bufRingTailOff = 14
	// bufRingBidOff is the offset of bufs[0].bid, the half-word that shares
	// an aligned 32-bit word with the tail.
	bufRingBidOff = 12

	maxBufRingEntries = 1 << 15

	msgData = 0 // IORING_MSG_DATA
)

// setupParams mirrors struct io_uring_params (giouring.Params has only
// unexported fields, so CQ sizing is impossible through its API). A pointer
// to it is converted to *giouring.Params for QueueInitParams; the kernel
// writes the resulting sizes and features back into it.
type setupParams struct {
	sqEntries    uint32
	cqEntries    uint32
	flags        uint32
	sqThreadCPU  uint32
	sqThreadIdle uint32
	features     uint32
	wqFd         uint32
	resv         [3]uint32
	sqOff        [10]uint32
	cqOff        [10]uint32
}

// Compile-time layout checks: a mismatch makes an array length negative or
// non-zero, which fails to compile.
var (
	_ [0]struct{} = [unsafe.Sizeof(sqe{}) - sqeSize]struct{}{}
	_ [0]struct{} = [unsafe.Sizeof(setupParams{}) - 120]struct{}{}
	_ [0]struct{} = [unsafe.Sizeof(giouring.Params{}) - 120]struct{}{}
	_ [0]struct{} = [unsafe.Sizeof(giouring.BufAndRing{}) - bufEntSize]struct{}{}
	_ [0]struct{} = [bufRingTailOff - bufRingBidOff - 2]struct{}{} // one aligned 32-bit word
	_ [0]struct{} = [unsafe.Sizeof(giouring.CompletionQueueEvent{}) - 16]struct{}{}
)
