package reactor

import (
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// listenReusePort opens a non-blocking TCP listener with SO_REUSEPORT, so
// that every reactor can hold its own listener on the same address and the
// kernel spreads connections among them.
func listenReusePort(addr string, backlog int) (fd int, bound netip.AddrPort, err error) {
	ap, err := resolveAddrPort(addr)
	if err != nil {
		return -1, bound, err
	}
	family := unix.AF_INET
	if ap.Addr().Is6() && !ap.Addr().Is4In6() {
		family = unix.AF_INET6
	}
	fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, bound, fmt.Errorf("reactor: socket: %w", err)
	}
	fail := func(op string, e error) (int, netip.AddrPort, error) {
		unix.Close(fd)
		return -1, netip.AddrPort{}, fmt.Errorf("reactor: %s %s: %w", op, addr, e)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fail("setsockopt SO_REUSEADDR", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return fail("setsockopt SO_REUSEPORT", err)
	}
	if err := unix.Bind(fd, sockaddr(ap)); err != nil {
		return fail("bind", err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		return fail("listen", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return fail("getsockname", err)
	}
	return fd, addrPortOf(sa), nil
}

// claimAddr binds addr once without SO_REUSEPORT and releases it,
// returning the address with its port resolved. SO_REUSEPORT lets any
// process of the same user share a port silently, so without this check a
// second server started on a busy address would split its connections with
// the first instead of failing with EADDRINUSE.
func claimAddr(addr string) (netip.AddrPort, error) {
	ap, err := resolveAddrPort(addr)
	if err != nil {
		return ap, err
	}
	family := unix.AF_INET
	if ap.Addr().Is6() && !ap.Addr().Is4In6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return ap, fmt.Errorf("reactor: socket: %w", err)
	}
	defer unix.Close(fd)
	// SO_REUSEADDR: connections of a previous server in TIME_WAIT do not
	// count, but a socket listening on the port still does (Linux).
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return ap, fmt.Errorf("reactor: setsockopt SO_REUSEADDR: %w", err)
	}
	if err := unix.Bind(fd, sockaddr(ap)); err != nil {
		return ap, fmt.Errorf("reactor: listen on %s: %w", addr, err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return ap, fmt.Errorf("reactor: getsockname: %w", err)
	}
	return addrPortOf(sa), nil
}

func resolveAddrPort(addr string) (netip.AddrPort, error) {
	tcp, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("reactor: listen address %q: %w", addr, err)
	}
	ap := tcp.AddrPort()
	if !ap.Addr().IsValid() {
		ap = netip.AddrPortFrom(netip.IPv4Unspecified(), ap.Port())
	}
	return ap, nil
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() || ap.Addr().Is4In6() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().Unmap().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

func addrPortOf(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
	}
	return netip.AddrPort{}
}
