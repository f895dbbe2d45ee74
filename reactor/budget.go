package reactor

import "time"

// Memory budgets and connection deadlines.
//
// Every byte a client can make the server hold is counted: its requests'
// frames until answered, its partial frame, its fetches' cold read
// buffers (views of the page cache are not memory of ours). A connection
// over conn_max_unanswered_bytes, or any connection of a reactor over its
// share of max_buffered_bytes, is paused: its multishot recv is canceled
// and not re-armed, so the kernel's socket buffer, then the client's TCP
// window, holds what it sends next. Paused connections resume when their
// memory (or the reactor's) falls to half the budget.
//
// Deadlines are checked by a sweep over the reactor's connections a few
// times per timeout: a partial frame older than frame_timeout (a stalled
// or slow sender) and a connection that neither sent a byte nor let a send
// progress for idle_timeout (idle, or a client not reading its responses)
// are closed, paused or not (a paused partial frame holds memory the pause
// may be waiting for). A connection waiting for a parked fetch or an ack,
// or paused by the server, is not idle.

// hold adds n (negative: releases) to what c holds and to the reactor's
// and the server's totals. A release may resume connections paused for
// the reactor's budget.
func (r *Reactor) hold(c *conn, n int64) {
	if n == 0 {
		return
	}
	c.held += n
	r.held += n
	r.srv.buffered.Add(n)
	if n < 0 {
		r.maybeResume(c)
		if len(r.memPaused) > 0 && r.held <= r.memBudget/2 {
			r.resumeMemPaused()
		}
	}
}

// room is how many more bytes c may hold now.
func (r *Reactor) room(c *conn) int64 {
	return max(0, min(r.srv.cfg.Server.ConnMaxUnansweredBytes-c.held, r.memBudget-r.held))
}

// checkBudget pauses c when it, or the reactor, holds more than allowed.
func (r *Reactor) checkBudget(c *conn) {
	if c.closing || c.fd < 0 {
		return
	}
	overConn := c.held > r.srv.cfg.Server.ConnMaxUnansweredBytes
	overReactor := r.held > r.memBudget
	if !overConn && !overReactor {
		return
	}
	if overReactor && !c.memPaused {
		c.memPaused = true
		r.memPaused = append(r.memPaused, c)
	}
	if c.recvPaused {
		return
	}
	c.recvPaused = true
	r.srv.metrics.backpressure()
	if c.recvArmed && c.handoff < 0 {
		r.ring.PrepareCancel(makeUD(udRecv, c.gen, c.slot), makeUD(udCancel, 0, 0))
	}
}

// maybeResume re-arms a paused c whose memory fell to half its budget
// (and that is not waiting for the reactor's budget).
func (r *Reactor) maybeResume(c *conn) {
	if !c.recvPaused || c.memPaused || c.held > r.srv.cfg.Server.ConnMaxUnansweredBytes/2 {
		return
	}
	c.recvPaused = false
	c.active = r.now
	if len(c.in) > 0 {
		c.frameStart = r.now
	}
	r.armRecv(c)
}

func (r *Reactor) resumeMemPaused() {
	ps := r.memPaused
	r.memPaused = nil
	for _, c := range ps {
		c.memPaused = false
		if c.fd >= 0 {
			r.maybeResume(c)
		}
	}
	clear(ps)
	if r.memPaused == nil {
		r.memPaused = ps[:0]
	}
}

// sweepInterval is how often deadlines are checked: a quarter of the
// shorter timeout, from 10 ms to 1 s.
func (r *Reactor) sweepInterval() time.Duration {
	s := &r.srv.cfg.Server
	return min(max(min(s.FrameTimeout, s.IdleTimeout)/4, 10*time.Millisecond), time.Second)
}

// sweepConns closes connections past their frame or idle deadline.
func (r *Reactor) sweepConns() {
	s := &r.srv.cfg.Server
	for _, c := range r.conns {
		if c.fd < 0 || c.closing || c.handoff >= 0 {
			continue
		}
		// A paused connection's partial frame times out too: it holds
		// memory the pause may be waiting for.
		stalled := len(c.in) > 0 && r.now.Sub(c.frameStart) > s.FrameTimeout
		idle := r.now.Sub(c.active) > s.IdleTimeout &&
			(len(c.out) > 0 || (c.requests == 0 && !c.recvPaused))
		if stalled || idle {
			r.srv.metrics.timedOut()
			r.closeConn(c)
		}
	}
}
