package ring

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// completion is one CQE as the tests record it.
type completion struct {
	ud    uint64
	res   int32
	flags uint32
}

// testOpts is what the reactor uses; every test runs with it unless it is
// about setup itself.
var testOpts = Options{SingleIssuer: true, DeferTaskrun: true}

// newTestRing locks the calling goroutine to its thread (a SINGLE_ISSUER
// ring may only be driven from the thread that created it) and returns a
// ring closed at the end of the test. The caller must
// `defer runtime.UnlockOSThread()` itself: cleanups may run elsewhere.
func newTestRing(t testing.TB, entries uint32) *Ring {
	t.Helper()
	runtime.LockOSThread()
	r, err := New(entries, testOpts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// collect submits and waits until n completions arrived, failing the test
// after a deadline.
func collect(t testing.TB, r *Ring, n int) []completion {
	t.Helper()
	var got []completion
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < n {
		if time.Now().After(deadline) {
			t.Fatalf("got %d of %d completions before the deadline: %+v", len(got), n, got)
		}
		if err := r.SubmitAndWait(uint32(n-len(got)), 100*time.Millisecond); err != nil {
			t.Fatalf("SubmitAndWait: %v", err)
		}
		r.ForEachCQE(func(ud uint64, res int32, flags uint32) {
			got = append(got, completion{ud, res, flags})
		})
	}
	return got
}

// collectOne waits for exactly one completion and checks its user data.
func collectOne(t testing.TB, r *Ring, ud uint64) completion {
	t.Helper()
	got := collect(t, r, 1)
	if len(got) != 1 || got[0].ud != ud {
		t.Fatalf("completions %+v, want one with ud %d", got, ud)
	}
	return got[0]
}

// socketPair returns a connected AF_UNIX stream pair, closed at cleanup.
func socketPair(t testing.TB) (int, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socketpair: %v", err)
	}
	t.Cleanup(func() { _ = unix.Close(fds[0]); _ = unix.Close(fds[1]) })
	return fds[0], fds[1]
}

// listenTCP returns a listening socket on 127.0.0.1 and its port.
func listenTCP(t testing.TB) (int, int) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	t.Cleanup(func() { _ = unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	if err := unix.Listen(fd, 64); err != nil {
		t.Fatalf("listen: %v", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatalf("getsockname: %v", err)
	}
	return fd, sa.(*unix.SockaddrInet4).Port
}

// dialTCP connects a blocking socket to 127.0.0.1:port.
func dialTCP(t testing.TB, port int) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	t.Cleanup(func() { _ = unix.Close(fd) })
	if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}); err != nil {
		t.Fatalf("connect: %v", err)
	}
	return fd
}

// tcpPair returns two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (client, server int) {
	t.Helper()
	ln, port := listenTCP(t)
	client = dialTCP(t, port)
	server, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	t.Cleanup(func() { _ = unix.Close(server) })
	return client, server
}

// readFull reads exactly n bytes from a blocking fd.
func readFull(fd int, n int) ([]byte, error) {
	out := make([]byte, n)
	for got := 0; got < n; {
		m, err := unix.Read(fd, out[got:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return out[:got], err
		}
		if m == 0 {
			return out[:got], unix.ECONNRESET
		}
		got += m
	}
	return out, nil
}

// pattern returns n deterministic bytes that differ at every offset modulo
// 251, so misplaced or reordered data is caught.
func pattern(n int, salt byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i%251) ^ salt
	}
	return b
}
