package reactor

import (
	"time"

	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/ring"
	"github.com/ringmq/ringmq/tlsengine"
	"golang.org/x/sys/unix"
)

// conn is one client connection, owned by the reactor that accepted it (or
// adopted it by a shard hand-off).
type conn struct {
	fd   int
	slot uint32
	gen  uint32

	// in holds the start of a frame whose bytes have not all arrived.
	in []byte

	// out is the queue of responses ready to send, in completion order
	// (pipelined requests are answered as they finish).
	out      []outFrame
	outBytes int
	// sentHead counts bytes of out[0] already sent by a partial send.
	sentHead int
	sending  bool
	iov      []unix.Iovec
	msg      unix.Msghdr
	// sends tracks send operations and the frames they may still read
	// (zero-copy sends until their notification; send.go).
	sends sendTrack

	recvArmed   bool
	recvPaused  bool // backpressure: unanswered bytes over the limit
	closing     bool
	closeQueued bool // close after out is drained (protocol error)
	handoff     int  // target shard of a pending hand-off, -1 if none

	// requests counts requests received and not yet finished; unanswered
	// is their frame bytes.
	requests   int
	unanswered int
	inFlight   int // send/recv ops the kernel still holds

	// held is the memory the connection holds (its requests' frames until
	// answered, the partial frame's buffer, its fetches' cold read
	// buffers), counted against conn_max_unanswered_bytes and, summed in
	// Reactor.held, against the reactor's share of max_buffered_bytes.
	held   int64
	inHeld int64 // cap(in), as counted in held
	// memPaused: paused because the reactor's budget was spent (listed in
	// Reactor.memPaused until resumed).
	memPaused bool

	// tls is the connection's TLS record layer (server.tls on; tls.go), nil
	// on a plaintext connection.
	tls *tlsengine.Engine
	// tlsHeld is the capacity of the ciphertext buffer lent to tls, as
	// counted in held.
	tlsHeld int64

	// Deadlines: active is when bytes last arrived or a send progressed
	// (idle_timeout); frameStart when the partial frame in began
	// (frame_timeout).
	active     time.Time
	frameStart time.Time

	// principal is who the connection acts for: Anonymous until SASL
	// succeeds (or a client certificate names it under mTLS). authed is
	// set once the connection may send any request (at once when
	// server.sasl is off); sasl is an exchange in progress (sasl.go).
	principal string
	authed    bool
	sasl      *saslExchange
	// authz caches this connection's authorization decisions (authz.go).
	authz authzCache
}

// outFrame is one response frame: parts are sent back to back; buf is
// returned to the pool and req finished once the whole frame is sent.
type outFrame struct {
	parts [][]byte
	size  int
	buf   []byte
	req   *request
}

func (c *conn) reset() {
	c.in = c.in[:0]
	c.out = c.out[:0]
	c.outBytes, c.sentHead = 0, 0
	c.sending, c.recvArmed, c.recvPaused, c.closing, c.closeQueued = false, false, false, false, false
	c.handoff = -1
	c.requests, c.unanswered, c.inFlight = 0, 0, 0
	c.sends.reset()
	c.held, c.inHeld, c.memPaused = 0, 0, false
	c.principal, c.authed, c.sasl = Anonymous, false, nil
	c.authz.reset()
	c.tls, c.tlsHeld = nil, 0
}

// newConn registers fd in a free slot. Connections are counted once, when
// accepted (onAccept) and when finally closed (maybeFinishConn); a hand-off
// moves a connection without counting it again.
func (r *Reactor) newConn(fd int) *conn {
	var c *conn
	if n := len(r.freeConns); n > 0 {
		c = r.conns[r.freeConns[n-1]]
		r.freeConns = r.freeConns[:n-1]
	} else {
		c = &conn{slot: uint32(len(r.conns))}
		r.conns = append(r.conns, c)
	}
	c.reset()
	c.fd = fd
	c.gen = (c.gen + 1) & 0xffffff
	c.active = r.now
	c.authed = !r.srv.sec.sasl
	return c
}

func (r *Reactor) connFor(gen, slot uint32) *conn {
	if int(slot) >= len(r.conns) {
		return nil
	}
	c := r.conns[slot]
	if c.gen != gen || c.fd < 0 {
		return nil
	}
	return c
}

func (r *Reactor) armRecv(c *conn) {
	if c.recvArmed || c.closing || c.recvPaused || c.handoff >= 0 {
		return
	}
	c.recvArmed = true
	c.inFlight++
	r.ring.PrepareRecvMultishot(c.fd, r.bufs.Group(), makeUD(udRecv, c.gen, c.slot))
}

// onRecv handles one multishot recv completion.
func (r *Reactor) onRecv(c *conn, res int32, flags uint32) {
	more := ring.HasMore(flags)
	if !more {
		c.recvArmed = false
		c.inFlight--
	}
	if id, ok := ring.BufferID(flags); ok {
		switch {
		case res > 0 && c.tls != nil && (c.closing || c.closeQueued):
			// Past a fatal record (its alert queued) the rest is dropped.
		case res > 0 && c.tls != nil:
			c.active = r.now
			r.onCipher(c, r.bufs.Buf(id)[:res])
			r.holdIn(c)
		case res > 0 && c.handoff >= 0:
			c.in = append(c.in, r.bufs.Buf(id)[:res]...)
		case res > 0 && !c.closing:
			c.active = r.now
			r.onData(c, r.bufs.Buf(id)[:res])
			r.holdIn(c)
		}
		r.bufs.Recycle(id)
	}
	switch {
	case res == 0:
		r.closeConn(c)
	case res < 0 && res != -int32(unix.ENOBUFS) && res != -int32(unix.ECANCELED):
		r.closeConn(c)
	case !more && c.handoff >= 0:
		r.tryHandoffs()
	case !more:
		r.maybeFinishConn(c)
		r.armRecv(c)
	}
}

// onData frames the received bytes. A whole frame in data is copied into
// a pooled buffer owned by its request. A partial frame collects in c.in,
// which becomes its request's buffer once complete (no second copy): a
// pooled buffer of the frame's size as soon as its length is known, when
// that is at most presizeMax; a frame larger still grows c.in as its bytes
// arrive, so a sender that stalls holds only what it sent.
func (r *Reactor) onData(c *conn, data []byte) {
	for len(data) > 0 && !c.closing && !c.closeQueued {
		if len(c.in) == 0 {
			need := r.frameNeed(c, data)
			if need < 0 {
				return
			}
			if need == 0 || len(data) < need {
				r.presizeIn(c, need)
				c.in = append(c.in, data...)
				c.frameStart = r.now
				return
			}
			r.startRequest(c, data[:need])
			data = data[need:]
			continue
		}
		if len(c.in) < proto.FrameLengthSize {
			take := min(proto.FrameLengthSize-len(c.in), len(data))
			c.in = append(c.in, data[:take]...)
			data = data[take:]
			continue
		}
		need := r.frameNeed(c, c.in)
		if need < 0 {
			return
		}
		r.presizeIn(c, need)
		take := min(need-len(c.in), len(data))
		c.in = append(c.in, data[:take]...)
		data = data[take:]
		if len(c.in) == need {
			frame := c.in
			c.in = nil
			r.hold(c, -c.inHeld) // counted again as the request's frame
			c.inHeld = 0
			r.takeRequest(c, frame)
		}
	}
}

// presizeMax is the largest frame whose whole buffer a connection takes
// from the pool before its bytes arrive.
func (r *Reactor) presizeMax() int { return 2 * r.srv.cfg.Reactor.RecvBufferSize }

// presizeIn makes c.in a pooled buffer with room for the whole frame of
// need bytes (0: length not known yet) when it is small enough.
func (r *Reactor) presizeIn(c *conn, need int) {
	if need == 0 || cap(c.in) >= need || need > r.presizeMax() {
		return
	}
	b := r.pool.get(need)[:len(c.in)]
	copy(b, c.in)
	c.in = b
}

// holdIn counts the partial frame buffer's current size in c.held.
func (r *Reactor) holdIn(c *conn) {
	n := int64(cap(c.in))
	r.hold(c, n-c.inHeld)
	c.inHeld = n
	r.checkBudget(c)
}

// frameNeed returns the whole size of the frame starting at b, 0 if its
// length field is incomplete, or -1 after rejecting an oversized or
// undersized frame.
func (r *Reactor) frameNeed(c *conn, b []byte) int {
	n, ok := proto.FrameLength(b)
	if !ok {
		return 0
	}
	if n < proto.RequestHeaderSize || proto.CheckFrameLength(n, r.srv.cfg.Server.MaxFrameBytes) != nil {
		r.srv.metrics.badFrame()
		r.protocolError(c)
		return -1
	}
	return n
}

// protocolError stops reading c and closes it once queued responses are out.
func (r *Reactor) protocolError(c *conn) {
	c.closeQueued = true
	c.in = c.in[:0]
	switch {
	case !hasOutput(c) && !c.sending:
		r.closeConn(c)
	case !c.sending:
		r.needSend = append(r.needSend, c) // a TLS alert to send
	}
}

// closeConn shuts the socket down; the slot is freed once the kernel has
// returned every operation on it and every request has finished.
func (r *Reactor) closeConn(c *conn) {
	if c.fd < 0 {
		return
	}
	if c.closing {
		r.maybeFinishConn(c)
		return
	}
	c.closing = true
	unix.Shutdown(c.fd, unix.SHUT_RDWR)
	r.parked.expireConn(c, r.fetchDeadline)
	r.dropOut(c)
	r.pool.put(c.in)
	c.in = nil
	r.holdIn(c)
	r.maybeFinishConn(c)
}

func (r *Reactor) maybeFinishConn(c *conn) {
	if !c.closing || c.inFlight > 0 || c.requests > 0 || c.fd < 0 {
		return
	}
	unix.Close(c.fd)
	c.fd = -1
	r.releaseTLSBuffer(c)
	c.tls = nil
	c.gen = (c.gen + 1) & 0xffffff
	r.freeConns = append(r.freeConns, c.slot)
	r.srv.connCount.Add(-1)
	r.srv.metrics.connClosed()
}

// detachConn removes c from this reactor without closing its socket (shard
// hand-off): the fd now belongs to another reactor.
func (r *Reactor) detachConn(c *conn) {
	r.hold(c, -c.held)
	c.inHeld, c.tlsHeld = 0, 0
	c.fd = -1
	c.tls = nil
	c.gen = (c.gen + 1) & 0xffffff
	r.freeConns = append(r.freeConns, c.slot)
}
