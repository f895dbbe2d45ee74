package reactor

// Shard-aware routing: a client may ask in Hello to be served by the
// reactor that owns its partitions. The accepting reactor then cancels its
// receive on the socket, waits until the kernel has returned every
// operation on it, and posts the socket (with any bytes that arrived in the
// meantime) to the target reactor, which sends the Hello response and
// serves the connection from then on.

type handoff struct {
	c        *conn
	target   int
	hello    []byte
	canceled bool
}

// tryHandoffs completes the hand-offs whose connection has nothing left in
// the kernel.
func (r *Reactor) tryHandoffs() {
	keep := r.pendingHandoffs[:0]
	for _, h := range r.pendingHandoffs {
		c := h.c
		switch {
		case c.closing:
			r.maybeFinishConn(c)
		case c.inFlight == 0:
			pending := append([]byte(nil), c.in...)
			fd, eng := c.fd, c.tls
			auth := &connAuth{principal: c.principal, authed: c.authed, sasl: c.sasl}
			r.detachConn(c)
			r.srv.reactors[h.target].mb.post(message{kind: msgAdopt, fd: fd, data: pending, frame: h.hello, auth: auth, tls: eng})
		default:
			if !h.canceled && c.recvArmed {
				r.ring.PrepareCancel(makeUD(udRecv, c.gen, c.slot), makeUD(udCancel, 0, 0))
				h.canceled = true
			}
			keep = append(keep, h)
		}
	}
	clear(r.pendingHandoffs[len(keep):])
	r.pendingHandoffs = keep
}
