package tlsengine

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math/rand"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringmq/ringmq/internal/tlstest"
	"golang.org/x/sys/unix"
)

// holdConn is the client's side of the socket pair. Once hold is set its
// writes collect in held instead of going out (the test sends them, or
// hands them to the server's engine, itself).
type holdConn struct {
	net.Conn
	mu     sync.Mutex
	writes int
	holdAt int // writes from this one on are held (0: none)
	held   []byte
}

func (c *holdConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	if c.holdAt > 0 && c.writes >= c.holdAt {
		c.held = append(c.held, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *holdConn) take() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.held
	c.held = nil
	return b
}

type pair struct {
	eng    *Engine
	fd     int // the server's socket
	client *tls.Conn
	hc     *holdConn
}

// handshake connects a client to Handshake over a socket pair. holdAt > 0
// holds the client's writes from that one on (1 is the ClientHello).
func handshake(t *testing.T, srv, cli *tls.Config, holdAt int) (pair, error) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]) })
	f := os.NewFile(uintptr(fds[1]), "client")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	hc := &holdConn{Conn: nc, holdAt: holdAt}
	client := tls.Client(hc, cli)
	cerr := make(chan error, 1)
	go func() { cerr <- client.Handshake() }()
	eng, err := Handshake(fds[0], srv, time.Now().Add(10*time.Second))
	if e := <-cerr; e != nil && err == nil {
		err = e
	}
	return pair{eng: eng, fd: fds[0], client: client, hc: hc}, err
}

func configs(t *testing.T) (*tls.Config, *tls.Config, *tlstest.CA) {
	ca := tlstest.NewCA(t, "test-ca")
	srv := &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "server", true)}, MinVersion: tls.VersionTLS13,
		SessionTicketsDisabled: true, DynamicRecordSizingDisabled: true}
	cli := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS13}
	return srv, cli, ca
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	rng.Read(b)
	return b
}

// TestRandomChunks: ciphertext fed in chunks of random sizes decrypts to
// the bytes sent, and what the engine encrypts the client reads back.
func TestRandomChunks(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	srv, cli, _ := configs(t)
	p, err := handshake(t, srv, cli, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p.eng.Principal() != Anonymous || p.eng.State().Version != tls.VersionTLS13 {
		t.Fatalf("principal %q, version %x", p.eng.Principal(), p.eng.State().Version)
	}
	p.hc.mu.Lock()
	p.hc.holdAt = p.hc.writes + 1
	p.hc.mu.Unlock()
	var sent []byte
	for i := 0; i < 60; i++ {
		msg := randomBytes(rng, rng.Intn(40000)+1)
		sent = append(sent, msg...)
		if _, err := p.client.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	cipher := p.hc.take()
	var got []byte
	scratch := make([]byte, 16<<10)
	for off := 0; off < len(cipher); {
		n := min(rng.Intn(3000)+1, len(cipher)-off)
		chunk := append([]byte(nil), cipher[off:off+n]...)
		off += n
		if err := p.eng.Decrypt(chunk, scratch, func(b []byte) bool { got = append(got, b...); return true }); err != nil {
			t.Fatalf("Decrypt at %d: %v", off, err)
		}
		clear(chunk) // the engine must not keep a reference to it
	}
	if !bytes.Equal(got, sent) {
		t.Fatalf("decrypted %d bytes, sent %d: not the same bytes", len(got), len(sent))
	}

	// The other way: encrypt in random pieces, send as the socket takes it.
	want := randomBytes(rng, 300000)
	read := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(p.client, int64(len(want))))
		read <- b
	}()
	for off := 0; off < len(want); {
		n := min(rng.Intn(70000)+1, len(want)-off)
		if err := p.eng.Encrypt(want[off : off+n]); err != nil {
			t.Fatal(err)
		}
		off += n
		out := p.eng.Pending()
		if _, err := unix.Write(p.fd, out); err != nil {
			t.Fatal(err)
		}
		p.eng.Sent(len(out))
	}
	if b := <-read; !bytes.Equal(b, want) {
		t.Fatalf("client read %d bytes, want %d: not the same bytes", len(b), len(want))
	}
}

// TestHandshakeLeavesPipelinedBytes: requests the client sends in the same
// segment as its Finished stay in the socket for the reactor.
func TestHandshakeLeavesPipelinedBytes(t *testing.T) {
	srv, cli, _ := configs(t)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	f := os.NewFile(uintptr(fds[1]), "client")
	nc, _ := net.FileConn(f)
	f.Close()
	defer nc.Close()
	hc := &holdConn{Conn: nc, holdAt: 2} // ClientHello goes out; Finished waits
	client := tls.Client(hc, cli)
	type res struct {
		eng *Engine
		err error
	}
	done := make(chan res, 1)
	go func() {
		e, err := Handshake(fds[0], srv, time.Now().Add(10*time.Second))
		done <- res{e, err}
	}()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Write([]byte("pipelined request")); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write(hc.take()); err != nil { // Finished and the request in one write
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	buf := make([]byte, 4096)
	n, err := unix.Read(fds[0], buf)
	if err != nil || n == 0 {
		t.Fatalf("socket after the handshake: %d bytes, %v; want the pipelined record", n, err)
	}
	var got []byte
	if err := r.eng.Decrypt(buf[:n], make([]byte, 4096), func(b []byte) bool { got = append(got, b...); return true }); err != nil {
		t.Fatal(err)
	}
	if string(got) != "pipelined request" {
		t.Fatalf("decrypted %q", got)
	}
}

// TestFlippedByteEndsWithAlert: a corrupted record ends the connection,
// and the engine's answer is an alert the client reads as one.
func TestFlippedByteEndsWithAlert(t *testing.T) {
	srv, cli, _ := configs(t)
	p, err := handshake(t, srv, cli, 0)
	if err != nil {
		t.Fatal(err)
	}
	p.hc.mu.Lock()
	p.hc.holdAt = p.hc.writes + 1
	p.hc.mu.Unlock()
	p.client.Write([]byte("hello, server"))
	cipher := p.hc.take()
	cipher[len(cipher)-3] ^= 0x40
	err = p.eng.Decrypt(cipher, make([]byte, 4096), func([]byte) bool { t.Error("plaintext from a corrupted record"); return true })
	if err == nil {
		t.Fatal("Decrypt of a corrupted record succeeded")
	}
	alert := p.eng.Pending()
	if len(alert) == 0 || alert[0] != 23 { // an encrypted alert travels as application data
		t.Fatalf("pending output after the failure: % x", alert)
	}
	unix.Write(p.fd, alert)
	p.client.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, rerr := p.client.Read(make([]byte, 10))
	if rerr == nil || !strings.Contains(rerr.Error(), "bad record MAC") {
		t.Fatalf("client read: %v, want the bad record MAC alert", rerr)
	}
	// The error is sticky: more input is refused.
	if err2 := p.eng.Decrypt([]byte{23, 3, 3, 0, 1, 0}, make([]byte, 16), func([]byte) bool { return true }); err2 == nil {
		t.Fatal("Decrypt after a failure succeeded")
	}
}

// TestHandshakeDeadline: a client that never speaks is dropped at the
// deadline.
func TestHandshakeDeadline(t *testing.T) {
	srv, _, _ := configs(t)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	start := time.Now()
	_, err = Handshake(fds[0], srv, start.Add(200*time.Millisecond))
	// The socket wait and the handshake's context end at the same time;
	// either reports it.
	if !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Handshake = %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Handshake took %v", d)
	}
}

func TestMutualTLS(t *testing.T) {
	srv, cli, ca := configs(t)
	srv.ClientCAs = ca.Pool()
	srv.ClientAuth = tls.RequireAndVerifyClientCert

	// No certificate.
	if _, err := handshake(t, srv, cli, 0); err == nil {
		t.Error("handshake without a client certificate succeeded")
	}
	// A certificate from another CA.
	other := tlstest.NewCA(t, "other-ca")
	bad := cli.Clone()
	bad.Certificates = []tls.Certificate{other.Issue(t, "mallory", false)}
	if _, err := handshake(t, srv, bad, 0); err == nil {
		t.Error("handshake with a certificate of another CA succeeded")
	}
	good := cli.Clone()
	good.Certificates = []tls.Certificate{ca.Issue(t, "alice", false)}
	p, err := handshake(t, srv, good, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p.eng.Principal() != "User:alice" {
		t.Fatalf("principal %q, want User:alice", p.eng.Principal())
	}
}

func TestServerConfigFiles(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	f := ca.Write(t, t.TempDir(), "server", ca.Issue(t, "server", true))
	cfg, err := ServerConfig(f.Cert, f.Key, f.CA)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS13 || !cfg.SessionTicketsDisabled || cfg.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Fatalf("config %+v", cfg)
	}
	if _, err := ServerConfig(f.Cert, f.CA, ""); err == nil {
		t.Error("a CA certificate as the key was accepted")
	}
	if _, err := ServerConfig(f.Cert, f.Key, f.Key); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("a key as the CA file: %v", err)
	}
}

// TestBufferLending: a lent buffer carries the output and comes back once
// all of it is sent.
func TestBufferLending(t *testing.T) {
	srv, cli, _ := configs(t)
	p, err := handshake(t, srv, cli, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p.eng.HasBuffer() || p.eng.TakeBuffer() != nil {
		t.Fatal("an engine fresh from the handshake holds an output buffer")
	}
	lent := make([]byte, 0, 1<<17)
	p.eng.GiveBuffer(lent)
	if err := p.eng.Encrypt(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	out := p.eng.Pending()
	if &out[0] != &lent[:1][0] {
		t.Fatal("the output is not in the lent buffer")
	}
	if p.eng.TakeBuffer() != nil {
		t.Fatal("TakeBuffer returned a buffer with output pending")
	}
	p.eng.Sent(len(out) - 1)
	p.eng.Sent(1)
	if b := p.eng.TakeBuffer(); cap(b) != 1<<17 || p.eng.HasBuffer() {
		t.Fatalf("TakeBuffer after the output was sent: cap %d", cap(b))
	}
}
