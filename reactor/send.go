package reactor

import (
	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/ring"
	"github.com/ringmq/ringmq/stats"
	"golang.org/x/sys/unix"
)

// Send path. Responses queue on their connection (c.out) in completion
// order; at the end of each loop turn flushSends starts one send per
// connection with output: a sendmsg of every queued frame's parts (header
// buffers, views of the mmap'd segments, cold-read buffers), which are
// never copied in user space. A send of at least
// reactor.send_zc_min_bytes goes out with sendmsg_zc instead (send_zc
// "on"; "auto" until a notification says the kernel copied anyway, as it
// always does on loopback; never when the kernel lacks the opcode). The
// kernel then reads the pages after the send's result, until its
// notification (IORING_CQE_F_NOTIF): the frames it covered keep their
// buffers, views and requests until then.
//
// Bookkeeping (sendTrack): every send operation gets a number, and
// pending lists those the kernel may still read from: a plain send until
// its completion, a zero-copy send until its notification. A frame whose
// last byte an operation sent is held under that operation's number and
// released once no pending operation has a number at or below it. So a
// frame begun by a zero-copy send and finished by a plain one waits for
// both, and the frames a closing connection drops wait for everything in
// flight. A connection is freed only when its operations (notifications
// included: conn.inFlight) have all completed.
//
// The kernel imports the msghdr and its iovec array when it issues the
// send, so c.msg and c.iov are reused once the result arrives; only the
// bytes they pointed at wait for the notification.

// sendTrack is a connection's send operations in flight and the frames
// they may still read.
type sendTrack struct {
	next  uint32 // number of the next send operation
	cur   uint32 // number of the one in flight (conn.sending)
	curZC bool   // ... which is zero-copy
	// pending: operations the kernel may still read from, oldest first.
	pending []uint32
	// held: frames sent (or dropped by a close) that a pending operation
	// may still read, in order of number.
	held []heldFrame
	// zcOff: send_zc "auto" saw the kernel copy; plain sends from now on.
	zcOff bool
}

// heldFrame is what a sent frame keeps until the kernel is done with it.
type heldFrame struct {
	buf []byte
	req *request
	seq uint32
}

func (t *sendTrack) reset() {
	if len(t.pending) > 0 || len(t.held) > 0 {
		panic("BUG: reactor: connection reused with sends in flight")
	}
	t.next, t.cur, t.curZC, t.zcOff = 0, 0, false, false
}

// seqBefore compares operation numbers, which wrap.
func seqBefore(a, b uint32) bool { return int32(a-b) < 0 }

// releasable reports whether no pending operation is numbered seq or
// lower.
func (t *sendTrack) releasable(seq uint32) bool {
	return len(t.pending) == 0 || seqBefore(seq, t.pending[0])
}

// done removes operation seq from pending; a notification names it by its
// low 24 bits (the user data's gen field).
func (t *sendTrack) done(seq uint32, mask uint32) bool {
	for i, p := range t.pending {
		if p&mask == seq&mask {
			copy(t.pending[i:], t.pending[i+1:])
			t.pending = t.pending[:len(t.pending)-1]
			return true
		}
	}
	return false
}

const seqMask = 0xffffff // operation number bits in a zero-copy send's user data

// queueFrame appends a response frame to c's output.
func (r *Reactor) queueFrame(c *conn, f outFrame) {
	for _, p := range f.parts {
		f.size += len(p)
	}
	c.out = append(c.out, f)
	c.outBytes += f.size
	if !c.sending {
		r.needSend = append(r.needSend, c)
	}
}

// flushSends starts one send per connection that has output and no send
// in flight: everything queued in this loop turn goes out together.
func (r *Reactor) flushSends() {
	r.releaseHeldNotifs()
	for _, c := range r.needSend {
		if c.sending || !hasOutput(c) || c.fd < 0 || c.closing {
			continue
		}
		r.startSend(c)
	}
	clear(r.needSend)
	r.needSend = r.needSend[:0]
}

const maxIov = 1024

// setupZC decides whether this reactor may send zero-copy at all.
func (r *Reactor) setupZC() {
	mode := r.srv.cfg.Reactor.SendZC
	r.zcOn = mode != config.SendZCOff && r.ring.SupportsSendmsgZC() && !r.srv.noSendZC
	r.zcAuto = mode == config.SendZCAuto
}

// useZC reports whether a send of n bytes on c goes out zero-copy.
func (r *Reactor) useZC(c *conn, n int) bool {
	return r.zcOn && !c.sends.zcOff && n >= r.srv.cfg.Reactor.SendZCMinBytes
}

func (r *Reactor) startSend(c *conn) {
	if c.tls != nil {
		r.startSendTLS(c)
		return
	}
	c.iov = c.iov[:0]
	skip, total := c.sentHead, 0
	for i := range c.out {
		for _, p := range c.out[i].parts {
			if skip >= len(p) {
				skip -= len(p)
				continue
			}
			p = p[skip:]
			skip = 0
			if len(c.iov) == maxIov {
				break
			}
			c.iov = append(c.iov, unix.Iovec{Base: &p[0], Len: uint64(len(p))})
			total += len(p)
		}
	}
	if len(c.iov) == 0 {
		return
	}
	c.msg = unix.Msghdr{Iov: &c.iov[0], Iovlen: uint64(len(c.iov))}
	c.sending = true
	t := &c.sends
	t.cur = t.next
	t.next++
	t.pending = append(t.pending, t.cur)
	if t.curZC = r.useZC(c, total); t.curZC {
		c.inFlight += 2 // the result and the notification
		r.ring.PrepareSendmsgZC(c.fd, &c.msg, unix.MSG_NOSIGNAL, ring.ZCReportUsage,
			makeUD(udSendZC, t.cur&seqMask, c.slot))
		return
	}
	c.inFlight++
	stats.Sent(stats.SendPlain)
	r.ring.PrepareSendmsg(c.fd, &c.msg, unix.MSG_NOSIGNAL, makeUD(udSend, c.gen, c.slot))
}

// onSendZC handles both completions of a zero-copy send on the connection
// in slot: the result, then the notification. A connection is not freed
// while they are outstanding, so the slot still holds it.
func (r *Reactor) onSendZC(slot, seq uint32, res int32, flags uint32) {
	if int(slot) >= len(r.conns) || r.conns[slot].fd < 0 {
		panic("BUG: reactor: zero-copy send completion for a freed connection")
	}
	c := r.conns[slot]
	if ring.IsNotif(flags) {
		if r.srv.holdNotifs.Load() {
			r.heldNotifs = append(r.heldNotifs, heldNotif{slot: slot, seq: seq, res: res})
			r.srv.heldNotifCount.Add(1)
			return
		}
		r.onNotif(c, seq, res)
		return
	}
	if !c.sending || !c.sends.curZC || c.sends.cur&seqMask != seq {
		panic("BUG: reactor: zero-copy send result for a send not in flight")
	}
	if !ring.HasMore(flags) { // no notification will follow
		c.inFlight--
		c.sends.done(seq, seqMask)
	}
	if res == -int32(unix.EINVAL) || res == -int32(unix.EOPNOTSUPP) {
		// The kernel refused the operation or its flags (REPORT_USAGE
		// needs Linux 6.2; some sockets cannot send zero-copy): nothing
		// was sent. Send it again, plainly, and stop trying here.
		r.zcOn = false
		r.srv.log.Warn("zero-copy send refused; sending plainly from now on", "reactor", r.id, "err", errnoErr(res))
		c.sending = false
		c.inFlight--
		r.releaseHeld(c)
		if !c.closing {
			r.startSend(c)
		}
		return
	}
	r.onSend(c, res)
}

// onNotif: the kernel no longer reads what send seq pointed at.
func (r *Reactor) onNotif(c *conn, seq uint32, res int32) {
	c.inFlight--
	if !c.sends.done(seq, seqMask) {
		panic("BUG: reactor: notification for a send not pending")
	}
	if ring.ZCCopied(res) {
		stats.Sent(stats.SendZeroCopyCopied)
		if r.zcAuto {
			c.sends.zcOff = true
		}
	} else {
		stats.Sent(stats.SendZeroCopy)
	}
	r.releaseHeld(c)
	r.maybeFinishConn(c)
}

func (r *Reactor) onSend(c *conn, res int32) {
	if c.tls != nil {
		r.onSendTLS(c, res)
		return
	}
	t := &c.sends
	c.sending = false
	c.inFlight--
	seq := t.cur
	if !t.curZC {
		t.done(seq, ^uint32(0))
	}
	if res < 0 {
		r.closeConn(c)
		r.releaseHeld(c)
		r.maybeFinishConn(c)
		return
	}
	c.active = r.now
	if r.consumeOut(c, int(res), seq) {
		r.srv.partialSends.Add(1)
	}
	r.releaseHeld(c)
	switch {
	case len(c.out) > 0 && !c.closing:
		r.startSend(c)
	case c.closeQueued && len(c.out) == 0:
		r.closeConn(c)
	default:
		r.maybeFinishConn(c)
	}
}

// consumeOut takes n more bytes of c's queued frames as sent (or, on a TLS
// connection, encrypted) by operation seq, retiring the frames they end.
// It reports whether a frame is left partly done.
func (r *Reactor) consumeOut(c *conn, n int, seq uint32) bool {
	n += c.sentHead
	done := 0
	for done < len(c.out) && n >= c.out[done].size {
		f := &c.out[done]
		n -= f.size
		r.srv.metrics.bytesOut(f.size)
		c.outBytes -= f.size
		r.retire(c, f, seq)
		done++
	}
	c.sentHead = n
	rest := copy(c.out, c.out[done:])
	clear(c.out[rest:])
	c.out = c.out[:rest]
	return n > 0
}

// retire ends a frame whose last byte send seq sent (or that a close
// dropped): released now if the kernel reads none of it any more, held
// otherwise.
func (r *Reactor) retire(c *conn, f *outFrame, seq uint32) {
	t := &c.sends
	if t.releasable(seq) {
		r.frameSent(f)
		return
	}
	t.held = append(t.held, heldFrame{buf: f.buf, req: f.req, seq: seq})
	*f = outFrame{}
}

// releaseHeld releases the held frames no pending send reads any more.
func (r *Reactor) releaseHeld(c *conn) {
	t := &c.sends
	n := 0
	for n < len(t.held) && t.releasable(t.held[n].seq) {
		f := outFrame{buf: t.held[n].buf, req: t.held[n].req}
		t.held[n] = heldFrame{}
		n++
		r.frameSent(&f)
	}
	if n > 0 {
		rest := copy(t.held, t.held[n:])
		clear(t.held[rest:])
		t.held = t.held[:rest]
	}
}

// dropOut ends every queued frame of a closing connection. A send in
// flight, or a zero-copy send awaiting its notification, may still read
// them: they are held until it is done.
func (r *Reactor) dropOut(c *conn) {
	last := c.sends.next - 1
	for i := range c.out {
		c.outBytes -= c.out[i].size
		r.retire(c, &c.out[i], last)
	}
	c.out = c.out[:0]
	c.sentHead = 0
}

func (r *Reactor) frameSent(f *outFrame) {
	if f.buf != nil {
		r.pool.put(f.buf)
	}
	if f.req != nil {
		r.sentResponse(f.req)
	}
	*f = outFrame{}
}

// heldNotif is a zero-copy send's notification held back by the
// holdNotifs test seam.
type heldNotif struct {
	slot, seq uint32
	res       int32
}

// releaseHeldNotifs handles the held-back notifications once the seam is
// lifted.
func (r *Reactor) releaseHeldNotifs() {
	if len(r.heldNotifs) == 0 || r.srv.holdNotifs.Load() {
		return
	}
	held := r.heldNotifs
	r.heldNotifs = nil
	r.srv.heldNotifCount.Add(-int64(len(held)))
	for _, h := range held {
		r.onNotif(r.conns[h.slot], h.seq, h.res)
	}
}
