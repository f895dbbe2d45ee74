package ring

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSendmsgZCOverVeth sends with sendmsg_zc across a veth pair between
// two network namespaces the test makes (root and iproute2 needed, else it
// skips): a path that, unlike loopback, may really send from the caller's
// pages. The bytes must arrive intact with the usual two completions; what
// IORING_SEND_ZC_REPORT_USAGE says there is logged (it depends on the
// kernel's forwarding path, so it is not asserted). The addresses exist
// only inside the test's namespaces.
func TestSendmsgZCOverVeth(t *testing.T) {
	defer runtime.UnlockOSThread()
	r := newTestRing(t, 8)
	if !probeSendmsgZC(t, r) {
		t.Skip("kernel does not support IORING_OP_SENDMSG_ZC with IORING_SEND_ZC_REPORT_USAGE (Linux 6.2+)")
	}
	nsA, nsB := vethPair(t)
	var ln, client int
	var port int
	if err := inNetns(nsB, func() (err error) {
		ln, port, err = listenOn([4]byte{10, 254, 41, 2})
		return err
	}); err != nil {
		t.Fatalf("listen in %s: %v", nsB, err)
	}
	t.Cleanup(func() { _ = unix.Close(ln) })
	if err := inNetns(nsA, func() (err error) {
		client, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		return err
	}); err != nil {
		t.Fatalf("socket in %s: %v", nsA, err)
	}
	t.Cleanup(func() { _ = unix.Close(client) })
	if err := unix.Connect(client, &unix.SockaddrInet4{Addr: [4]byte{10, 254, 41, 2}, Port: port}); err != nil {
		t.Fatalf("connect across the veth pair: %v", err)
	}
	server, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	t.Cleanup(func() { _ = unix.Close(server) })

	for i := range 3 {
		head, body := pattern(13, byte(i)), pattern(512<<10, byte(i+1))
		m := NewMsg(2)
		m.Add(head)
		m.Add(body)
		want := append(bytes.Clone(head), body...)
		done := make(chan []byte, 1)
		go func() {
			got, err := readFull(server, len(want))
			if err != nil {
				t.Errorf("peer read: %v", err)
			}
			done <- got
		}()
		r.PrepareSendmsgZC(client, m.Hdr(), unix.MSG_WAITALL, ZCReportUsage, 21)
		got := collect(t, r, 2)
		if got[0].res != int32(len(want)) || !HasMore(got[0].flags) || !IsNotif(got[1].flags) || HasMore(got[1].flags) {
			t.Fatalf("send %d: completions %+v, want the result (res %d, HasMore) then the notification", i, got, len(want))
		}
		t.Logf("send %d over veth: %d bytes, notification res %#x: kernel copied %v", i, got[0].res, uint32(got[1].res), ZCCopied(got[1].res))
		if peer := <-done; !bytes.Equal(peer, want) {
			t.Fatalf("send %d: peer got %d bytes, intact %v", i, len(peer), bytes.Equal(peer, want))
		}
	}
}

// vethPair makes two network namespaces joined by a veth pair,
// 10.254.41.1/30 in the first and 10.254.41.2/30 in the second, removed
// at cleanup. It skips the test where that is not possible.
func vethPair(t *testing.T) (nsA, nsB string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (iproute2) to make network namespaces")
	}
	nsA, nsB = fmt.Sprintf("ringmq-zc-%d-a", os.Getpid()), fmt.Sprintf("ringmq-zc-%d-b", os.Getpid())
	ip := func(args ...string) error {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %v: %v: %s", args, err, out)
		}
		return nil
	}
	for _, ns := range []string{nsA, nsB} {
		if err := ip("netns", "add", ns); err != nil {
			t.Skipf("cannot make a network namespace: %v", err)
		}
		t.Cleanup(func() { _ = ip("netns", "del", ns) })
	}
	for _, args := range [][]string{
		{"-n", nsA, "link", "add", "zca", "type", "veth", "peer", "name", "zcb", "netns", nsB},
		{"-n", nsA, "addr", "add", "10.254.41.1/30", "dev", "zca"},
		{"-n", nsB, "addr", "add", "10.254.41.2/30", "dev", "zcb"},
		{"-n", nsA, "link", "set", "zca", "up"},
		{"-n", nsB, "link", "set", "zcb", "up"},
	} {
		if err := ip(args...); err != nil {
			t.Skipf("cannot set up the veth pair: %v", err)
		}
	}
	return nsA, nsB
}

// inNetns runs fn on a thread that has entered network namespace ns; the
// thread is never unlocked, so it exits with its goroutine.
func inNetns(ns string, fn func() error) error {
	res := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			res <- err
			return
		}
		defer unix.Close(f)
		if err := unix.Setns(f, unix.CLONE_NEWNET); err != nil {
			res <- err
			return
		}
		res <- fn()
	}()
	return <-res
}

// listenOn returns a listening socket on addr, port 0, and its port.
func listenOn(addr [4]byte) (fd, port int, err error) {
	if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
		return -1, 0, err
	}
	if err = unix.Bind(fd, &unix.SockaddrInet4{Addr: addr}); err == nil {
		err = unix.Listen(fd, 8)
	}
	var sa unix.Sockaddr
	if err == nil {
		sa, err = unix.Getsockname(fd)
	}
	if err != nil {
		unix.Close(fd)
		return -1, 0, err
	}
	return fd, sa.(*unix.SockaddrInet4).Port, nil
}
