package tlsengine

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// recordHeaderLen is the size of a TLS record header: type, version,
// length (RFC 8446 §5.1).
const recordHeaderLen = 5

// recordConn reads and writes a socket for the handshake. Each Read
// returns bytes of one record only — first its header, then at most the
// rest of its body — so the handshake never takes a byte past the record
// that ends it.
type recordConn struct {
	fd       int
	deadline time.Time
	hdr      [recordHeaderLen]byte
	hdrN     int // header bytes of the next record read so far
	left     int // body bytes of the current record not read yet
	local    net.Addr
	remote   net.Addr
}

func (c *recordConn) Read(p []byte) (int, error) {
	want := c.left
	if want == 0 {
		want = recordHeaderLen - c.hdrN
	}
	n, err := c.recv(p[:min(want, len(p))])
	if n <= 0 {
		return 0, err
	}
	if c.left > 0 {
		c.left -= n
		return n, nil
	}
	copy(c.hdr[c.hdrN:], p[:n])
	c.hdrN += n
	if c.hdrN == recordHeaderLen {
		c.hdrN = 0
		c.left = int(c.hdr[3])<<8 | int(c.hdr[4])
	}
	return n, nil
}

// recv reads what is there, waiting for it until the deadline.
func (c *recordConn) recv(p []byte) (int, error) {
	for {
		n, _, err := unix.Recvfrom(c.fd, p, unix.MSG_DONTWAIT)
		switch {
		case err == nil && n == 0 && len(p) > 0:
			return 0, errEOF
		case err == nil:
			return n, nil
		case err != unix.EAGAIN && err != unix.EINTR:
			return 0, os.NewSyscallError("recv", err)
		}
		if err := c.wait(unix.POLLIN); err != nil {
			return 0, err
		}
	}
}

var errEOF = errors.New("tlsengine: connection closed during the handshake")

func (c *recordConn) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := unix.SendmsgN(c.fd, p[done:], nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		switch {
		case err == nil:
			done += n
			continue
		case err != unix.EAGAIN && err != unix.EINTR:
			return done, os.NewSyscallError("send", err)
		}
		if err := c.wait(unix.POLLOUT); err != nil {
			return done, err
		}
	}
	return done, nil
}

// wait polls the socket for events until the deadline.
func (c *recordConn) wait(events int16) error {
	left := time.Until(c.deadline)
	if left <= 0 {
		return os.ErrDeadlineExceeded
	}
	fds := []unix.PollFd{{Fd: int32(c.fd), Events: events}}
	_, err := unix.Poll(fds, int(min(left.Milliseconds()+1, 1<<30)))
	if err != nil && err != unix.EINTR {
		return os.NewSyscallError("poll", err)
	}
	return nil
}

// Handshake runs the server side of a TLS handshake on the connected
// socket fd (blocking or not) until deadline, and returns the engine that
// carries the connection on in memory. It blocks: call it on a handshake
// goroutine, never on a reactor. The socket is not closed on failure.
func Handshake(fd int, cfg *tls.Config, deadline time.Time) (*Engine, error) {
	hs := &recordConn{fd: fd, deadline: deadline}
	if sa, err := unix.Getpeername(fd); err == nil {
		hs.remote = sockaddrAddr(sa)
	}
	if sa, err := unix.Getsockname(fd); err == nil {
		hs.local = sockaddrAddr(sa)
	}
	tr := &transport{hs: hs}
	tc := tls.Server(tr, cfg)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	if hs.left != 0 || hs.hdrN != 0 {
		return nil, errors.New("BUG: tlsengine: handshake ended inside a record")
	}
	tr.hs = nil
	return &Engine{tc: tc, tr: tr, principal: principalOf(tc.ConnectionState())}, nil
}

func sockaddrAddr(sa unix.Sockaddr) net.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: a.Addr[:], Port: a.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: a.Addr[:], Port: a.Port}
	}
	return nil
}
