package reactor

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/ringmq/ringmq/ring"
	"github.com/ringmq/ringmq/tlsengine"
	"golang.org/x/sys/unix"
)

// Reactor is one core's event loop: one goroutine locked to its OS thread,
// one io_uring, its own connections and its own shard of partitions.
// Nothing it owns is touched by another goroutine; others reach it only
// through its mailbox.
type Reactor struct {
	id   int
	tid  atomic.Int32 // its OS thread (set once locked; tests check it)
	srv  *Server
	ring *ring.Ring
	bufs *ring.BufRing
	wake *ring.Waker
	mb   *mailbox

	listenFd int
	accept   acceptState

	conns     []*conn
	freeConns []uint32
	needSend  []*conn

	pendingHandoffs []handoff

	pool    bufPool
	reqFree []*request
	ops     opTable
	parts   map[string][]*partition
	fenced  []*partition // fenced partitions retrying to resume (fence.go)
	// touched: partitions whose replica got an input this turn (runReady);
	// waitParts: partitions whose replica holds waiters, ticked once the
	// earliest of their deadlines, nextWaitTick, passes.
	touched      []*partition
	waitParts    []*partition
	nextWaitTick time.Time
	// acks: produce parts the replicas hold (an ack token is a slot);
	// waits: fetches registered with the replicas (a wait token is a slot).
	acks  slab[ackEntry]
	waits slab[waitEntry]
	// heldFsyncs: fdatasync completions held back while the test seam
	// Server.holdFsyncs is set.
	heldFsyncs []heldCQE
	// heldNotifs: zero-copy send notifications held back while the test
	// seam Server.holdNotifs is set.
	heldNotifs []heldNotif
	// zcOn: large sends go out zero-copy (send_zc, and the kernel has
	// it); zcAuto: a connection whose sends the kernel copies goes plain.
	zcOn, zcAuto bool
	parked       parkedFetches
	// wakes are local parked fetches to re-gather this turn (runWakes);
	// wakesSpare is the other half of the double buffer.
	wakes, wakesSpare []waiter
	// tlsPlain: plaintext being decrypted or encrypted (tls.go).
	tlsPlain []byte

	// Memory held by this reactor's connections and its share of
	// max_buffered_bytes; connections paused for that share.
	held      int64
	memBudget int64
	memPaused []*conn

	now        time.Time
	nextFlush  time.Time
	nextRetain time.Time
	nextSweep  time.Time
	// Shutdown runs in two phases (see Server.Shutdown). stopping: no new
	// connection or request is taken, in-flight requests are answered and
	// idle connections closed; quiet is closed once none of this reactor's
	// requests is left. exiting: every reactor is quiet, so no other
	// reactor will forward work here again; the loop ends once its own
	// I/O has completed.
	stopping bool
	quiesced bool
	exiting  bool
	quiet    chan struct{}
	stopped  chan struct{}
	started  chan error
}

func newReactor(srv *Server, id int) *Reactor {
	r := &Reactor{
		id:       id,
		srv:      srv,
		listenFd: -1,
		parts:    make(map[string][]*partition),
		quiet:    make(chan struct{}),
		stopped:  make(chan struct{}),
		started:  make(chan error, 1),
	}
	return r
}

// run is the reactor goroutine. It reports setup errors on r.started.
func (r *Reactor) run() {
	runtime.LockOSThread()
	r.tid.Store(int32(unix.Gettid()))
	defer close(r.stopped)
	if err := r.setup(); err != nil {
		r.started <- err
		return
	}
	r.started <- nil
	r.loop()
	r.teardown()
}

func (r *Reactor) setup() error {
	cfg := r.srv.cfg.Reactor
	if cfg.PinThreads {
		pinToCPU(r.id)
	}
	rg, err := ring.New(uint32(cfg.RingEntries), ring.Options{SingleIssuer: true, DeferTaskrun: true})
	if err != nil {
		return fmt.Errorf("reactor %d: %w", r.id, err)
	}
	r.ring = rg
	r.setupZC()
	r.bufs, err = rg.NewBufRing(1, cfg.RecvBuffers, cfg.RecvBufferSize)
	if err != nil {
		return fmt.Errorf("reactor %d: %w", r.id, err)
	}
	r.wake, err = ring.NewWaker()
	if err != nil {
		return fmt.Errorf("reactor %d: %w", r.id, err)
	}
	w := r.wake
	r.mb.wake = func() { _ = w.Wake() }
	r.ring.PrepareWakerRead(r.wake, makeUD(udWake, 0, 0))
	r.now = time.Now()
	r.nextFlush = r.now.Add(r.srv.cfg.Storage.FlushInterval)
	r.nextRetain = r.now.Add(r.srv.cfg.Storage.RetentionCheckInterval)
	r.nextSweep = r.now.Add(r.sweepInterval())
	r.memBudget = r.srv.cfg.Server.MaxBufferedBytes / int64(len(r.srv.reactors))
	return nil
}

func pinToCPU(id int) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return
	}
	// Pin to the id-th CPU this process may use.
	n := 0
	for cpu := 0; cpu < 1024; cpu++ {
		if !set.IsSet(cpu) {
			continue
		}
		if n == id%set.Count() {
			var one unix.CPUSet
			one.Set(cpu)
			_ = unix.SchedSetaffinity(0, &one)
			return
		}
		n++
	}
}

// loop: submit what is prepared, wait for a completion or the next timer,
// handle every ready completion and mailbox message, then issue the turn's
// group commit and sends.
func (r *Reactor) loop() {
	for {
		wait := r.nextTimeout()
		if err := r.ring.SubmitAndWait(1, wait); err != nil {
			r.srv.log.Error("reactor ring wait failed", "reactor", r.id, "err", err)
			r.srv.failed(fmt.Errorf("reactor %d: %w", r.id, err))
			return
		}
		r.now = time.Now()
		r.ring.ForEachCQE(r.onCQE)
		r.releaseHeldFsyncs()
		r.mb.drain(r.onMessage)
		r.runWakes()
		r.runTimers()
		r.runReady()
		if len(r.wakes) > 0 { // fetches woken by this turn's Readys
			r.runWakes()
			r.runReady()
		}
		r.flushSends()
		if r.stopping {
			r.quiesce()
		}
		if r.exiting && r.idle() {
			return
		}
	}
}

func (r *Reactor) nextTimeout() time.Duration {
	next := r.nextFlush
	if r.nextRetain.Before(next) {
		next = r.nextRetain
	}
	if r.nextSweep.Before(next) {
		next = r.nextSweep
	}
	if d, ok := r.parked.nextDeadline(); ok && d.Before(next) {
		next = d
	}
	if !r.nextWaitTick.IsZero() && r.nextWaitTick.Before(next) {
		next = r.nextWaitTick
	}
	if len(r.heldFsyncs) > 0 || len(r.heldNotifs) > 0 { // test seams: look again soon
		if t := time.Now().Add(time.Millisecond); t.Before(next) {
			next = t
		}
	}
	if d := r.nextResume(); !d.IsZero() && d.Before(next) {
		next = d
	}
	if len(r.wakes) > 0 {
		return time.Microsecond
	}
	wait := next.Sub(time.Now())
	if r.stopping {
		wait = min(wait, 10*time.Millisecond)
	}
	return max(wait, time.Microsecond)
}

func (r *Reactor) onCQE(ud uint64, res int32, flags uint32) {
	kind, gen, idx := splitUD(ud)
	switch kind {
	case udAccept:
		r.onAccept(res, flags)
	case udAcceptRetry:
		r.onAcceptRetry()
	case udRefused:
		r.onRefused(int(idx))
	case udRecv:
		if c := r.connFor(gen, idx); c != nil {
			r.onRecv(c, res, flags)
		} else if id, ok := ring.BufferID(flags); ok {
			r.bufs.Recycle(id)
		}
	case udSend:
		if c := r.connFor(gen, idx); c != nil {
			r.onSend(c, res)
		}
	case udSendZC:
		r.onSendZC(idx, gen, res, flags)
	case udWrite, udFsync, udRead, udWriteback:
		r.onOp(kind, idx, res)
	case udWake:
		r.wake.Ack()
		r.ring.PrepareWakerRead(r.wake, makeUD(udWake, 0, 0))
	}
}

// adopt takes over a connection handed off by another reactor.
func (r *Reactor) adopt(fd int, pending []byte, hello outFrame, auth *connAuth, eng *tlsengine.Engine) {
	c := r.newConn(fd)
	r.adoptTLS(c, eng)
	if auth != nil {
		c.principal, c.authed, c.sasl = auth.principal, auth.authed, auth.sasl
	}
	r.queueFrame(c, hello)
	if len(pending) > 0 {
		r.onData(c, pending)
	}
	r.armRecv(c)
}

func (r *Reactor) runTimers() {
	if !r.now.Before(r.nextFlush) {
		r.tickPartitions()
		r.nextFlush = r.now.Add(r.srv.cfg.Storage.FlushInterval)
	}
	r.tickWaiting()
	if !r.now.Before(r.nextRetain) {
		r.enforceRetention()
		r.nextRetain = r.now.Add(r.srv.cfg.Storage.RetentionCheckInterval)
	}
	if !r.now.Before(r.nextSweep) {
		r.sweepConns()
		r.nextSweep = r.now.Add(r.sweepInterval())
	}
	r.parked.expire(r.now, r.fetchDeadline)
	r.retryFenced()
}

// beginStop is the first phase of a shutdown: stop accepting, stop taking
// requests (startRequest drops frames from now on), answer parked fetches
// with what they have. Connections close as their last answer leaves
// (quiesce).
func (r *Reactor) beginStop() {
	if r.stopping {
		return
	}
	r.stopping = true
	r.answerAllHeld()
	if r.listenFd >= 0 {
		unix.Shutdown(r.listenFd, unix.SHUT_RDWR)
	}
	r.parked.expireAll(r.fetchDeadline)
}

// beginExit is the second phase: every reactor is quiet, so nothing will
// be forwarded here any more; the loop ends once idle.
func (r *Reactor) beginExit() {
	r.beginStop()
	r.exiting = true
}

// quiesce closes every connection that has nothing left to answer or send,
// and closes r.quiet once no request of this reactor is in flight. It runs
// at the end of every loop turn while stopping.
func (r *Reactor) quiesce() {
	busy := len(r.pendingHandoffs) > 0 || r.parked.len() > 0
	for _, c := range r.conns {
		if c.fd < 0 || c.handoff >= 0 {
			continue
		}
		if c.requests > 0 {
			busy = true
			continue
		}
		if !c.closing && !hasOutput(c) && !c.sending {
			r.closeConn(c)
		}
	}
	if !busy && !r.quiesced {
		r.quiesced = true
		close(r.quiet)
	}
}

// idle reports whether nothing is left in flight: every request answered
// and sent, and every write, fsync and read completed.
func (r *Reactor) idle() bool {
	if r.ops.inUse > 0 || len(r.touched) > 0 || r.parked.len() > 0 || len(r.pendingHandoffs) > 0 ||
		r.accept.refusing > 0 {
		return false
	}
	for _, c := range r.conns {
		if c.fd >= 0 && (c.requests > 0 || len(c.out) > 0 || c.sending || len(c.sends.pending) > 0) {
			return false
		}
	}
	return true
}

func (r *Reactor) teardown() {
	for _, c := range r.conns {
		if c.fd >= 0 {
			unix.Close(c.fd)
			c.fd = -1
		}
	}
	if r.listenFd >= 0 {
		unix.Close(r.listenFd)
	}
	r.closePartitions()
	if r.wake != nil {
		r.wake.Close()
	}
	if r.ring != nil {
		r.ring.Close()
	}
}
