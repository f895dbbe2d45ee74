package reactor

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/storage"
	"github.com/ringmq/ringmq/storage/metalog"
	"golang.org/x/sys/unix"
)

// Server is a running broker: N reactors, the data directory, the
// metadata store, the controller (cluster.go) and the admin goroutine.
// Its methods are safe for concurrent use.
type Server struct {
	cl       cluster
	cfg      config.Config
	log      *slog.Logger
	store    *storage.Store
	meta     *metalog.Store
	reactors []*Reactor
	topics   atomic.Pointer[topicTable]
	addr     netip.AddrPort
	// sec is the authentication and authorization setup; secTable the
	// users and ACLs published from the controller (security.go).
	sec      secState
	secTable atomic.Pointer[secTable]

	connCount atomic.Int64
	startedAt atomic.Int64 // Unix milliseconds, for the status page
	metrics   serverMetrics
	// acceptFailing is set while accepts fail for lack of descriptors, so
	// the condition is logged once, not by every reactor on every retry.
	acceptFailing atomic.Bool
	refuseFrame   []byte // see refuse
	// parkedFetches counts fetches waiting for data on every reactor.
	parkedFetches atomic.Int64
	// holdFsyncs is a test seam: while set, the reactors hold back the
	// completions of their fdatasyncs (as a slow disk would), and handle
	// them once it is cleared.
	holdFsyncs atomic.Bool
	// failGroupAppends is a test seam: while set, the group coordinator's
	// appends fail (as a broken disk would) without writing.
	failGroupAppends atomic.Bool
	// holdNotifs is a test seam: while set, the reactors hold back the
	// notifications of zero-copy sends (the kernel still reading).
	holdNotifs atomic.Bool
	// noSendZC is a test seam: the reactors act as if the kernel lacked
	// sendmsg_zc. Set before Start.
	noSendZC bool
	// partialSends counts sends that left part of a frame for the next
	// one (tests check that they ran).
	partialSends atomic.Int64
	// heldNotifCount: notifications held by holdNotifs (tests wait for it).
	heldNotifCount atomic.Int64
	// buffered is the memory every connection holds (see budget.go).
	buffered atomic.Int64

	groups *groupDriver // the consumer-group coordinator (group.go)
	// offsetsWanted asks for the internal topic's creation (group_cluster.go).
	offsetsWanted chan struct{}
	follow        followers // fetchers of the partitions this node follows (replica_follow.go)
	adminCh       chan adminJob
	adminDone     chan struct{}
	stopOnce      sync.Once
	started       bool
	startFailed   bool
	fatal         atomic.Pointer[error]
	unserved      atomic.Pointer[string] // a topic not opened at start (Ready)
	failedCh      chan struct{}          // closed when a reactor dies (see Failed)
	failOnce      sync.Once

	// tlsConfig is the listener's TLS configuration (nil: plaintext);
	// handshakes runs its handshakes while the server runs (tls.go).
	tlsConfig  *tls.Config
	handshakes *handshakePool
	// peerTLS is how this node dials its peers' client ports (controller
	// transport, heartbeats) when server.tls is on; nil: plaintext.
	peerTLS *tls.Config

	pids          producerIDs // idempotent producer ids (admin goroutine; producer_ids.go)
	prodRecovered sync.Map    // *storage.Log → its recovered producer state (producer_recover.go)
}

// NewServer opens the data directory (locking it and recovering every
// partition's log as its reactor opens it), loads the metadata store and
// binds the listeners. Nothing is served until Start.
func NewServer(cfg config.Config, log *slog.Logger) (*Server, error) {
	s := &Server{cfg: cfg, log: log, adminCh: make(chan adminJob, 1024), adminDone: make(chan struct{}), metrics: newServerMetrics(),
		offsetsWanted: make(chan struct{}, 1),
		failedCh:      make(chan struct{}), refuseFrame: refuseFrame()}
	s.topics.Store(&topicTable{byName: map[string]*topicInfo{}})
	if err := s.initSecurity(); err != nil {
		return nil, err
	}
	s.follow.init(s)
	st, err := storage.OpenStore(cfg.Storage.DataDir, s.storeOptions())
	if err != nil {
		return nil, err
	}
	s.store = st
	meta, err := metalog.Open(filepath.Join(cfg.Storage.DataDir, "meta"), metalog.Options{SyncEveryWrite: true, Logger: log})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("open metadata store: %w", err)
	}
	s.meta = meta
	if err := s.setupTLS(); err != nil {
		s.closeStores(false)
		return nil, err
	}
	n := cfg.Reactor.NumReactors()
	for i := 0; i < n; i++ {
		r := newReactor(s, i)
		r.mb = newMailbox(func() {})
		s.reactors = append(s.reactors, r)
	}
	if err := s.bindListeners(); err != nil {
		s.closeStores(false)
		return nil, err
	}
	return s, nil
}

func (s *Server) bindListeners() error {
	claimed, err := claimAddr(s.cfg.Server.Listen)
	if err != nil {
		return err
	}
	addr := claimed.String()
	for i, r := range s.reactors {
		fd, bound, err := listenReusePort(addr, 4096)
		if err != nil {
			s.closeListeners()
			return err
		}
		r.listenFd = fd
		if i == 0 {
			s.addr = bound
			addr = bound.String()
		}
	}
	return nil
}

func (s *Server) closeListeners() {
	for _, r := range s.reactors {
		if r.listenFd >= 0 {
			closeFd(r.listenFd)
			r.listenFd = -1
		}
	}
}

func (s *Server) closeStores(clean bool) {
	if s.meta != nil {
		if err := s.meta.Close(); err != nil {
			s.log.Error("close metadata store", "err", err)
		}
	}
	if clean {
		if err := s.store.MarkClean(); err != nil {
			s.log.Error("write clean-shutdown marker", "err", err)
		}
	}
	if err := s.store.Close(); err != nil {
		s.log.Error("close data directory", "err", err)
	}
}

// Start runs the reactors and the controller, opens the partitions this
// node hosts (reconcile), and starts the admin goroutine; then accepts.
func (s *Server) Start() error {
	for _, r := range s.reactors {
		go r.run()
	}
	var first error
	for _, r := range s.reactors {
		if err := <-r.started; err != nil && first == nil {
			first = err
		}
	}
	if first == nil {
		first = s.startCluster()
	}
	if first == nil {
		first = s.waitRegistered()
	}
	if first != nil {
		s.startFailed = true
		s.stopCluster()
		s.stopReactors()
		s.closeStores(false)
		return first
	}
	s.started = true
	s.startedAt.Store(time.Now().UnixMilli())
	// Opened (recovered) here and handed to the reactors open.
	s.reconcile()
	if err := s.openGroups(); err != nil {
		s.startFailed = true
		s.stopCluster()
		s.stopReactors()
		s.follow.close()
		s.closeStores(false)
		return err
	}
	go s.groups.run()
	go s.adminLoop()
	if s.tlsConfig != nil {
		s.handshakes = newHandshakePool(s, s.tlsConfig, max(2, len(s.reactors)))
	}
	// Accept only now, so no request ever sees a partition not yet open.
	for _, r := range s.reactors {
		r.mb.post(message{kind: msgListen})
	}
	s.log.Info("ringmq serving", "addr", s.addr.String(), "reactors", len(s.reactors),
		"data_dir", s.cfg.Storage.DataDir, "topics", len(s.topics.Load().byName))
	return nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.addr.String() }

// Failed is closed when a reactor stops on its own (its ring failed); the
// server is then only partly serving and should be shut down (Healthy
// says why).
func (s *Server) Failed() <-chan struct{} { return s.failedCh }

func (s *Server) failed(err error) {
	s.failOnce.Do(func() {
		s.fatal.Store(&err)
		close(s.failedCh)
	})
}

// Healthy reports nil while every reactor runs.
func (s *Server) Healthy() error {
	if p := s.fatal.Load(); p != nil {
		return *p
	}
	for i, r := range s.reactors {
		select {
		case <-r.stopped:
			return fmt.Errorf("reactor %d stopped", i)
		default:
		}
	}
	return nil
}

// Shutdown stops accepting, lets in-flight requests finish, flushes every
// partition, and writes the clean-shutdown marker. If ctx ends first the
// marker is not written, so the next start recovers.
//
// It runs in two phases. First every reactor stops accepting and reading
// requests, answers what it has in flight (parked fetches with what they
// have) and closes its connections; a request of one reactor may still
// need another (forwarded parts, views to release), so no reactor leaves
// its loop in this phase. Once every reactor is quiet, no request is left
// anywhere, and each is told to end its loop when its own I/O completes.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.stopOnce.Do(func() {
		if s.cl.stop != nil {
			// Proposals and heartbeats in flight give up now.
			s.cl.stopOnce.Do(func() { close(s.cl.stop) })
		}
		if !s.started {
			if !s.startFailed {
				s.closeListeners()
				s.closeStores(false)
			}
			return
		}
		for _, r := range s.reactors {
			r.mb.post(message{kind: msgStop})
		}
		if s.handshakes != nil {
			s.handshakes.close()
		}
		for _, r := range s.reactors {
			select {
			case <-r.quiet:
			case <-r.stopped:
			case <-ctx.Done():
				err = fmt.Errorf("reactor %d still answering requests: %w", r.id, ctx.Err())
				return
			}
		}
		for _, r := range s.reactors {
			r.mb.post(message{kind: msgExit})
		}
		for _, r := range s.reactors {
			select {
			case <-r.stopped:
			case <-ctx.Done():
				err = fmt.Errorf("reactor %d still completing I/O: %w", r.id, ctx.Err())
				return
			}
		}
		s.follow.close()
		close(s.adminCh)
		<-s.adminDone
		close(s.groups.ch)
		<-s.groups.done
		s.stopCluster()
		s.closeStores(true)
	})
	return err
}

func (s *Server) stopReactors() {
	for _, r := range s.reactors {
		r.mb.post(message{kind: msgExit})
	}
	for _, r := range s.reactors {
		<-r.stopped
	}
}

func (s *Server) storeOptions() storage.StoreOptions {
	return storage.StoreOptions{ArchiveDir: s.cfg.Storage.ArchiveDir, Logger: s.log,
		OnIndexFault: s.metrics.indexFault}
}

// logConfig is the storage configuration of a partition of a topic with
// overrides t.
func (s *Server) logConfig(t config.TopicConfig) storage.LogConfig {
	sc := s.cfg.Storage
	return storage.LogConfig{
		SegmentBytes:       t.SegmentBytes,
		SegmentMs:          sc.SegmentMs,
		IndexIntervalBytes: sc.IndexIntervalBytes,
		RetentionMs:        t.RetentionMs,
		RetentionBytes:     t.RetentionBytes,
		ArchiveAfter:       sc.ArchiveAfter,
		// Zero-filling the next segment halves fdatasync latency on ext4 but
		// writes every byte twice; only flush=sync topics wait on fdatasync.
		// Other topics still get their next segment pre-created (sparse) in
		// the background.
		Preallocate:    sc.Preallocate && t.Flush == config.FlushSync,
		WritebackBytes: sc.WritebackBytes,
		AllocateNext:   sc.AllocateNext,
	}
}

func closeFd(fd int) { _ = unix.Close(fd) }
