package driver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringmq/ringmq/controller"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// Config sets up a Driver.
type Config struct {
	Node   controller.Config // ID, timeouts in ticks, snapshot cadence
	Voters []uint64          // every node's id; written into a new log's bootstrap snapshot
	Dir    string            // <data>/controller
	FS     FS                // nil: OSFS
	Tick   time.Duration     // the Node's clock period; default 100ms
	// NewTransport builds the transport once the driver can take
	// messages: it must pass each received message to deliver.
	NewTransport func(deliver Deliver) (Transport, error)
	InboxLen     int // received messages queued before dropping; default 4096
	// Logger takes the driver's lines and, when Node.Logger is nil,
	// Raft's (its info lines at debug level). Nil: discarded.
	Logger *slog.Logger
}

// Status is the controller as this node sees it, for metrics and
// `cluster status`.
type Status struct {
	ID       uint64
	Leader   uint64 // 0: none known
	Term     uint64
	Commit   uint64
	Applied  uint64
	IsLeader bool
}

// Driver runs a controller.Node on its own goroutine: it ticks it, steps
// it with peers' messages, persists each Ready on Disk before Advance and
// before sending its messages, answers proposals and publishes the state.
// Its methods are safe for concurrent use.
type Driver struct {
	cfg       Config
	log       *slog.Logger
	node      *controller.Node
	disk      *Disk
	transport Transport

	inbox chan *pb.Message
	calls chan func()
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
	err   error // why the loop stopped; read after done

	state   atomic.Pointer[controller.State]
	changed atomic.Pointer[chan struct{}]
	status  atomic.Pointer[Status]

	// Loop-owned.
	nextReq uint64
	waiters map[uint64]chan<- controller.Result
}

// Open loads (or bootstraps) the log in cfg.Dir, starts the node, the
// transport and the loop.
func Open(cfg Config) (*Driver, error) {
	if cfg.FS == nil {
		cfg.FS = OSFS{}
	}
	if cfg.Tick == 0 {
		cfg.Tick = 100 * time.Millisecond
	}
	if cfg.InboxLen == 0 {
		cfg.InboxLen = 4096
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Node.Logger == nil {
		cfg.Node.Logger = slogRaft{cfg.Logger}
	}
	disk, st, err := OpenDisk(cfg.FS, cfg.Dir, cfg.Voters)
	if err != nil {
		return nil, err
	}
	if v := Voters(st); !sameSet(v, cfg.Voters) {
		disk.Close()
		return nil, fmt.Errorf("controller driver: %s holds a cluster of nodes %v, configured %v",
			cfg.Dir, v, cfg.Voters)
	}
	node, err := controller.NewNode(cfg.Node, st)
	if err != nil {
		disk.Close()
		return nil, err
	}
	d := &Driver{
		cfg: cfg, log: cfg.Logger, node: node, disk: disk,
		inbox: make(chan *pb.Message, cfg.InboxLen), calls: make(chan func()),
		stop: make(chan struct{}), done: make(chan struct{}),
		nextReq: uint64(time.Now().UnixNano()), // unique across restarts
		waiters: map[uint64]chan<- controller.Result{},
	}
	d.publish()
	d.publishStatus()
	d.transport, err = cfg.NewTransport(d.deliver)
	if err != nil {
		disk.Close()
		return nil, err
	}
	go d.run()
	return d, nil
}

func sameSet(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[uint64]bool{}
	for _, x := range a {
		seen[x] = true
	}
	for _, x := range b {
		if !seen[x] {
			return false
		}
	}
	return true
}

// deliver queues a received message; a full inbox drops it.
func (d *Driver) deliver(m *pb.Message) {
	select {
	case d.inbox <- m:
	default:
	}
}

// Close stops the loop and the transport at once, without handing off
// leadership: what was acknowledged is already durable. It returns the
// error that stopped the loop, if any.
func (d *Driver) Close() error {
	d.once.Do(func() { close(d.stop) })
	<-d.done
	if errors.Is(d.err, ErrStopped) {
		return nil
	}
	return d.err
}

// Done is closed when the loop has stopped (Close, or a disk error: see
// Err).
func (d *Driver) Done() <-chan struct{} { return d.done }

// Err is why the loop stopped; nil while it runs or after Close.
func (d *Driver) Err() error {
	select {
	case <-d.done:
		if errors.Is(d.err, ErrStopped) {
			return nil
		}
		return d.err
	default:
		return nil
	}
}

// State is the applied metadata: a copy, never changed; a later change
// publishes a new one.
func (d *Driver) State() *controller.State { return d.state.Load() }

// Changed is closed at the next change of State (or Status's leader or
// term).
func (d *Driver) Changed() <-chan struct{} { return *d.changed.Load() }

// Status is this node's view of the controller.
func (d *Driver) Status() Status { return *d.status.Load() }

// Propose submits c through this node (Raft forwards it to the leader) and
// waits until it is applied and State shows it: the result is the state's
// verdict. A proposal
// lost in a leader change never answers: ctx bounds the wait and the
// caller retries.
func (d *Driver) Propose(ctx context.Context, c controller.Command) error {
	answer := make(chan controller.Result, 1)
	var err error
	if callErr := d.call(ctx, func() {
		d.nextReq++
		c.Request = d.nextReq
		if err = d.node.Propose(c); err == nil {
			d.waiters[c.Request] = answer
		}
	}); callErr != nil {
		return callErr
	}
	if err != nil {
		return err
	}
	select {
	case r := <-answer:
		return r.Err
	case <-ctx.Done():
		_ = d.call(context.Background(), func() { delete(d.waiters, c.Request) })
		return ctx.Err()
	case <-d.done:
		return ErrStopped
	}
}

// Heartbeat passes a broker's heartbeat to the node (see
// controller.Node.Heartbeat).
func (d *Driver) Heartbeat(ctx context.Context, broker int32, epoch uint64) error {
	var err error
	if callErr := d.call(ctx, func() { err = d.node.Heartbeat(broker, epoch) }); callErr != nil {
		return callErr
	}
	return err
}

// call runs f on the loop's goroutine.
func (d *Driver) call(ctx context.Context, f func()) error {
	ran := make(chan struct{})
	select {
	case d.calls <- func() { f(); close(ran) }:
	case <-ctx.Done():
		return ctx.Err()
	case <-d.done:
		return ErrStopped
	}
	select {
	case <-ran:
		return nil
	case <-d.done:
		return ErrStopped
	}
}

func (d *Driver) run() {
	defer close(d.done)
	defer func() {
		d.transport.Close()
		d.disk.Close()
	}()
	ticker := time.NewTicker(d.cfg.Tick)
	defer ticker.Stop()
	// Apply what the log had committed first: that writes nothing, so the
	// state is published even where the disk is full.
	if err := d.handleReady(); err != nil {
		d.log.Error("controller: stopping", "err", err)
		d.err = err
		return
	}
	if len(d.cfg.Voters) == 1 && d.cfg.Voters[0] == d.cfg.Node.ID {
		// The only voter: lead now instead of after an election timeout.
		if err := d.node.Campaign(); err != nil {
			d.log.Warn("controller: campaign", "err", err)
		}
		if err := d.handleReady(); err != nil {
			d.log.Error("controller: stopping", "err", err)
			d.err = err
			return
		}
	}
	for {
		select {
		case <-d.stop:
			d.err = ErrStopped
			return
		case <-ticker.C:
			d.node.Tick()
		case m := <-d.inbox:
			if err := d.node.Step(m); err != nil && !errors.Is(err, raft.ErrStepPeerNotFound) {
				d.log.Warn("controller: step", "from", m.GetFrom(), "type", m.GetType(), "err", err)
			}
		case f := <-d.calls:
			f()
		}
		if err := d.handleReady(); err != nil {
			d.log.Error("controller: stopping", "err", err)
			d.err = err
			return
		}
	}
}

// handleReady persists, advances and sends until the node has no more
// work (bounded: the rest waits for the next event).
func (d *Driver) handleReady() error {
	changed := false
	var answers []controller.Result
	for i := 0; i < 64 && d.node.HasReady(); i++ {
		rd := d.node.Ready()
		if err := d.disk.Save(rd); err != nil {
			return err
		}
		d.node.Advance(rd)
		d.send(rd.Messages)
		for _, r := range rd.Results {
			if r.Command.Proposer == d.cfg.Node.ID {
				answers = append(answers, r)
			}
		}
		changed = changed || len(rd.Results) > 0 || rd.Snapshot != nil
	}
	prev := d.status.Load()
	d.publishStatus()
	switch {
	case changed:
		d.publish()
	case prev.Leader != d.status.Load().Leader || prev.Term != d.status.Load().Term:
		d.notify()
	}
	// After publishing: a caller whose Propose returned sees its change
	// in State.
	for _, r := range answers {
		if w, ok := d.waiters[r.Command.Request]; ok {
			w <- r
			delete(d.waiters, r.Command.Request)
		}
	}
	return nil
}

func (d *Driver) send(msgs []*pb.Message) {
	for _, m := range msgs {
		ok := d.transport.Send(m.GetTo(), []*pb.Message{m})
		if !ok {
			d.node.ReportUnreachable(m.GetTo())
		}
		if m.GetType() == pb.MsgSnap {
			status := raft.SnapshotFinish
			if !ok {
				status = raft.SnapshotFailure
			}
			d.node.ReportSnapshot(m.GetTo(), status)
		}
	}
}

// publish stores a copy of the node's state and signals the change.
func (d *Driver) publish() {
	s, _, err := controller.ParseSnapshot(controller.AppendSnapshot(nil, d.node.State()))
	if err != nil {
		panic("BUG: controller driver: state does not round-trip: " + err.Error())
	}
	d.state.Store(s)
	d.notify()
}

func (d *Driver) notify() {
	ch := make(chan struct{})
	if old := d.changed.Swap(&ch); old != nil {
		close(*old)
	}
}

func (d *Driver) publishStatus() {
	st := d.node.Status()
	d.status.Store(&Status{
		ID: d.cfg.Node.ID, Leader: st.Lead, Term: st.HardState.GetTerm(),
		Commit: st.HardState.GetCommit(), Applied: d.node.State().Applied(),
		IsLeader: d.node.IsLeader(),
	})
}
