package ring

import (
	"runtime"
	"testing"
	"unsafe"

	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"
)

func sqeBytes(s *sqe) [sqeSize]byte { return *(*[sqeSize]byte)(unsafe.Pointer(s)) }

func ptrU64[T any](p *T) uint64 { return uint64(uintptr(unsafe.Pointer(p))) }

// TestPrepareFillsEverySQEField proves each Prepare method writes exactly the
// SQE it should and leaves nothing stale: a one-entry ring reuses its only
// slot, which is filled with 0xA5 before every case, and the prepared SQE must
// equal the expected one byte for byte. Every case then runs against fd -1
// (or an equally harmless target) and is reaped.
func TestPrepareFillsEverySQEField(t *testing.T) {
	defer runtime.UnlockOSThread()
	r := newTestRing(t, 1)
	if sq, _ := r.Entries(); sq != 1 {
		t.Fatalf("sq entries %d, want 1", sq)
	}
	buf := make([]byte, 64)
	iov := []unix.Iovec{{Base: &buf[0], Len: 8}, {Base: &buf[8], Len: 8}, {Base: &buf[16], Len: 8}}
	msg := &unix.Msghdr{Iov: &iov[0], Iovlen: 3}
	ts := &unix.Timespec{Nsec: 1}
	w, err := NewWaker()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	b := ptrU64(&buf[0])
	const ud = 0x5eed_0000_0000_0001
	cases := []struct {
		name string
		prep func()
		want sqe
	}{
		{"nop", func() { r.PrepareNop(ud) }, sqe{OpCode: giouring.OpNop, Fd: -1}},
		{"accept", func() { r.PrepareAccept(-1, false, ud) },
			sqe{OpCode: giouring.OpAccept, Fd: -1, OpcodeFlags: unix.SOCK_CLOEXEC}},
		{"accept multishot", func() { r.PrepareAccept(-1, true, ud) },
			sqe{OpCode: giouring.OpAccept, Fd: -1, OpcodeFlags: unix.SOCK_CLOEXEC, IoPrio: giouring.AcceptMultishot}},
		{"recv multishot", func() { r.PrepareRecvMultishot(-1, 9, ud) },
			sqe{OpCode: giouring.OpRecv, Fd: -1, IoPrio: giouring.RecvMultishot, Flags: giouring.SqeBufferSelect, BufIG: 9}},
		{"recv", func() { r.PrepareRecv(-1, buf, ud) },
			sqe{OpCode: giouring.OpRecv, Fd: -1, Addr: b, Len: 64}},
		{"send", func() { r.PrepareSend(-1, buf[:10], unix.MSG_WAITALL, ud) },
			sqe{OpCode: giouring.OpSend, Fd: -1, Addr: b, Len: 10, OpcodeFlags: unix.MSG_WAITALL}},
		{"send_zc", func() { r.PrepareSendZC(-1, buf[:33], 0, 0, ud) },
			sqe{OpCode: giouring.OpSendZC, Fd: -1, Addr: b, Len: 33}},
		{"send_zc report usage", func() { r.PrepareSendZC(-1, buf[:34], unix.MSG_WAITALL, ZCReportUsage, ud) },
			sqe{OpCode: 47, Fd: -1, Addr: b, Len: 34, OpcodeFlags: unix.MSG_WAITALL, IoPrio: 1 << 3}}, // IORING_OP_SEND_ZC, IORING_SEND_ZC_REPORT_USAGE
		{"sendmsg_zc", func() { r.PrepareSendmsgZC(-1, msg, unix.MSG_NOSIGNAL, 0, ud) },
			sqe{OpCode: 48, Fd: -1, Addr: ptrU64(msg), Len: 1, OpcodeFlags: unix.MSG_NOSIGNAL}}, // IORING_OP_SENDMSG_ZC
		{"sendmsg_zc report usage", func() { r.PrepareSendmsgZC(-1, msg, unix.MSG_WAITALL, ZCReportUsage, ud) },
			sqe{OpCode: 48, Fd: -1, Addr: ptrU64(msg), Len: 1, OpcodeFlags: unix.MSG_WAITALL, IoPrio: 1 << 3}},
		{"writev file", func() { r.PrepareWritev(-1, iov, 4096, ud) },
			sqe{OpCode: giouring.OpWritev, Fd: -1, Addr: ptrU64(&iov[0]), Len: 3, Off: 4096}},
		{"writev stream", func() { r.PrepareWritev(-1, iov, -1, ud) },
			sqe{OpCode: giouring.OpWritev, Fd: -1, Addr: ptrU64(&iov[0]), Len: 3, Off: ^uint64(0)}},
		{"sendmsg", func() { r.PrepareSendmsg(-1, msg, unix.MSG_NOSIGNAL, ud) },
			sqe{OpCode: giouring.OpSendmsg, Fd: -1, Addr: ptrU64(msg), Len: 1, OpcodeFlags: unix.MSG_NOSIGNAL}},
		{"write", func() { r.PrepareWrite(-1, buf[:5], 77, ud) },
			sqe{OpCode: giouring.OpWrite, Fd: -1, Addr: b, Len: 5, Off: 77}},
		{"read", func() { r.PrepareRead(-1, buf[:6], 88, ud) },
			sqe{OpCode: giouring.OpRead, Fd: -1, Addr: b, Len: 6, Off: 88}},
		{"fsync", func() { r.PrepareFsync(-1, false, ud) }, sqe{OpCode: giouring.OpFsync, Fd: -1}},
		{"fdatasync", func() { r.PrepareFsync(-1, true, ud) },
			sqe{OpCode: giouring.OpFsync, Fd: -1, OpcodeFlags: giouring.FsyncDatasync}},
		{"sync_file_range", func() { r.PrepareSyncFileRange(-1, 4<<20, 1<<20, unix.SYNC_FILE_RANGE_WRITE, ud) },
			sqe{OpCode: giouring.OpSyncFileRange, Fd: -1, Len: 1 << 20, Off: 4 << 20, OpcodeFlags: unix.SYNC_FILE_RANGE_WRITE}},
		{"timeout", func() { r.PrepareTimeout(ts, 3, ud) },
			sqe{OpCode: giouring.OpTimeout, Fd: -1, Addr: ptrU64(&r.ts[0]), Len: 1, Off: 3}},
		{"cancel", func() { r.PrepareCancel(0xabc, ud) },
			sqe{OpCode: giouring.OpAsyncCancel, Fd: -1, Addr: 0xabc, OpcodeFlags: giouring.AsyncCancelAll}},
		{"close", func() { r.PrepareClose(-1, ud) }, sqe{OpCode: giouring.OpClose, Fd: -1}},
		{"msg_ring", func() { r.PrepareMsgRing(-1, 42, 0xfeed, ud) },
			sqe{OpCode: giouring.OpMsgRing, Fd: -1, Len: 42, Off: 0xfeed}},
		{"poll multishot", func() { r.PreparePollAdd(-1, unix.POLLIN, true, ud) },
			sqe{OpCode: giouring.OpPollAdd, Fd: -1, Len: giouring.PollAddMulti, OpcodeFlags: unix.POLLIN}},
		{"poll", func() { r.PreparePollAdd(-1, unix.POLLOUT, false, ud) },
			sqe{OpCode: giouring.OpPollAdd, Fd: -1, OpcodeFlags: unix.POLLOUT}},
		{"waker read", func() { _ = w.Wake(); r.PrepareWakerRead(w, ud) },
			sqe{OpCode: giouring.OpRead, Fd: int32(w.fd), Addr: ptrU64(&w.buf[0]), Len: 8}},
	}
	r.PrepareNop(1)
	collectOne(t, r, 1)
	for _, c := range cases {
		slot := r.last
		*(*[sqeSize]byte)(unsafe.Pointer(slot)) = [sqeSize]byte(bytesOf(0xA5, sqeSize))
		c.prep()
		if r.last != slot {
			t.Fatalf("%s: prepared into a different slot", c.name)
		}
		c.want.UserData = ud
		if got, want := sqeBytes(slot), sqeBytes(&c.want); got != want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, *slot, c.want)
		}
		reap(t, r, ud)
		w.Ack()
	}
	if r.ts[0] != *ts {
		t.Errorf("timeout copied %+v, want %+v", r.ts[0], *ts)
	}
}

func bytesOf(v byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = v
	}
	return b
}

// reap waits for ud's final completion (one without HasMore).
func reap(t *testing.T, r *Ring, ud uint64) {
	t.Helper()
	for {
		for _, c := range collect(t, r, 1) {
			if c.ud != ud {
				t.Fatalf("completion %+v, want ud %#x", c, ud)
			}
			if !HasMore(c.flags) {
				return
			}
		}
	}
}
