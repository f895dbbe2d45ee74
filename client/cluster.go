package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ringmq/ringmq/proto"
)

// cluster is what a Producer, Consumer or Admin knows about the server: its
// addresses, one connection per shard it talks to (dialed on first use and
// redialed after a failure), and the topics' partition layout. It is safe
// for concurrent use.
type cluster struct {
	addrs       []string
	opts        Options
	dialTimeout time.Duration

	mu     sync.Mutex
	next   int // the address that last worked
	conns  map[int]*connSlot
	topics map[string]*topicMeta
	closed bool
}

// anyShard names the connection that asks for no particular shard.
const anyShard = -1

// connSlot is one shard's connection; mu is held while it is (re)dialed.
type connSlot struct {
	mu sync.Mutex
	c  *Conn
}

// topicMeta is a topic's partition count and each partition's shard.
type topicMeta struct {
	name   string
	shards []uint16 // by partition
}

func (t *topicMeta) partitions() uint32 { return uint32(len(t.shards)) }

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
		conns: make(map[int]*connSlot), topics: make(map[string]*topicMeta),
	}, nil
}

// DefaultDialTimeout bounds one connection attempt when options leave it 0.
const DefaultDialTimeout = 10 * time.Second

// conn returns a working connection to shard (anyShard: no preference),
// dialing one if there is none or the last one failed.
func (cl *cluster) conn(ctx context.Context, shard int) (*Conn, error) {
	cl.mu.Lock()
	if cl.closed {
		cl.mu.Unlock()
		return nil, ErrClosed
	}
	s := cl.conns[shard]
	if s == nil {
		s = new(connSlot)
		cl.conns[shard] = s
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
	c, err := cl.dial(ctx, shard)
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

// dial tries every address once, starting with the one that last worked.
func (cl *cluster) dial(ctx context.Context, shard int) (*Conn, error) {
	opts := cl.opts
	if shard >= 0 {
		opts.RequestShard, opts.Shard = true, uint16(shard)
	}
	cl.mu.Lock()
	first := cl.next
	cl.mu.Unlock()
	var errs []error
	for i := range cl.addrs {
		idx := (first + i) % len(cl.addrs)
		dctx, cancel := context.WithTimeout(ctx, cl.dialTimeout)
		c, err := Dial(dctx, cl.addrs[idx], opts)
		cancel()
		if opts.OnDial != nil && ctx.Err() == nil {
			opts.OnDial(cl.addrs[idx], err)
		}
		if err == nil {
			cl.mu.Lock()
			cl.next = idx
			cl.mu.Unlock()
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	// A failed dial is a lost connection: callers retry it.
	return nil, fmt.Errorf("%w: %w", ErrConnectionLost, errors.Join(errs...))
}

// close closes every connection; later calls fail with ErrClosed.
func (cl *cluster) close() {
	cl.mu.Lock()
	cl.closed = true
	slots := cl.conns
	cl.conns = map[int]*connSlot{}
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

// topic returns name's layout, asking the server if it is not cached.
func (cl *cluster) topic(ctx context.Context, name string) (*topicMeta, error) {
	cl.mu.Lock()
	t := cl.topics[name]
	cl.mu.Unlock()
	if t != nil {
		return t, nil
	}
	if err := cl.refresh(ctx, name); err != nil {
		return nil, err
	}
	cl.mu.Lock()
	t = cl.topics[name]
	cl.mu.Unlock()
	if t == nil {
		return nil, fmt.Errorf("client: metadata for %q: %w", name, proto.UnknownTopic)
	}
	return t, nil
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

// refresh asks the server for the layout of names and updates the cache. A
// topic the server reports an error for is dropped from the cache and its
// error returned.
func (cl *cluster) refresh(ctx context.Context, names ...string) error {
	c, err := cl.conn(ctx, anyShard)
	if err != nil {
		return err
	}
	resp, err := c.Metadata(ctx, &proto.MetadataRequest{Topics: names})
	if err != nil {
		return err
	}
	var errs []error
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for _, t := range resp.Topics {
		if t.Error != proto.None || len(t.Partitions) == 0 {
			code := t.Error
			if code == proto.None {
				code = proto.UnknownPartition
			}
			delete(cl.topics, t.Name)
			errs = append(errs, fmt.Errorf("client: metadata for %q: %w", t.Name, code))
			continue
		}
		m := &topicMeta{name: t.Name, shards: make([]uint16, len(t.Partitions))}
		for _, p := range t.Partitions {
			if int(p.Partition) < len(m.shards) {
				m.shards[p.Partition] = p.Shard
			}
		}
		cl.topics[t.Name] = m
	}
	return errors.Join(errs...)
}

// shardOf is the shard serving topic's partition, or anyShard if unknown.
func (cl *cluster) shardOf(topic string, partition uint32) int {
	if t := cl.cached(topic); t != nil && partition < t.partitions() {
		return int(t.shards[partition])
	}
	return anyShard
}
