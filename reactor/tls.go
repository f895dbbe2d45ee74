package reactor

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/ktls"
	"github.com/ringmq/ringmq/stats"
	"github.com/ringmq/ringmq/tlsengine"
	"golang.org/x/sys/unix"
)

// TLS on the client listener (server.tls = on | mtls), in user space.
//
//   - A connection accepted by a reactor is handed to the handshake pool
//     (a few goroutines, a bounded queue: past it a connection is closed
//     at once). A handshake that does not finish within
//     server.tls_handshake_timeout is dropped. The pool reads the socket
//     one TLS record at a time, so requests pipelined after the client's
//     Finished stay in the socket, and posts the established engine back
//     to the accepting reactor (msgTLSReady), which serves the connection
//     from then on like a plaintext one.
//   - Receive: every chunk the multishot recv brings is fed to the engine
//     and the plaintext it completes framed as usual (onCipher). Whatever
//     the engine wrote while reading (a KeyUpdate reply, an alert) is sent
//     next. A record that fails to decrypt ends the connection after its
//     alert is sent.
//   - Send: queued response frames are encrypted tlsChunk bytes of
//     plaintext at a time, the next chunk only once the previous one's
//     ciphertext is all sent, so a connection holds at most one chunk of
//     ciphertext (plus what the engine wrote by itself, bounded by the
//     engine) however large its fetch responses are; the views a frame
//     reads stay referenced until its last byte is encrypted. TLS
//     connections never send zero-copy.
//   - Shard hand-off moves the engine (and the principal) with the socket.

// tlsChunk is the plaintext encrypted per send: four full records;
// tlsChunkOut holds their ciphertext (and what the engine adds by itself).
const (
	tlsChunk    = 4 * 16384
	tlsChunkOut = 2 * tlsChunk
)

// releaseTLSBuffer returns c's idle ciphertext buffer to the pool.
func (r *Reactor) releaseTLSBuffer(c *conn) {
	if c.tls == nil {
		return
	}
	if b := c.tls.TakeBuffer(); b != nil {
		r.pool.put(b[:cap(b)])
		r.hold(c, -c.tlsHeld)
		c.tlsHeld = 0
	}
}

// handshakeQueue bounds connections waiting for a handshake goroutine.
const handshakeQueue = 1024

type handshakeJob struct {
	fd int
	r  *Reactor
}

// handshakePool runs TLS handshakes off the reactors.
type handshakePool struct {
	srv     *Server
	cfg     *tls.Config
	timeout time.Duration
	jobs    chan handshakeJob
	stop    chan struct{}
	stopped atomic.Bool
}

func newHandshakePool(srv *Server, cfg *tls.Config, workers int) *handshakePool {
	p := &handshakePool{srv: srv, cfg: cfg, timeout: srv.cfg.Server.TLSHandshakeTimeout,
		jobs: make(chan handshakeJob, handshakeQueue), stop: make(chan struct{})}
	for i := 0; i < workers; i++ {
		go p.work()
	}
	return p
}

// submit queues fd's handshake; a full queue closes the connection.
func (p *handshakePool) submit(fd int, r *Reactor) {
	select {
	case p.jobs <- handshakeJob{fd: fd, r: r}:
	default:
		stats.TLSHandshake(false)
		p.drop(fd)
	}
}

func (p *handshakePool) drop(fd int) {
	unix.Close(fd)
	p.srv.connCount.Add(-1)
	p.srv.metrics.connClosed()
}

// drainForFIN ends a refused connection with an orderly FIN after the
// alert, then reads and drops what the client still sends (its first
// requests) until it closes or drainTime passes, so that the close is not
// a reset that could discard the alert before the client reads it.
func drainForFIN(fd int) {
	unix.Shutdown(fd, unix.SHUT_WR)
	var buf [4096]byte
	deadline := time.Now().Add(drainTime)
	for {
		n, _, err := unix.Recvfrom(fd, buf[:], unix.MSG_DONTWAIT)
		switch {
		case err == nil && n == 0:
			return // the client closed
		case err == nil:
			continue
		case err != unix.EAGAIN && err != unix.EINTR:
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(left.Milliseconds())+1)
	}
}

// drainTime bounds how long a handshake goroutine waits for a refused
// client to close.
const drainTime = 200 * time.Millisecond

func (p *handshakePool) work() {
	for {
		select {
		case <-p.stop:
			return
		case j := <-p.jobs:
			p.handshake(j)
		}
	}
}

func (p *handshakePool) handshake(j handshakeJob) {
	eng, err := tlsengine.Handshake(j.fd, p.cfg, time.Now().Add(p.timeout))
	stats.TLSHandshake(err == nil)
	if err != nil {
		p.srv.log.Debug("TLS handshake failed", "err", err)
		drainForFIN(j.fd)
		p.drop(j.fd)
		return
	}
	if p.stopped.Load() {
		p.drop(j.fd)
		return
	}
	j.r.mb.post(message{kind: msgTLSReady, fd: j.fd, tls: eng})
}

// close stops the workers (a handshake in progress ends by its deadline
// at the latest, and its connection is closed); connections still queued
// are closed now.
func (p *handshakePool) close() {
	p.stopped.Store(true)
	close(p.stop)
	for {
		select {
		case j := <-p.jobs:
			p.drop(j.fd)
		default:
			return
		}
	}
}

// onTLSReady starts serving a connection whose handshake finished.
func (r *Reactor) onTLSReady(fd int, eng *tlsengine.Engine) {
	if r.stopping {
		unix.Close(fd)
		r.srv.connCount.Add(-1)
		r.srv.metrics.connClosed()
		return
	}
	c := r.newConn(fd)
	c.tls = eng
	c.principal = eng.Principal()
	r.armRecv(c)
}

// adoptTLS gives an adopted connection its engine. The engine's output
// buffer, if it still has one, is not counted here: it is dropped when
// idle, or counted when it is lent again.
func (r *Reactor) adoptTLS(c *conn, eng *tlsengine.Engine) {
	c.tls = eng
	if eng != nil {
		eng.TakeBuffer()
	}
}

// hasOutput reports whether c has bytes to send: queued frames, or
// ciphertext not sent yet.
func hasOutput(c *conn) bool {
	return len(c.out) > 0 || (c.tls != nil && len(c.tls.Pending()) > 0)
}

// tlsScratch is the reactor's buffer for decrypted plaintext (framing
// copies it out before the next record is decrypted).
func (r *Reactor) tlsScratch() []byte {
	if r.tlsPlain == nil {
		r.tlsPlain = make([]byte, tlsChunk)
	}
	return r.tlsPlain
}

// onCipher decrypts received ciphertext into the request path (or, during
// a hand-off, into c.in for the next owner).
func (r *Reactor) onCipher(c *conn, data []byte) {
	err := c.tls.Decrypt(data, r.tlsScratch(), func(plain []byte) bool {
		if c.handoff >= 0 {
			c.in = append(c.in, plain...)
			return true
		}
		r.onData(c, plain)
		return !c.closing && !c.closeQueued
	})
	if err != nil {
		if !errors.Is(err, io.EOF) {
			stats.TLSRecordError()
			r.srv.log.Debug("TLS connection failed", "err", err)
		}
		if c.handoff >= 0 {
			r.closeConn(c)
			return
		}
		r.protocolError(c)
	}
	if !c.closing && !c.sending && len(c.tls.Pending()) > 0 && c.handoff < 0 {
		r.needSend = append(r.needSend, c)
	}
}

// startSendTLS sends c's pending ciphertext, encrypting the next chunk of
// queued frames first when none is left.
func (r *Reactor) startSendTLS(c *conn) {
	if len(c.tls.Pending()) == 0 {
		if !c.tls.HasBuffer() {
			b := r.pool.get(tlsChunkOut)
			c.tls.GiveBuffer(b)
			c.tlsHeld = int64(cap(b))
			r.hold(c, c.tlsHeld)
		}
		r.encryptOut(c)
	}
	p := c.tls.Pending()
	if len(p) == 0 {
		return
	}
	c.iov = append(c.iov[:0], unix.Iovec{Base: &p[0], Len: uint64(len(p))})
	c.msg = unix.Msghdr{Iov: &c.iov[0], Iovlen: 1}
	c.sending = true
	t := &c.sends
	t.cur, t.curZC = t.next, false
	t.next++
	t.pending = append(t.pending, t.cur)
	c.inFlight++
	stats.Sent(stats.SendPlain)
	r.ring.PrepareSendmsg(c.fd, &c.msg, unix.MSG_NOSIGNAL, makeUD(udSend, c.gen, c.slot))
}

// encryptOut encrypts up to tlsChunk bytes of c's queued frames; frames
// whose last byte is encrypted are done (their plaintext is no longer
// read). Small parts (headers) are gathered into the scratch buffer so
// that they share records; a large part (segment views) is encrypted
// where it lies.
func (r *Reactor) encryptOut(c *conn) {
	buf := r.tlsScratch()
	staged, done, skip := 0, 0, c.sentHead
	var err error
	flush := func() {
		if staged > 0 && err == nil {
			err = c.tls.Encrypt(buf[:staged])
		}
		done += staged
		staged = 0
	}
fill:
	for i := range c.out {
		for _, p := range c.out[i].parts {
			if skip >= len(p) {
				skip -= len(p)
				continue
			}
			p = p[skip:min(len(p), skip+tlsChunk-done-staged)]
			skip = 0
			if len(p) >= tlsDirectMin {
				flush()
				if err == nil {
					err = c.tls.Encrypt(p)
				}
				done += len(p)
			} else {
				staged += copy(buf[staged:], p)
			}
			if done+staged == tlsChunk {
				break fill
			}
		}
	}
	flush()
	if err != nil {
		r.srv.log.Debug("TLS encrypt failed", "err", err)
		r.closeConn(c)
		return
	}
	if done > 0 {
		r.consumeOut(c, done, c.sends.next-1)
	}
}

// tlsDirectMin is the smallest part encrypted where it lies instead of
// gathered with its neighbours.
const tlsDirectMin = 4096

// onSendTLS handles the completion of a ciphertext send.
func (r *Reactor) onSendTLS(c *conn, res int32) {
	c.sending = false
	c.inFlight--
	c.sends.done(c.sends.cur, ^uint32(0))
	if res < 0 {
		r.closeConn(c)
		r.maybeFinishConn(c)
		return
	}
	c.active = r.now
	c.tls.Sent(int(res))
	if len(c.out) == 0 {
		r.releaseTLSBuffer(c)
	}
	switch {
	case hasOutput(c) && !c.closing:
		r.startSendTLS(c)
	case c.closeQueued && !hasOutput(c):
		r.closeConn(c)
	default:
		r.maybeFinishConn(c)
	}
}

// setupTLS loads the listener's certificates when server.tls is on, and
// applies server.ktls: the kernel is probed once; "on" without kTLS (or,
// as long as its data path is not built, with it) refuses to start.
func (s *Server) setupTLS() error {
	sc := s.cfg.Server
	if sc.TLS == config.TLSOff || sc.TLS == 0 {
		return nil
	}
	var probe error
	if sc.KTLS != config.KTLSOff {
		probe = ktls.Probe(ktls.Syscalls{})
	}
	note, err := ktls.Decide(sc.KTLS, probe)
	if err != nil {
		return err
	}
	if note != "" {
		s.log.Info(note)
	}
	ca := ""
	if sc.TLS == config.TLSMutual {
		ca = sc.TLSCA
	}
	cfg, err := tlsengine.ServerConfig(sc.TLSCert, sc.TLSKey, ca)
	if err != nil {
		return err
	}
	s.tlsConfig = cfg
	// Peers are dialed with this node's own certificate (it must allow
	// client authentication under mtls) and verified against tls_ca when
	// set, else the system's roots.
	s.peerTLS = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: cfg.Certificates}
	if sc.TLSCA != "" {
		if s.peerTLS.RootCAs, err = tlsengine.LoadCAs(sc.TLSCA); err != nil {
			return fmt.Errorf("server.tls_ca: %w", err)
		}
	}
	return nil
}
