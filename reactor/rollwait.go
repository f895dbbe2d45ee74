package reactor

import (
	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/stats"
)

// Appends waiting for the next segment. Storage prepares a partition's
// next segment on its roll lane, ahead of need (storage/roll.go); when an
// append needs it before it is ready, PrepareAppend refuses with
// storage.ErrRollPending and changes nothing. The owner then holds the
// produce part here, and every later part of the partition behind it (so
// that appends keep their order), until the log's notify function posts
// msgLogReady: the owner applies the background work and plans the held
// parts again, in order. A failure to make the segment fences the log, and
// the held parts get PARTITION_FENCED like any append after a fence. No
// loop spins meanwhile and no file work runs here.

// maxHeldAppends bounds the produce parts one partition holds while its
// next segment is made; past it a part is answered REQUEST_TIMED_OUT
// (retriable). The requests themselves are bounded by the connection and
// server budgets; this only keeps one slow disk from growing a list.
const maxHeldAppends = 4096

// heldAppend is a produce part waiting for its partition's next segment.
type heldAppend struct {
	req    *request
	origin *Reactor
	ti, pi int32
}

// holdAppend holds a produce part until the partition's log is ready.
func (r *Reactor) holdAppend(part *partition, q *request, origin *Reactor, ti, pi int) {
	if len(part.held) >= maxHeldAppends {
		r.partResult(q, origin, ti, pi, proto.RequestTimedOut, 0, 0)
		return
	}
	part.held = append(part.held, heldAppend{req: q, origin: origin, ti: int32(ti), pi: int32(pi)})
	stats.AppendHeld()
}

// watchLog has the log of p tell this reactor when background work it
// waits for is done (storage.Log.SetNotify). Notifications coalesce: one
// message is in the mailbox at a time.
func (r *Reactor) watchLog(p *partition) {
	mb := r.mb
	p.log.SetNotify(func() {
		if p.notified.CompareAndSwap(false, true) {
			mb.post(message{kind: msgLogReady, part: p})
		}
	})
}

// onLogReady applies p's finished background work (a next segment ready,
// a rolled segment renamed into place), plans the appends held for it and
// lets the replica plan the flush that waited for the names.
func (r *Reactor) onLogReady(p *partition) {
	p.notified.Store(false)
	if p.deleted {
		return
	}
	if p.repl.truncating {
		p.notified.Store(true)
		return // the log is being cut off the reactor; msgTruncated touches p
	}
	p.log.ApplyBackground()
	r.touch(p)
	if p.repl.pending {
		r.startReplicate(p)
	}
	for len(p.held) > 0 {
		h := p.held[0]
		if !r.tryAppend(h.req, h.origin, int(h.ti), int(h.pi), true) {
			break // still not ready: the next notification retries
		}
		p.held[0] = heldAppend{}
		p.held = p.held[1:]
	}
	if len(p.held) == 0 {
		p.held = p.held[:0:0] // let a burst's backing array go
	}
	r.noteFence(p)
}

// answerHeld answers every part p holds with code (the partition is
// going away, or the server is stopping).
func (r *Reactor) answerHeld(p *partition, code proto.ErrorCode) {
	for _, h := range p.held {
		r.partResult(h.req, h.origin, int(h.ti), int(h.pi), code, 0, 0)
	}
	p.held = nil
}

// answerAllHeld answers every held part SERVER_SHUTTING_DOWN (beginStop).
func (r *Reactor) answerAllHeld() {
	for _, ps := range r.parts {
		for _, p := range ps {
			if p != nil {
				r.answerHeld(p, proto.ServerShuttingDown)
			}
		}
	}
}
