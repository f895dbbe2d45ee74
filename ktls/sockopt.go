package ktls

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"

	"github.com/ringmq/ringmq/config"
	"golang.org/x/sys/unix"
)

// Kernel constants (linux/tls.h, linux/tcp.h). Never change them.
const (
	solTLS             = unix.SOL_TLS
	tcpULP             = unix.TCP_ULP
	tlsTX              = 1
	tlsRX              = 2
	tls13Version       = 0x0304
	cipherAESGCM128    = 51
	cipherAESGCM256    = 52
	cipherChaCha20Poly = 54
)

// ErrUnsupported: the kernel has no kTLS (TCP_ULP "tls" failed with
// ENOENT: the tls module is not there).
var ErrUnsupported = errors.New("ktls: kernel has no TLS support (setsockopt TCP_ULP \"tls\": ENOENT)")

// AppendCryptoInfo appends the kernel's crypto_info for k (TLS 1.3).
func AppendCryptoInfo(dst []byte, k Keys) ([]byte, error) {
	var cipher uint16
	keyLen := 32
	switch k.Suite {
	case tls.TLS_AES_128_GCM_SHA256:
		cipher, keyLen = cipherAESGCM128, 16
	case tls.TLS_AES_256_GCM_SHA384:
		cipher = cipherAESGCM256
	case tls.TLS_CHACHA20_POLY1305_SHA256:
		cipher = cipherChaCha20Poly
	default:
		return nil, fmt.Errorf("%w: %#04x", ErrCipherSuite, k.Suite)
	}
	if len(k.Key) != keyLen || len(k.IV) != 12 {
		return nil, fmt.Errorf("ktls: %d-byte key and %d-byte IV for suite %#04x, want %d and 12",
			len(k.Key), len(k.IV), k.Suite, keyLen)
	}
	dst = binary.NativeEndian.AppendUint16(dst, tls13Version)
	dst = binary.NativeEndian.AppendUint16(dst, cipher)
	if cipher == cipherChaCha20Poly {
		dst = append(dst, k.IV...)
		dst = append(dst, k.Key...)
	} else {
		dst = append(dst, k.IV[4:]...)
		dst = append(dst, k.Key...)
		dst = append(dst, k.IV[:4]...)
	}
	return binary.BigEndian.AppendUint64(dst, k.Seq), nil
}

// Sockopts is the part of setsockopt kTLS needs; Syscalls is the real one.
type Sockopts interface {
	SetsockoptString(fd, level, opt int, value string) error
	SetsockoptBytes(fd, level, opt int, value []byte) error
}

// Syscalls calls the kernel.
type Syscalls struct{}

func (Syscalls) SetsockoptString(fd, level, opt int, value string) error {
	return unix.SetsockoptString(fd, level, opt, value)
}

func (Syscalls) SetsockoptBytes(fd, level, opt int, value []byte) error {
	return unix.SetsockoptString(fd, level, opt, string(value))
}

// Install moves a connected TCP socket's record protection into the
// kernel: the "tls" upper-layer protocol, then the send (tx) and receive
// (rx) keys. ENOENT from the first step is ErrUnsupported.
func Install(so Sockopts, fd int, tx, rx Keys) error {
	if err := so.SetsockoptString(fd, unix.IPPROTO_TCP, tcpULP, "tls"); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return ErrUnsupported
		}
		return fmt.Errorf("ktls: setsockopt TCP_ULP: %w", err)
	}
	for _, d := range []struct {
		opt  int
		keys Keys
		name string
	}{{tlsTX, tx, "TLS_TX"}, {tlsRX, rx, "TLS_RX"}} {
		info, err := AppendCryptoInfo(nil, d.keys)
		if err != nil {
			return err
		}
		if err := so.SetsockoptBytes(fd, solTLS, d.opt, info); err != nil {
			return fmt.Errorf("ktls: setsockopt %s: %w", d.name, err)
		}
	}
	return nil
}

// Probe says whether the kernel has kTLS: it sets TCP_ULP "tls" on a
// loopback connection of its own (the option needs an established TCP
// socket). nil means it does.
func Probe(so Sockopts) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("ktls: probe: %w", err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return fmt.Errorf("ktls: probe: %w", err)
	}
	defer c.Close()
	if a, err := ln.Accept(); err == nil {
		defer a.Close()
	}
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return fmt.Errorf("ktls: probe: %w", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = so.SetsockoptString(int(fd), unix.IPPROTO_TCP, tcpULP, "tls")
	}); err != nil {
		return fmt.Errorf("ktls: probe: %w", err)
	}
	if errors.Is(serr, unix.ENOENT) {
		return ErrUnsupported
	}
	if serr != nil {
		return fmt.Errorf("ktls: probe: setsockopt TCP_ULP: %w", serr)
	}
	return nil
}

// ErrDataPathNotBuilt: the kernel has kTLS, but ringmq does not move
// records through it yet.
var ErrDataPathNotBuilt = errors.New("ktls: ringmq does not use kernel TLS yet (its data path is not built)")

// Decide applies server.ktls to the result of Probe: nil means serve
// with user-space TLS (note, if not empty, says why, for the log); an
// error means refuse to start.
func Decide(mode config.KTLSMode, probe error) (note string, err error) {
	switch mode {
	case config.KTLSOff:
		return "", nil
	case config.KTLSOn:
		if probe != nil {
			return "", fmt.Errorf("server.ktls = \"on\": %w", probe)
		}
		return "", fmt.Errorf("server.ktls = \"on\": %w", ErrDataPathNotBuilt)
	}
	if probe != nil {
		return "kernel TLS unavailable; encrypting in user space: " + probe.Error(), nil
	}
	return "kernel TLS available but not used yet; encrypting in user space", nil
}
