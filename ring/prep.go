package ring

import (
	"unsafe"

	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"
)

// Every Prepare method takes a zeroed SQE from getSQE and sets each field the
// opcode reads; nothing from giouring's Prepare* helpers is used (see the
// package documentation for why).

// prep fills the fields common to every opcode.
func (r *Ring) prep(op uint8, fd int, addr uint64, n uint32, off uint64, ud uint64) *sqe {
	s := r.getSQE()
	s.OpCode = op
	s.Fd = int32(fd)
	s.Addr = addr
	s.Len = n
	s.Off = off
	s.UserData = ud
	return s
}

// addr returns the address of p for the kernel. Storing p in the ring makes
// it escape, so the compiler never places memory handed to the kernel on a
// goroutine stack, which moves when it grows. (A uintptr alone hides the
// pointer from escape analysis.)
func (r *Ring) addr(p unsafe.Pointer) uint64 {
	r.sink = p
	return uint64(uintptr(p))
}

// bufAddr returns the address of b's first byte, or 0 for an empty slice.
func (r *Ring) bufAddr(b []byte) uint64 {
	if len(b) == 0 {
		return 0
	}
	return r.addr(unsafe.Pointer(&b[0]))
}

// PrepareNop queues a no-op that completes with res 0.
func (r *Ring) PrepareNop(ud uint64) {
	r.prep(giouring.OpNop, -1, 0, 0, 0, ud)
}

// PrepareAccept accepts connections on the listening socket fd; the
// completion's res is the new socket (SOCK_CLOEXEC). A multishot accept
// posts one completion per connection while HasMore(flags) holds.
func (r *Ring) PrepareAccept(fd int, multishot bool, ud uint64) {
	s := r.prep(giouring.OpAccept, fd, 0, 0, 0, ud)
	s.OpcodeFlags = unix.SOCK_CLOEXEC
	if multishot {
		s.IoPrio = giouring.AcceptMultishot
	}
}

// PrepareRecvMultishot receives into buffers of the provided buffer ring
// group: one completion per filled buffer (BufferID(flags)), while
// HasMore(flags) holds. It ends with -ENOBUFS when the group runs dry; re-arm
// after recycling buffers.
func (r *Ring) PrepareRecvMultishot(fd int, group uint16, ud uint64) {
	s := r.prep(giouring.OpRecv, fd, 0, 0, 0, ud)
	s.IoPrio = giouring.RecvMultishot
	s.Flags = giouring.SqeBufferSelect
	s.BufIG = group
}

// PrepareRecv receives at most len(buf) bytes into buf.
func (r *Ring) PrepareRecv(fd int, buf []byte, ud uint64) {
	r.prep(giouring.OpRecv, fd, r.bufAddr(buf), uint32(len(buf)), 0, ud)
}

// PrepareSend sends buf with send(2) flags msgFlags. With unix.MSG_WAITALL
// the kernel retries a short send on a stream socket until all is sent.
func (r *Ring) PrepareSend(fd int, buf []byte, msgFlags uint32, ud uint64) {
	s := r.prep(giouring.OpSend, fd, r.bufAddr(buf), uint32(len(buf)), 0, ud)
	s.OpcodeFlags = msgFlags
}

// ZCFlags are a zero-copy send's io_uring flags (the SQE's ioprio field).
type ZCFlags uint16

// ZCReportUsage (IORING_SEND_ZC_REPORT_USAGE) asks the kernel to say in the
// notification whether it had to copy the data after all: see ZCCopied.
// Loopback and most virtual devices always copy.
const ZCReportUsage ZCFlags = ZCFlags(giouring.SendZCReportUsage)

// ZCCopied reports IORING_NOTIF_USAGE_ZC_COPIED in a notification's res
// (a send prepared with ZCReportUsage): the kernel copied some or all of
// the data instead of sending it from the caller's pages.
func ZCCopied(res int32) bool { return uint32(res)&giouring.NotifUsageZCCopied != 0 }

// PrepareSendZC sends buf without copying it. It posts two completions with
// the same ud: the result (HasMore set), then a notification (IsNotif) once
// the kernel no longer reads buf. buf must stay untouched until the
// notification. A failed send may post only the first.
func (r *Ring) PrepareSendZC(fd int, buf []byte, msgFlags uint32, zc ZCFlags, ud uint64) {
	s := r.prep(giouring.OpSendZC, fd, r.bufAddr(buf), uint32(len(buf)), 0, ud)
	s.OpcodeFlags = msgFlags
	s.IoPrio = uint16(zc)
}

// PrepareSendmsgZC is PrepareSendmsg without copying the slices msg
// describes: completions as for PrepareSendZC (result with HasMore, then
// the notification). Every slice msg points at must stay untouched until
// the notification, not just the result; msg and its iovec array only
// until the result (the kernel has imported them by then).
func (r *Ring) PrepareSendmsgZC(fd int, msg *unix.Msghdr, msgFlags uint32, zc ZCFlags, ud uint64) {
	s := r.prep(giouring.OpSendMsgZC, fd, r.addr(unsafe.Pointer(msg)), 1, 0, ud)
	s.OpcodeFlags = msgFlags
	s.IoPrio = uint16(zc)
}

// PrepareWritev writes the iovecs at file offset off; off = -1 writes at the
// current position, which is what sockets and pipes need. On a socket the
// write may be short; resubmit the rest.
func (r *Ring) PrepareWritev(fd int, iov []unix.Iovec, off int64, ud uint64) {
	var addr uint64
	if len(iov) > 0 {
		addr = r.addr(unsafe.Pointer(&iov[0]))
	}
	r.prep(giouring.OpWritev, fd, addr, uint32(len(iov)), uint64(off), ud)
}

// PrepareSendmsg sends msg with sendmsg(2) flags msgFlags: one header plus
// several slices in one operation (see Msg).
func (r *Ring) PrepareSendmsg(fd int, msg *unix.Msghdr, msgFlags uint32, ud uint64) {
	s := r.prep(giouring.OpSendmsg, fd, r.addr(unsafe.Pointer(msg)), 1, 0, ud)
	s.OpcodeFlags = msgFlags
}

// PrepareWrite writes buf at file offset off.
func (r *Ring) PrepareWrite(fd int, buf []byte, off uint64, ud uint64) {
	r.prep(giouring.OpWrite, fd, r.bufAddr(buf), uint32(len(buf)), off, ud)
}

// PrepareRead reads at most len(buf) bytes at file offset off.
func (r *Ring) PrepareRead(fd int, buf []byte, off uint64, ud uint64) {
	r.prep(giouring.OpRead, fd, r.bufAddr(buf), uint32(len(buf)), off, ud)
}

// PrepareFsync flushes fd to stable storage: fdatasync(2) when datasync is
// set, fsync(2) otherwise.
func (r *Ring) PrepareFsync(fd int, datasync bool, ud uint64) {
	s := r.prep(giouring.OpFsync, fd, 0, 0, 0, ud)
	if datasync {
		s.OpcodeFlags = giouring.FsyncDatasync
	}
}

// PrepareSyncFileRange is sync_file_range(2) of n bytes at file offset off
// of fd with flags (unix.SYNC_FILE_RANGE_WRITE: start writeback of the
// range's dirty pages and return without waiting for it). The kernel runs
// it on an io-wq worker.
func (r *Ring) PrepareSyncFileRange(fd int, off uint64, n uint32, flags uint32, ud uint64) {
	s := r.prep(giouring.OpSyncFileRange, fd, 0, n, off, ud)
	s.OpcodeFlags = flags
}

// PrepareTimeout completes after *ts (relative) with res -ETIME, or earlier
// with res 0 once count other completions have been posted (count 0: time
// only). The ring copies *ts; the caller may reuse it at once.
func (r *Ring) PrepareTimeout(ts *unix.Timespec, count uint32, ud uint64) {
	s := r.getSQE()
	if s == &r.spare {
		return // dropped; Submit reports ErrSQFull
	}
	tsp := r.tsSlot()
	*tsp = *ts
	s.OpCode = giouring.OpTimeout
	s.Fd = -1
	s.Addr = uint64(uintptr(unsafe.Pointer(tsp)))
	s.Len = 1
	s.Off = uint64(count)
	s.UserData = ud
}

// PrepareCancel cancels every in-flight operation whose user data is
// targetUD. Each cancelled operation completes with -ECANCELED (or its own
// result if it won the race); this one completes with the number cancelled
// (0 when nothing matched).
func (r *Ring) PrepareCancel(targetUD uint64, ud uint64) {
	s := r.prep(giouring.OpAsyncCancel, -1, targetUD, 0, 0, ud)
	s.OpcodeFlags = giouring.AsyncCancelAll
}

// PrepareClose closes fd.
func (r *Ring) PrepareClose(fd int, ud uint64) {
	r.prep(giouring.OpClose, fd, 0, 0, 0, ud)
}

// PrepareMsgRing posts a completion {user data: data, res: res, flags: 0} to
// the ring whose fd is targetRingFd, waking it if it waits. This ring gets
// its own completion (ud) with res 0 or an error.
func (r *Ring) PrepareMsgRing(targetRingFd int, res int32, data uint64, ud uint64) {
	r.prep(giouring.OpMsgRing, targetRingFd, msgData, uint32(res), data, ud)
}

// PreparePollAdd waits until fd reports one of events (unix.POLLIN, ...);
// res is the ready mask. A multishot poll posts a completion per wake-up
// while HasMore(flags) holds.
func (r *Ring) PreparePollAdd(fd int, events uint32, multishot bool, ud uint64) {
	var n uint32
	if multishot {
		n = giouring.PollAddMulti
	}
	s := r.prep(giouring.OpPollAdd, fd, 0, n, 0, ud)
	s.OpcodeFlags = events
}

// PrepareWakerRead reads w's eventfd: it completes (res 8) once Wake has
// been called. Call w.Ack, then re-arm, when the completion arrives.
func (r *Ring) PrepareWakerRead(w *Waker, ud uint64) {
	r.PrepareRead(w.fd, w.buf[:], 0, ud)
}
