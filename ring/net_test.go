package ring

import (
	"bytes"
	"runtime"
	"slices"
	"testing"

	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"
)

// TestAcceptMultishot: one multishot accept yields every connection, each
// with HasMore, and each accepted fd is the peer of the matching dial.
func TestAcceptMultishot(t *testing.T) {
	defer runtime.UnlockOSThread()
	r := newTestRing(t, 8)
	ln, port := listenTCP(t)
	r.PrepareAccept(ln, true, 42)
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	const n = 3
	clientPorts := map[int]bool{}
	for i := 0; i < n; i++ {
		c := dialTCP(t, port)
		sa, err := unix.Getsockname(c)
		if err != nil {
			t.Fatal(err)
		}
		clientPorts[sa.(*unix.SockaddrInet4).Port] = true
	}
	got := collect(t, r, n)
	for _, c := range got {
		if c.ud != 42 || c.res < 0 || !HasMore(c.flags) {
			t.Fatalf("accept completion %+v", c)
		}
		fd := int(c.res)
		defer unix.Close(fd)
		peer, err := unix.Getpeername(fd)
		if err != nil {
			t.Fatalf("getpeername(%d): %v", fd, err)
		}
		p := peer.(*unix.SockaddrInet4).Port
		if !clientPorts[p] {
			t.Fatalf("accepted fd %d has peer port %d, not one of %v", fd, p, clientPorts)
		}
		delete(clientPorts, p)
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC == 0 {
			t.Fatalf("accepted fd flags %#x err %v, want FD_CLOEXEC", flags, err)
		}
	}
	r.PrepareCancel(42, 43)
	for _, c := range collect(t, r, 2) {
		if c.ud == 42 && (c.res != -int32(unix.ECANCELED) || HasMore(c.flags)) {
			t.Fatalf("cancelled accept %+v", c)
		}
	}
}

func TestRecvAndSend(t *testing.T) {
	defer runtime.UnlockOSThread()
	r := newTestRing(t, 8)
	a, b := socketPair(t)
	in := make([]byte, 100)
	r.PrepareRecv(b, in, 1)
	out := []byte("hello ring")
	r.PrepareSend(a, out, 0, 2)
	got := collect(t, r, 2)
	for _, c := range got {
		if c.res != int32(len(out)) {
			t.Fatalf("completion %+v, want res %d", c, len(out))
		}
	}
	if !bytes.Equal(in[:len(out)], out) {
		t.Fatalf("received %q", in[:len(out)])
	}
}

// TestSendPassesMsgFlags: with MSG_DONTWAIT a send on a full socket fails
// with EAGAIN instead of waiting, so the flags reach the kernel.
func TestSendPassesMsgFlags(t *testing.T) {
	defer runtime.UnlockOSThread()
	r := newTestRing(t, 8)
	a, _ := socketPair(t)
	chunk := make([]byte, 4096)
	for {
		_, err := unix.SendmsgN(a, chunk, nil, nil, unix.MSG_DONTWAIT)
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	r.PrepareSend(a, chunk, unix.MSG_DONTWAIT, 1)
	if c := collectOne(t, r, 1); c.res != -int32(unix.EAGAIN) {
		t.Fatalf("send on full socket: res %d, want -EAGAIN", c.res)
	}
}

// TestSendmsgAndWritevGather: a header and two payload slices go out in one
// sendmsg, then in one writev, and arrive in order.
func TestSendmsgAndWritevGather(t *testing.T) {
	defer runtime.UnlockOSThread()
	r := newTestRing(t, 8)
	a, b := socketPair(t)
	parts := [][]byte{[]byte("HDR:"), pattern(300, 7), []byte(":tail")}
	want := bytes.Join(parts, nil)
	m := NewMsg(4)
	for _, p := range parts {
		if !m.Add(p) {
			t.Fatal("Msg full")
		}
	}
	r.PrepareSendmsg(a, m.Hdr(), unix.MSG_NOSIGNAL, 1)
	if c := collectOne(t, r, 1); c.res != int32(len(want)) {
		t.Fatalf("sendmsg res %d, want %d", c.res, len(want))
	}
	got, err := readFull(b, len(want))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("sendmsg: read %d bytes, err %v, equal %v", len(got), err, bytes.Equal(got, want))
	}
	r.PrepareWritev(a, m.Iovecs(), -1, 2)
	if c := collectOne(t, r, 2); c.res != int32(len(want)) {
		t.Fatalf("writev res %d, want %d", c.res, len(want))
	}
	got, err = readFull(b, len(want))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("writev: read %d bytes, err %v, equal %v", len(got), err, bytes.Equal(got, want))
	}
}

// TestSendZC: a zero-copy send over loopback TCP delivers the bytes intact
// and posts its result (HasMore) and then its notification (IsNotif).
func TestSendZC(t *testing.T) {
	defer runtime.UnlockOSThread()
	r := newTestRing(t, 8)
	client, server := tcpPair(t)
	out := pattern(256<<10, 3)
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := readFull(server, len(out))
		done <- result{b, err}
	}()
	r.PrepareSendZC(client, out, unix.MSG_WAITALL, 0, 9)
	got := collect(t, r, 2)
	if got[0].ud != 9 || got[0].res != int32(len(out)) || !HasMore(got[0].flags) || IsNotif(got[0].flags) {
		t.Fatalf("first completion %+v, want res %d with HasMore", got[0], len(out))
	}
	if got[1].ud != 9 || !IsNotif(got[1].flags) || HasMore(got[1].flags) {
		t.Fatalf("second completion %+v, want the notification", got[1])
	}
	res := <-done
	if res.err != nil || !bytes.Equal(res.b, out) {
		t.Fatalf("peer read %d bytes, err %v; intact %v", len(res.b), res.err, bytes.Equal(res.b, out))
	}
}

// TestSendmsgZCReportsCopiedOnLoopback: a zero-copy sendmsg of a header
// and two payload slices delivers them in order and posts two completions:
// the result (HasMore), then the notification (IsNotif, not HasMore). With
// ZCReportUsage the notification says the kernel copied, which it always
// does on loopback; without it, res carries no usage bit.
func TestSendmsgZCReportsCopiedOnLoopback(t *testing.T) {
	defer runtime.UnlockOSThread()
	r := newTestRing(t, 8)
	if !probeSendmsgZC(t, r) {
		t.Skip("kernel does not support IORING_OP_SENDMSG_ZC with IORING_SEND_ZC_REPORT_USAGE (Linux 6.2+)")
	}
	for _, report := range []bool{true, false} {
		client, server := tcpPair(t)
		head, a, b := pattern(13, 1), pattern(96<<10, 2), pattern(33<<10, 3)
		m := NewMsg(3)
		m.Add(head)
		m.Add(a)
		m.Add(b)
		want := slices.Concat(head, a, b)
		done := make(chan []byte, 1)
		go func() {
			got, err := readFull(server, len(want))
			if err != nil {
				t.Errorf("peer read: %v", err)
			}
			done <- got
		}()
		var zc ZCFlags
		if report {
			zc = ZCReportUsage
		}
		r.PrepareSendmsgZC(client, m.Hdr(), unix.MSG_WAITALL, zc, 11)
		got := collect(t, r, 2)
		if got[0].ud != 11 || got[0].res != int32(len(want)) || !HasMore(got[0].flags) || IsNotif(got[0].flags) {
			t.Fatalf("report %v: first completion %+v, want res %d with HasMore", report, got[0], len(want))
		}
		if got[1].ud != 11 || !IsNotif(got[1].flags) || HasMore(got[1].flags) {
			t.Fatalf("report %v: second completion %+v, want the notification", report, got[1])
		}
		if ZCCopied(got[1].res) != report {
			t.Fatalf("report %v: notification res %#x, ZCCopied %v on loopback", report, uint32(got[1].res), ZCCopied(got[1].res))
		}
		if peer := <-done; !bytes.Equal(peer, want) {
			t.Fatalf("report %v: peer got %d bytes, intact %v", report, len(peer), bytes.Equal(peer, want))
		}
	}
}

// probeSendmsgZC sends nothing to fd -1: a kernel that knows the opcode
// and flag fails it with EBADF (Linux 6.18 still posts the notification
// then), an older one with EINVAL.
func probeSendmsgZC(t *testing.T, r *Ring) bool {
	var msg unix.Msghdr
	r.PrepareSendmsgZC(-1, &msg, 0, ZCReportUsage, 12)
	got := collect(t, r, 1)
	if HasMore(got[0].flags) && len(got) == 1 {
		got = append(got, collect(t, r, 1)...) // its notification
	}
	res := got[0].res
	t.Logf("sendmsg_zc probe on fd -1: %v", unix.Errno(-res))
	return res == -int32(unix.EBADF)
}

// TestCancelPendingRecv: cancelling a recv that waits for data ends it with
// ECANCELED; the cancel reports one match, and a second cancel reports none.
func TestCancelPendingRecv(t *testing.T) {
	defer runtime.UnlockOSThread()
	r := newTestRing(t, 8)
	a, _ := socketPair(t)
	buf := make([]byte, 16)
	r.PrepareRecv(a, buf, 5)
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	r.PrepareCancel(5, 6)
	for _, c := range collect(t, r, 2) {
		switch {
		case c.ud == 5 && c.res == -int32(unix.ECANCELED):
		case c.ud == 6 && c.res == 1:
		default:
			t.Fatalf("unexpected completion %+v", c)
		}
	}
	r.PrepareCancel(5, 7)
	if c := collectOne(t, r, 7); c.res != 0 {
		t.Fatalf("cancel of nothing: res %d, want 0", c.res)
	}
}

// TestClose: closing one end through the ring makes the peer read EOF.
func TestClose(t *testing.T) {
	defer runtime.UnlockOSThread()
	r := newTestRing(t, 8)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	r.PrepareClose(fds[0], 1)
	if c := collectOne(t, r, 1); c.res != 0 {
		t.Fatalf("close res %d", c.res)
	}
	if n, err := unix.Read(fds[1], make([]byte, 1)); n != 0 || err != nil {
		t.Fatalf("peer read %d, %v; want EOF", n, err)
	}
}

// TestPollAddMultishot: a multishot poll reports readiness once per arrival
// and keeps going until cancelled.
func TestPollAddMultishot(t *testing.T) {
	defer runtime.UnlockOSThread()
	r := newTestRing(t, 8)
	a, b := socketPair(t)
	r.PreparePollAdd(a, unix.POLLIN, true, 3)
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := unix.Write(b, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		c := collectOne(t, r, 3)
		if c.res&unix.POLLIN == 0 || !HasMore(c.flags) {
			t.Fatalf("poll completion %d: %+v", i, c)
		}
		if _, err := readFull(a, 1); err != nil {
			t.Fatal(err)
		}
	}
	r.PrepareCancel(3, 4)
	for _, c := range collect(t, r, 2) {
		if c.ud == 3 && HasMore(c.flags) {
			t.Fatalf("poll still armed after cancel: %+v", c)
		}
	}
}

// TestSupportsMatchesTheKernel: the opcode probe agrees with what the
// kernel does with the opcode (EBADF on fd -1 where it knows it, EINVAL
// where it does not), and an opcode past the kernel's table is refused.
func TestSupportsMatchesTheKernel(t *testing.T) {
	defer runtime.UnlockOSThread()
	r := newTestRing(t, 8)
	if got, want := r.SupportsSendmsgZC(), probeSendmsgZC(t, r); got != want {
		t.Fatalf("SupportsSendmsgZC() = %v, but sending says %v", got, want)
	}
	if !r.Supports(giouring.OpNop) {
		t.Fatal("Supports(OpNop) = false")
	}
	if r.Supports(250) {
		t.Fatal("Supports(250) = true for an opcode no kernel has")
	}
}
