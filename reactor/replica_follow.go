package reactor

import (
	"context"
	"sync"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/replica"
)

// The follower's network side: this node keeps one fetcher per leader
// broker it follows (one per node, not per shard: the partitions of every
// shard that follow that leader share its one ReplicaFetch in flight). A
// fetcher is a goroutine with one client connection to the leader's
// client port: the dial and the reads and writes run on Go's netpoller,
// never on a reactor thread. A reactor hands it a partition's fetch
// (Ready.SendFetch) without blocking (a map under a mutex and a wake-up
// channel); the fetcher sends every fetch it holds in one request, waits
// for the answer (the leader parks it up to replicaMaxWait when nothing is
// new) and posts each partition's answer to its owner (msgReplicaAnswer),
// which executes it (replica_drive.go). A lost connection or a timeout
// fails every fetch of the request (rep.FetchFailed) after a backoff, and
// the next one dials again; a partition's error answer (NOT_LEADER, an
// epoch the leader does not know yet) is handed back after a pause too,
// so a follower never spins against a leader that refuses it.

// Bounds of the follower's fetches.
const (
	replicaMaxWait     = 500 * time.Millisecond // the leader parks an empty fetch this long at most
	replicaMaxBytes    = 8 << 20                // records per answer
	replicaDialTimeout = 2 * time.Second
	replicaRetryPause  = 100 * time.Millisecond // before a refused partition fetches again
	replicaMaxBackoff  = 2 * time.Second        // between failed connections
)

// fetchWant is one partition's fetch, handed to a fetcher.
type fetchWant struct {
	owner *Reactor
	part  *partition
	topic string
	id    uint32
	req   replica.FetchRequest
}

type fetchKey struct {
	topic string
	id    uint32
}

// fetchAnswer is the leader's answer for one partition, or the failure
// of its fetch, posted to the partition's owner.
type fetchAnswer struct {
	part    *partition
	failed  bool
	hdr     proto.ReplicaFetchPartitionHeader
	records []byte
}

// followers holds this node's fetchers, by leader broker.
type followers struct {
	s       *Server
	mu      sync.Mutex
	leaders map[uint32]*fetcher
	stop    chan struct{}
	ctx     context.Context // cancelled by close: ends fetches in flight
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	truncs  sync.WaitGroup // truncations running off the reactors
}

// fetcher pulls from one leader broker.
type fetcher struct {
	f      *followers
	leader uint32
	mu     sync.Mutex
	wants  map[fetchKey]fetchWant
	kick   chan struct{}
}

func (fl *followers) init(s *Server) {
	fl.s, fl.leaders, fl.stop = s, map[uint32]*fetcher{}, make(chan struct{})
	fl.ctx, fl.cancel = context.WithCancel(context.Background())
}

// want queues w for the fetcher of leader (started on first use). Called
// on a reactor: it never blocks.
func (fl *followers) want(leader uint32, w fetchWant) {
	fl.mu.Lock()
	f := fl.leaders[leader]
	select {
	case <-fl.stop:
		fl.mu.Unlock()
		return // shutting down: the fetch is never answered
	default:
	}
	if f == nil {
		f = &fetcher{f: fl, leader: leader, wants: map[fetchKey]fetchWant{}, kick: make(chan struct{}, 1)}
		fl.leaders[leader] = f
		fl.wg.Add(1)
		go f.run()
	}
	fl.mu.Unlock()
	f.mu.Lock()
	f.wants[fetchKey{w.topic, w.id}] = w
	f.mu.Unlock()
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// close stops every fetcher and waits for them (Shutdown, after the
// reactors stopped).
func (fl *followers) close() {
	if fl.stop == nil {
		return
	}
	fl.mu.Lock()
	select {
	case <-fl.stop:
	default:
		close(fl.stop)
	}
	fl.mu.Unlock()
	fl.cancel()
	fl.wg.Wait()
	fl.truncs.Wait()
}

func (f *fetcher) take() map[fetchKey]fetchWant {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.wants) == 0 {
		return nil
	}
	ws := f.wants
	f.wants = map[fetchKey]fetchWant{}
	return ws
}

func (f *fetcher) run() {
	defer f.f.wg.Done()
	var c *client.Conn
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	backoff := replicaRetryPause
	for {
		select {
		case <-f.f.stop:
			return
		case <-f.kick:
		}
		for ws := f.take(); ws != nil; ws = f.take() {
			var err error
			if c == nil {
				c, err = f.dial()
			}
			if err == nil {
				err = f.fetch(c, ws)
			}
			if err == nil {
				backoff = replicaRetryPause
				continue
			}
			if c != nil {
				c.Close()
				c = nil
			}
			f.f.s.log.Debug("replica fetch failed", "leader", f.leader, "err", err)
			f.failAll(ws, backoff)
			backoff = min(2*backoff, replicaMaxBackoff)
		}
	}
}

// dial connects to the leader's client port (its configured address, or
// the one it registered with).
func (f *fetcher) dial() (*client.Conn, error) {
	addr := f.f.s.brokerAddr(f.leader)
	ctx, cancel := context.WithTimeout(f.f.ctx, replicaDialTimeout)
	defer cancel()
	opts := client.Options{ClientID: "ringmq-replica", MaxInFlight: 1,
		MaxResponseBytes: replicaMaxBytes + (4 << 20)}
	if a := f.f.s.sec.broker; a != nil {
		opts.SASL = client.SASL{User: a.user, Password: a.password}
	}
	opts.TLS = f.f.s.peerTLS // nil: plaintext
	return client.Dial(ctx, addr, opts)
}

// fetch sends one ReplicaFetch holding every want and posts the answers.
func (f *fetcher) fetch(c *client.Conn, ws map[fetchKey]fetchWant) error {
	s := f.f.s
	req := proto.ReplicaFetchRequest{ReplicaID: s.cl.self, BrokerEpoch: s.cl.epoch.Load(),
		MaxWaitMs: uint32(replicaMaxWait / time.Millisecond), MaxBytes: replicaMaxBytes}
	byTopic := map[string]int{}
	for k, w := range ws {
		ti, ok := byTopic[k.topic]
		if !ok {
			ti = len(req.Topics)
			byTopic[k.topic] = ti
			req.Topics = append(req.Topics, proto.ReplicaFetchTopic{Name: []byte(k.topic)})
		}
		req.Topics[ti].Partitions = append(req.Topics[ti].Partitions, proto.ReplicaFetchPartition{Partition: k.id,
			LeaderEpoch: w.req.LeaderEpoch, FetchOffset: w.req.Offset, Flushed: w.req.Flushed, LastEpoch: w.req.LastEpoch})
	}
	ctx, cancel := context.WithTimeout(f.f.ctx, replicaMaxWait+10*time.Second)
	defer cancel()
	var resp proto.ReplicaFetchResponse
	if err := c.Do(ctx, &req, &resp); err != nil {
		return err
	}
	for ti := range resp.Topics {
		t := &resp.Topics[ti]
		for _, p := range t.Partitions {
			k := fetchKey{string(t.Name), p.Partition}
			w, ok := ws[k]
			if !ok {
				continue
			}
			delete(ws, k)
			a := &fetchAnswer{part: w.part, hdr: p.ReplicaFetchPartitionHeader, records: p.Records}
			if p.Error != proto.None {
				f.postAfter(w.owner, a, replicaRetryPause)
				continue
			}
			w.owner.mb.post(message{kind: msgReplicaAnswer, answer: a})
		}
	}
	f.failAll(ws, 0) // partitions the answer left out
	return nil
}

// failAll fails each want's fetch after pause.
func (f *fetcher) failAll(ws map[fetchKey]fetchWant, pause time.Duration) {
	for _, w := range ws {
		f.postAfter(w.owner, &fetchAnswer{part: w.part, failed: true}, pause)
	}
}

func (f *fetcher) postAfter(owner *Reactor, a *fetchAnswer, pause time.Duration) {
	if pause <= 0 {
		owner.mb.post(message{kind: msgReplicaAnswer, answer: a})
		return
	}
	time.AfterFunc(pause, func() { owner.mb.post(message{kind: msgReplicaAnswer, answer: a}) })
}

// brokerAddr is the client address of broker id: the configured peer's,
// else the one it registered with.
func (s *Server) brokerAddr(id uint32) string {
	if a, ok := s.cl.peers[id]; ok {
		return a
	}
	if v := s.cl.view.Load(); v != nil {
		for _, b := range v.brokers {
			if b.ID == id {
				return b.Addr
			}
		}
	}
	return ""
}
