package reactor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringmq/ringmq/controller"
	"github.com/ringmq/ringmq/controller/driver"
	"github.com/ringmq/ringmq/proto"
	"go.etcd.io/raft/v3/raftpb"
)

// The server's part in the cluster. Every server runs the controller
// driver (controller/driver) on its own goroutines, off the reactors, a
// one-node cluster included. Raft messages travel on the client port:
// outgoing, the driver's transport keeps one connection per peer and sends
// RaftMessages requests; incoming, a reactor decodes them and hands them to
// the driver's bounded inbox (Deliver never blocks). The broker goroutine
// registers this broker with the controller, heartbeats the controller
// leader and registers again when fenced. The admin goroutine proposes
// topic changes and reconciles: it opens and drops the partitions this
// node hosts and publishes who leads what (cluster_reconcile.go).

// cluster is the Server's cluster state. Fields set before Start returns
// are read-only afterwards; the rest are atomics or owned by one goroutine
// (named beside them).
type cluster struct {
	self  uint32                        // this node's id (cluster.node_id)
	addr  string                        // this broker's client address as its peers reach it
	peers map[uint32]string             // every configured node's address, self included
	dc    driver.Config                 // how to (re)open the driver
	h     atomic.Pointer[controllerRef] // the driver now running

	view  atomic.Pointer[clusterView] // published by the admin goroutine
	epoch atomic.Uint64               // broker epoch of this broker's registration; 0: none

	fresh         bool          // the controller directory was created at this start
	brokerStarted bool          // the broker goroutine runs (and will close done)
	reopened      chan struct{} // a new driver replaced a stopped one
	registered    chan struct{} // closed at the first registration (and import)
	regOnce       sync.Once
	stop          chan struct{} // closed when Shutdown begins
	stopOnce      sync.Once
	done          chan struct{} // the broker goroutine has returned
	proposed      chan proposal // answered proposals, to the admin goroutine
	inFlight      atomic.Int32  // proposals and heartbeats in flight (bounded by maxInFlight)

	// Admin goroutine only.
	lastLeader uint64           // controller leader last seen (elections metric)
	reconciled uint64           // applied index of the state last reconciled
	openFailed map[string]error // topics whose hosted partitions did not all open
}

// maxInFlight bounds the admin requests and heartbeats waiting for the
// controller at once; past it a request is answered
// CONTROLLER_NOT_AVAILABLE.
const maxInFlight = 256

// Timeouts of the cluster's own requests.
const (
	proposeTimeout   = 10 * time.Second // an admin request's wait for the controller
	heartbeatTimeout = 2 * time.Second
)

// controllerRef is one opened driver and the function that hands it a
// received Raft message. A driver stopped by a disk error is replaced by a
// new one (restartController).
type controllerRef struct {
	d       *driver.Driver
	deliver driver.Deliver
}

// ctrl is the controller driver now running (possibly stopped: see Done).
func (cl *cluster) ctrl() *driver.Driver { return cl.h.Load().d }

// deliverRaft hands m to the driver's bounded inbox; never blocks.
func (cl *cluster) deliverRaft(m *raftpb.Message) { cl.h.Load().deliver(m) }

// startCluster opens the controller driver and waits until it has applied
// what its log had committed, so that the topics known before a restart
// are served at once. A driver that stops on a disk error (a full disk)
// does not stop the server: it serves what the controller had decided and
// the broker goroutine opens the driver again.
func (s *Server) startCluster() error {
	cc := s.cfg.Cluster
	cl := &s.cl
	cl.self = uint32(cc.NodeID)
	cl.peers = map[uint32]string{}
	others := map[uint64]string{}
	for _, n := range cc.Nodes(s.Addr()) {
		cl.peers[uint32(n.ID)] = n.Addr
		if n.ID == cc.NodeID {
			cl.addr = n.Addr
		} else {
			others[n.ID] = n.Addr
		}
	}
	cl.registered = make(chan struct{})
	cl.stop = make(chan struct{})
	cl.done = make(chan struct{})
	cl.proposed = make(chan proposal, 64)
	cl.reopened = make(chan struct{}, 1)
	dc := driver.FromConfig(cc, s.Addr(), s.cfg.Storage.DataDir)
	if _, err := os.Stat(dc.Dir); errors.Is(err, fs.ErrNotExist) {
		cl.fresh = true
	}
	dc.Logger = s.log
	dc.NewTransport = func(deliver driver.Deliver) (driver.Transport, error) {
		return driver.NewTCP(driver.TCPConfig{Peers: others, Deliver: deliver, Logger: s.log,
			AppendFrame: driver.AppendRaftRequest, Handshake: s.peerHandshake(), TLS: s.peerTLS}), nil
	}
	cl.dc = dc
	ref, err := s.openController()
	if err != nil {
		return err
	}
	if err := caughtUp(ref.d, 10*time.Second); err != nil {
		s.log.Error("controller at start; serving the state it has", "err", err)
	}
	cl.h.Store(ref)
	s.publishView(ref.d.State(), ref.d.Status())
	cl.brokerStarted = true
	go s.brokerLoop()
	return nil
}

// openController opens a driver.
func (s *Server) openController() (*controllerRef, error) {
	var deliver driver.Deliver
	dc := s.cl.dc
	newTransport := dc.NewTransport
	dc.NewTransport = func(dl driver.Deliver) (driver.Transport, error) {
		deliver = dl
		return newTransport(dl)
	}
	d, err := driver.Open(dc)
	if err != nil {
		return nil, fmt.Errorf("start the controller: %w", err)
	}
	return &controllerRef{d: d, deliver: deliver}, nil
}

// caughtUp waits until d has applied what its log had committed when it
// opened (until then its State is only its snapshot's), for at most
// timeout; an error if it stops or the time runs out first.
func caughtUp(d *driver.Driver, timeout time.Duration) error {
	commit := d.Status().Commit
	deadline := time.After(timeout)
	for d.Status().Applied < commit {
		select {
		case <-d.Changed():
		case <-d.Done():
			return fmt.Errorf("controller stopped before applying its log: %w", d.Err())
		case <-deadline:
			return fmt.Errorf("controller applied %d of %d committed entries within %v", d.Status().Applied, commit, timeout)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// restartController replaces a driver that stopped on its own (a failed
// write) once the server is not stopping, and tells the admin goroutine.
func (s *Server) restartController() {
	cl := &s.cl
	s.log.Error("controller stopped; opening it again", "err", cl.ctrl().Err())
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		select {
		case <-cl.stop:
			return
		case <-time.After(delay):
		}
		ref, err := s.openController()
		if err == nil {
			// Never publish a state older than the one served: a new
			// driver starts from its snapshot until it has replayed its log.
			if err = caughtUp(ref.d, 10*time.Second); err != nil {
				ref.d.Close()
			}
		}
		if err != nil {
			s.log.Error("reopen the controller", "err", err)
			continue
		}
		cl.h.Store(ref)
		select {
		case cl.reopened <- struct{}{}:
		default:
		}
		s.log.Info("controller reopened")
		return
	}
}

// waitRegistered waits for this broker's first registration, in a
// one-node cluster only (it needs no peer): a single server is ready to
// create topics when Start returns. A node of a larger cluster registers
// in the background once a quorum is up.
func (s *Server) waitRegistered() error {
	if len(s.cl.peers) > 1 {
		return nil
	}
	select {
	case <-s.cl.registered:
		return nil
	case <-s.cl.ctrl().Done():
		s.log.Error("controller stopped before this broker registered; serving its last state", "err", s.cl.ctrl().Err())
		return nil
	case <-time.After(30 * time.Second):
		return errors.New("this broker did not register with its own controller within 30s")
	}
}

// stopCluster stops the broker goroutine and the driver.
func (s *Server) stopCluster() {
	cl := &s.cl
	if cl.h.Load() == nil {
		return
	}
	cl.stopOnce.Do(func() { close(cl.stop) })
	if cl.brokerStarted {
		<-cl.done
	}
	if err := cl.ctrl().Close(); err != nil && !errors.Is(err, driver.ErrStopped) {
		s.log.Error("close the controller", "err", err)
	}
}

// stopping reports whether Shutdown has begun.
func (cl *cluster) stopping() bool {
	select {
	case <-cl.stop:
		return true
	default:
		return false
	}
}

// propose submits c and retries while the controller has no leader, until
// ctx ends. A retry after an unanswered attempt may meet the first
// attempt's effect (a topic that now exists): retried reports whether
// more than one attempt was made.
func (s *Server) propose(ctx context.Context, c controller.Command) (retried bool, err error) {
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err = s.cl.ctrl().Propose(actx, c)
		cancel()
		switch {
		case err == nil:
			return attempt > 0, nil
		case errors.Is(err, controller.ErrNoLeader), errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		default:
			return attempt > 0, err
		}
		select {
		case <-ctx.Done():
			return attempt > 0, err
		case <-s.cl.stop:
			return attempt > 0, driver.ErrStopped
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stopContext is a context with timeout d that Shutdown also cancels.
func (s *Server) stopContext(d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	go func() {
		select {
		case <-s.cl.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// controllerCode maps a controller or driver error to a wire code.
func controllerCode(err error) proto.ErrorCode {
	switch {
	case err == nil:
		return proto.None
	case errors.Is(err, controller.ErrTopicExists):
		return proto.TopicExists
	case errors.Is(err, controller.ErrUnknownTopic):
		return proto.UnknownTopic
	case errors.Is(err, controller.ErrNotEnoughBrokers):
		return proto.InvalidReplicationFactor
	case errors.Is(err, controller.ErrInvalid), errors.Is(err, controller.ErrUnknownUser):
		return proto.InvalidRequest
	case errors.Is(err, controller.ErrNotController):
		return proto.NotController
	case errors.Is(err, controller.ErrStaleBrokerEpoch), errors.Is(err, controller.ErrBrokerFenced),
		errors.Is(err, controller.ErrUnknownBroker):
		return proto.StaleBrokerEpoch
	case errors.Is(err, controller.ErrNoLeader), errors.Is(err, driver.ErrStopped), errors.Is(err, errControllerBusy), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled):
		return proto.ControllerNotAvailable
	}
	return proto.Unknown
}

// controllerStopped is why the controller driver stopped (it is being
// opened again), or nil while it runs (/readyz).
func (s *Server) controllerStopped() error {
	h := s.cl.h.Load()
	if h == nil {
		return nil
	}
	select {
	case <-h.d.Done():
		return fmt.Errorf("controller stopped: %v", h.d.Err())
	default:
		return nil
	}
}
