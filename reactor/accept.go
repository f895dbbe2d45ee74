package reactor

import (
	"time"

	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/ring"
	"golang.org/x/sys/unix"
)

// Accepting connections: one multishot accept per reactor on its own
// SO_REUSEPORT listener.
//
//   - Past server.max_connections a connection is refused: it is sent the
//     connection error TOO_MANY_CONNECTIONS (a response frame with
//     correlation id proto.ConnErrorID) and closed once that is sent. At
//     most maxRefusing refusals are in flight per reactor; beyond that a
//     connection is closed without a word.
//   - When the process or the system is out of file descriptors (EMFILE,
//     ENFILE) or of socket memory (ENOBUFS, ENOMEM), accept is paused: it
//     is re-armed by a ring timeout acceptRetry later (the reactor goes on
//     serving meanwhile), instead of failing again at once in a loop. The
//     first such failure is logged, once per episode for the whole server.

const (
	maxRefusing = 64
	acceptRetry = 100 * time.Millisecond
)

type acceptState struct {
	armed    bool // a multishot accept is in the kernel
	paused   bool // out of descriptors: a retry timeout is pending
	refusing int  // refusal frames being sent
	retryTS  unix.Timespec
	drain    []byte
}

func (r *Reactor) armAccept() {
	if r.listenFd < 0 || r.accept.armed || r.accept.paused || r.stopping {
		return
	}
	r.accept.armed = true
	r.ring.PrepareAccept(r.listenFd, true, makeUD(udAccept, 0, 0))
}

func (r *Reactor) onAccept(res int32, flags uint32) {
	more := ring.HasMore(flags)
	if !more {
		r.accept.armed = false
	}
	if res < 0 {
		r.acceptFailed(unix.Errno(-res), more)
		return
	}
	if !more {
		defer r.armAccept()
	}
	if r.srv.acceptFailing.Load() && r.srv.acceptFailing.CompareAndSwap(true, false) {
		r.srv.log.Info("accepting connections again")
	}
	fd := int(res)
	if r.stopping {
		unix.Close(fd)
		return
	}
	if r.srv.connCount.Load() >= int64(r.srv.cfg.Server.MaxConnections) {
		r.refuse(fd)
		return
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	r.srv.connCount.Add(1)
	r.srv.metrics.connOpened()
	if r.srv.handshakes != nil {
		r.srv.handshakes.submit(fd, r)
		return
	}
	c := r.newConn(fd)
	r.armRecv(c)
}

// acceptFailed pauses accepting when descriptors or socket memory ran out;
// any other error re-arms at once (EINVAL once the listener is shut down
// is ignored by armAccept while stopping).
func (r *Reactor) acceptFailed(errno unix.Errno, more bool) {
	switch errno {
	case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
	default:
		if !more {
			r.armAccept()
		}
		return
	}
	r.srv.metrics.acceptError()
	if r.accept.paused {
		return
	}
	r.accept.paused = true
	if more {
		r.ring.PrepareCancel(makeUD(udAccept, 0, 0), makeUD(udCancel, 0, 0))
	}
	if r.srv.acceptFailing.CompareAndSwap(false, true) {
		r.srv.log.Warn("cannot accept connections; retrying", "err", errno.Error(),
			"retry_every", acceptRetry, "connections", r.srv.connCount.Load())
	}
	r.accept.retryTS = unix.NsecToTimespec(int64(acceptRetry))
	r.ring.PrepareTimeout(&r.accept.retryTS, 0, makeUD(udAcceptRetry, 0, 0))
}

func (r *Reactor) onAcceptRetry() {
	r.accept.paused = false
	r.armAccept()
}

// refuse sends the TOO_MANY_CONNECTIONS connection error on fd; onRefused
// closes it.
func (r *Reactor) refuse(fd int) {
	r.srv.metrics.connRejected()
	if r.accept.refusing >= maxRefusing {
		unix.Close(fd)
		return
	}
	r.accept.refusing++
	r.ring.PrepareSend(fd, r.srv.refuseFrame, unix.MSG_NOSIGNAL, makeUD(udRefused, 0, uint32(fd)))
}

// onRefused closes a refused connection once its error is sent. What the
// client sent so far (its Hello) is read and dropped first, so that the
// close is an orderly FIN and not a reset that could discard the error
// before the client reads it.
func (r *Reactor) onRefused(fd int) {
	r.accept.refusing--
	if r.accept.drain == nil {
		r.accept.drain = make([]byte, 4096)
	}
	for i := 0; i < 4; i++ {
		if n, _, err := unix.Recvfrom(fd, r.accept.drain, unix.MSG_DONTWAIT); n <= 0 || err != nil {
			break
		}
	}
	unix.Shutdown(fd, unix.SHUT_RDWR)
	unix.Close(fd)
}

// refuseFrame is the connection error sent to connections past
// max_connections.
func refuseFrame() []byte {
	return proto.AppendResponseHeader(nil, proto.ResponseHeader{CorrelationID: proto.ConnErrorID,
		Error: proto.TooManyConnections}, 0)
}
