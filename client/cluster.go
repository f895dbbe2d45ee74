package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/ringmq/ringmq/proto"
)

// cluster is what a Producer, Consumer or Admin knows about the cluster:
// the bootstrap addresses it was given, the brokers (node id → advertised
// client address) and every cached topic's partitions (leader, leader
// epoch, the leader's shard), from Metadata; and one connection per
// (broker, shard) it talks to, dialed on first use and redialed after a
// failure. Each partition's produce, fetch and list-offsets go to its
// leader (route); metadata and admin requests to any node (the bootstrap
// connection). It is safe for concurrent use.
//
// A server that names no brokers in Metadata (before clustering) is one
// node reached through the bootstrap addresses: every route goes there.
type cluster struct {
	addrs       []string
	opts        Options
	dialTimeout time.Duration

	refreshMu sync.Mutex // one metadata refresh at a time

	mu      sync.Mutex
	next    int // the bootstrap address that last worked
	conns   map[connKey]*connSlot
	brokers map[uint32]string // node id → client address; empty: none named
	topics  map[string]*topicMeta
	coords  map[string]uint32 // group → its coordinator's node id (coordinator.go)
	closed  bool
}

// connKey names a connection: to a broker (node id; bootstrap: any of the
// bootstrap addresses) and one of its shards (anyShard: no preference).
type connKey struct {
	broker uint32
	shard  int32
}

const (
	bootstrap uint32 = 0         // the broker of connections to any bootstrap address
	offline   uint32 = 1<<32 - 1 // the broker of a partition without a leader: no connection
	anyShard  int32  = -1        // a connection that asks for no particular shard
)

var (
	bootstrapKey = connKey{bootstrap, anyShard}
	offlineKey   = connKey{offline, anyShard}
)

// connSlot is one connection; mu is held while it is (re)dialed.
type connSlot struct {
	mu sync.Mutex
	c  *Conn
}

// topicMeta is a topic's partitions, as of fetched. It is never changed
// once cached: a refresh replaces it.
type topicMeta struct {
	name    string
	parts   []partMeta // by partition
	fetched time.Time
}

// partMeta is where a partition is served: its leader (proto.NoNode:
// offline, or a server that names no brokers), the leader epoch, and the
// leader's shard for it.
type partMeta struct {
	leader uint32
	epoch  uint32
	shard  uint16
}

func (t *topicMeta) partitions() uint32 { return uint32(len(t.parts)) }

// ErrNoLeader: a partition has no leader (its in-sync replicas are all
// down). Requests for it wait, refreshing metadata, until one is elected
// or their timeout passes. It is retriable.
var ErrNoLeader = errors.New("client: partition has no leader (offline)")

// minRefreshInterval rate-limits metadata refreshes after failures: a
// topic refreshed less than this long ago is not asked for again.
const minRefreshInterval = 100 * time.Millisecond

// splitAddrs parses "host:port[,host:port...]".
func splitAddrs(addr string) ([]string, error) {
	var out []string
	for _, a := range strings.Split(addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("client: no server address in %q", addr)
	}
	return out, nil
}

func newCluster(addr string, opts Options, dialTimeout time.Duration) (*cluster, error) {
	addrs, err := splitAddrs(addr)
	if err != nil {
		return nil, err
	}
	if dialTimeout <= 0 {
		dialTimeout = DefaultDialTimeout
	}
	return &cluster{
		addrs: addrs, opts: opts, dialTimeout: dialTimeout,
		conns: make(map[connKey]*connSlot), brokers: make(map[uint32]string),
		topics: make(map[string]*topicMeta), coords: make(map[string]uint32),
	}, nil
}

// DefaultDialTimeout bounds one connection attempt when options leave it 0.
const DefaultDialTimeout = 10 * time.Second

// conn returns a working connection for key, dialing one if there is none
// or the last one failed. The offline key fails with ErrNoLeader.
func (cl *cluster) conn(ctx context.Context, key connKey) (*Conn, error) {
	if key.broker == offline {
		return nil, ErrNoLeader
	}
	cl.mu.Lock()
	if cl.closed {
		cl.mu.Unlock()
		return nil, ErrClosed
	}
	s := cl.conns[key]
	if s == nil {
		s = new(connSlot)
		cl.conns[key] = s
	}
	cl.mu.Unlock()

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c != nil && s.c.Err() == nil {
		return s.c, nil
	}
	if s.c != nil {
		s.c.Close()
		s.c = nil
	}
	c, err := cl.dial(ctx, key)
	if err != nil {
		return nil, err
	}
	cl.mu.Lock()
	closed := cl.closed
	cl.mu.Unlock()
	if closed { // close ran while we dialed and may have missed this slot
		c.Close()
		return nil, ErrClosed
	}
	s.c = c
	return c, nil
}

// dial connects for key: to the broker's advertised address, or to the
// first bootstrap address that answers.
func (cl *cluster) dial(ctx context.Context, key connKey) (*Conn, error) {
	opts := cl.opts
	if key.shard >= 0 {
		opts.RequestShard, opts.Shard = true, uint16(key.shard)
	}
	if key.broker == bootstrap {
		return cl.dialBootstrap(ctx, opts)
	}
	cl.mu.Lock()
	addr, ok := cl.brokers[key.broker]
	cl.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: node %d: no address known for it", ErrConnectionLost, key.broker)
	}
	c, err := cl.dialOne(ctx, addr, opts)
	if opts.OnDial != nil && ctx.Err() == nil {
		opts.OnDial(addr, err)
	}
	if err != nil {
		// A failed dial is a lost connection: callers retry it.
		return nil, fmt.Errorf("%w: node %d: %w", ErrConnectionLost, key.broker, err)
	}
	return c, nil
}

func (cl *cluster) dialOne(ctx context.Context, addr string, opts Options) (*Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, cl.dialTimeout)
	defer cancel()
	return Dial(dctx, addr, opts)
}

// dialBootstrap tries every bootstrap address once, starting with the one
// that last worked, then the brokers' addresses that are not among them
// (so a client keeps working when every node it was given has gone).
// OnDial hears of the success, or of the first failure if all fail.
func (cl *cluster) dialBootstrap(ctx context.Context, opts Options) (*Conn, error) {
	cl.mu.Lock()
	first := cl.next
	cands := make([]string, 0, len(cl.addrs)+len(cl.brokers))
	for i := range cl.addrs {
		cands = append(cands, cl.addrs[(first+i)%len(cl.addrs)])
	}
	for _, a := range cl.brokers {
		if !contains(cands, a) {
			cands = append(cands, a)
		}
	}
	cl.mu.Unlock()
	var errs []error
	for _, addr := range cands {
		c, err := cl.dialOne(ctx, addr, opts)
		if err == nil {
			cl.mu.Lock()
			for i, a := range cl.addrs {
				if a == addr {
					cl.next = i
				}
			}
			cl.mu.Unlock()
			if opts.OnDial != nil {
				opts.OnDial(addr, nil)
			}
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if opts.OnDial != nil && ctx.Err() == nil {
		opts.OnDial(cands[0], errs[0])
	}
	// A failed dial is a lost connection: callers retry it.
	return nil, fmt.Errorf("%w: %w", ErrConnectionLost, errors.Join(errs...))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// close closes every connection; later calls fail with ErrClosed.
func (cl *cluster) close() {
	cl.mu.Lock()
	cl.closed = true
	slots := cl.conns
	cl.conns = map[connKey]*connSlot{}
	cl.mu.Unlock()
	for _, s := range slots {
		s.mu.Lock()
		if s.c != nil {
			s.c.Close()
			s.c = nil
		}
		s.mu.Unlock()
	}
}

// topic returns name's layout, asking the server if it is not cached. A
// retriable answer (LEADER_NOT_AVAILABLE: the node is still opening a
// topic just created) is asked again, with backoff, until ctx ends.
func (cl *cluster) topic(ctx context.Context, name string) (*topicMeta, error) {
	backoff := routeBackoff
	for {
		if t := cl.cached(name); t != nil {
			return t, nil
		}
		_, err := cl.refresh(ctx, name)
		if t := cl.cached(name); t != nil {
			return t, nil
		}
		if err == nil {
			err = fmt.Errorf("client: metadata for %q: %w", name, proto.UnknownTopic)
		}
		if !errors.Is(err, proto.ErrRetriable) || sleepCtx(ctx, backoff) != nil {
			return nil, err
		}
		backoff = min(2*backoff, maxRouteBackoff)
	}
}

// forget drops name's layout from the cache.
func (cl *cluster) forget(name string) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	delete(cl.topics, name)
}

// cached returns name's layout if it is cached.
func (cl *cluster) cached(name string) *topicMeta {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.topics[name]
}

// route is the connection that serves topic's partition: its leader's, on
// the leader's shard for it; offlineKey when it has no leader; the
// bootstrap connection when the partition is not cached or the server
// names no brokers. It does not allocate.
func (cl *cluster) route(topic string, partition uint32) connKey {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	t := cl.topics[topic]
	if t == nil || partition >= t.partitions() {
		return bootstrapKey
	}
	p := t.parts[partition]
	switch {
	case len(cl.brokers) == 0:
		return connKey{bootstrap, int32(p.shard)}
	case p.leader == proto.NoNode:
		return offlineKey
	}
	return connKey{p.leader, int32(p.shard)}
}

// brokerAddr is node id's advertised address ("" if unknown).
func (cl *cluster) brokerAddr(id uint32) string {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.brokers[id]
}

// advertised turns a broker's advertised address into one to dial: an
// unspecified host (0.0.0.0, ::, none) is the host of the node that
// answered (via), and a port 0 (a server that advertises its listen
// setting as written) is via itself when the cluster has one node.
func advertised(addr, via string, brokers int) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if port == "0" && brokers == 1 {
		return via
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if vh, _, err := net.SplitHostPort(via); err == nil {
			return net.JoinHostPort(vh, port)
		}
	}
	return addr
}
