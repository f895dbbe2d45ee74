package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ringmq/ringmq/proto"
)

// Metadata refresh and requests routed to partition leaders.
//
// A node answers Metadata with the controller's view of every partition
// (leader, leader epoch, replicas, ISR) but with its own shard and offsets,
// which are zero for partitions it does not host. So a refresh asks one
// node (the bootstrap connection), then each leader, concurrently, for the
// partitions it leads; the node that answered first is not asked again.

// leaderViewTimeout bounds asking one leader for its view during a
// refresh. A leader that does not answer in time keeps shard 0 for its
// partitions (the server hands requests to the right shard itself) and
// zero offsets.
const leaderViewTimeout = 2 * time.Second

// refresh asks for the metadata of names (every topic if none), updates
// the cache and returns the merged response. A topic the server reports
// an error for is dropped from the cache and its error returned.
func (cl *cluster) refresh(ctx context.Context, names ...string) (*proto.MetadataResponse, error) {
	cl.refreshMu.Lock()
	defer cl.refreshMu.Unlock()
	return cl.refreshLocked(ctx, names)
}

// refreshStale refreshes those of names that were not refreshed within
// minRefreshInterval: callers that fail on stale metadata call it after
// each failure, and many failures at once cost one refresh.
func (cl *cluster) refreshStale(ctx context.Context, names ...string) error {
	cl.refreshMu.Lock()
	defer cl.refreshMu.Unlock()
	var stale []string
	now := time.Now()
	cl.mu.Lock()
	for _, n := range names {
		t := cl.topics[n]
		if (t == nil || now.Sub(t.fetched) >= minRefreshInterval) && !contains(stale, n) {
			stale = append(stale, n)
		}
	}
	cl.mu.Unlock()
	if len(stale) == 0 {
		return nil
	}
	_, err := cl.refreshLocked(ctx, stale)
	return err
}

func (cl *cluster) refreshLocked(ctx context.Context, names []string) (*proto.MetadataResponse, error) {
	resp, via, err := cl.askAny(ctx, names)
	if err != nil {
		return nil, err
	}
	cl.setBrokers(resp.Brokers, via)
	if r, addr := cl.askController(ctx, names, resp, via); r != nil {
		resp, via = r, addr
		cl.setBrokers(resp.Brokers, via)
	}
	cl.leaderViews(ctx, names, resp, via)
	return resp, cl.cache(resp)
}

// askController asks the controller leader that resp names again when the
// node at via did not know a topic: a node applies a topic created
// through another one a moment after the controller leader does. It
// returns nil when there is nothing to ask or no answer.
func (cl *cluster) askController(ctx context.Context, names []string, resp *proto.MetadataResponse, via string) (*proto.MetadataResponse, string) {
	unknown := slices.ContainsFunc(resp.Topics, func(t proto.MetadataTopic) bool { return t.Error == proto.UnknownTopic })
	if !unknown || resp.ControllerID == proto.NoNode {
		return nil, ""
	}
	addr := cl.brokerAddr(resp.ControllerID)
	if addr == "" || addr == via {
		return nil, ""
	}
	vctx, cancel := context.WithTimeout(ctx, leaderViewTimeout)
	defer cancel()
	c, err := cl.conn(vctx, connKey{resp.ControllerID, anyShard})
	if err != nil {
		return nil, ""
	}
	r, err := c.Metadata(vctx, &proto.MetadataRequest{Topics: names})
	if err != nil {
		return nil, ""
	}
	return r, addr
}

// askAny asks one node for metadata over the bootstrap connection; a
// connection found dead is redialed once (to the next address that
// answers).
func (cl *cluster) askAny(ctx context.Context, names []string) (*proto.MetadataResponse, string, error) {
	var err error
	for range 2 {
		var c *Conn
		if c, err = cl.conn(ctx, bootstrapKey); err != nil {
			return nil, "", err
		}
		var resp *proto.MetadataResponse
		if resp, err = c.Metadata(ctx, &proto.MetadataRequest{Topics: names}); err == nil {
			return resp, c.Addr(), nil
		}
		if !errors.Is(err, ErrConnectionLost) {
			break
		}
	}
	return nil, "", err
}

// setBrokers replaces the broker addresses with those of a Metadata
// response that names brokers (via: the address that answered).
func (cl *cluster) setBrokers(bs []proto.BrokerInfo, via string) {
	if len(bs) == 0 {
		return
	}
	m := make(map[uint32]string, len(bs))
	for _, b := range bs {
		m[b.ID] = advertised(b.Addr, via, len(bs))
	}
	cl.mu.Lock()
	cl.brokers = m
	cl.mu.Unlock()
}

// leaderViews asks each leader named in resp, except the node at via, for
// its own view of the partitions it leads, and copies their shard and
// offsets into resp.
func (cl *cluster) leaderViews(ctx context.Context, names []string, resp *proto.MetadataResponse, via string) {
	var leaders []uint32
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.Leader != proto.NoNode && !slices.Contains(leaders, p.Leader) {
				if a := cl.brokerAddr(p.Leader); a != "" && a != via {
					leaders = append(leaders, p.Leader)
				}
			}
		}
	}
	if len(leaders) == 0 {
		return
	}
	views := make([]*proto.MetadataResponse, len(leaders))
	var wg sync.WaitGroup
	for i, id := range leaders {
		wg.Go(func() {
			vctx, cancel := context.WithTimeout(ctx, leaderViewTimeout)
			defer cancel()
			if c, err := cl.conn(vctx, connKey{id, anyShard}); err == nil {
				views[i], _ = c.Metadata(vctx, &proto.MetadataRequest{Topics: names})
			}
		})
	}
	wg.Wait()
	for i, v := range views {
		if v != nil {
			mergeLeaderView(resp, v, leaders[i])
		}
	}
}

// mergeLeaderView copies leader's own shard and offsets of the partitions
// resp says it leads from its answer v.
func mergeLeaderView(resp, v *proto.MetadataResponse, leader uint32) {
	for ti := range resp.Topics {
		t := &resp.Topics[ti]
		vi := slices.IndexFunc(v.Topics, func(vt proto.MetadataTopic) bool { return vt.Name == t.Name })
		if vi < 0 {
			continue
		}
		vt := &v.Topics[vi]
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			if p.Leader != leader || int(p.Partition) >= len(vt.Partitions) {
				continue
			}
			if vp := &vt.Partitions[p.Partition]; vp.Partition == p.Partition {
				p.Shard, p.LogStart, p.LogEnd = vp.Shard, vp.LogStart, vp.LogEnd
			}
		}
	}
}

// cache stores the topics of resp. A topic the server reports an error
// for is dropped and its error returned.
func (cl *cluster) cache(resp *proto.MetadataResponse) error {
	now := time.Now()
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
		m := &topicMeta{name: t.Name, parts: make([]partMeta, len(t.Partitions)), fetched: now}
		for _, p := range t.Partitions {
			if int(p.Partition) < len(m.parts) {
				m.parts[p.Partition] = partMeta{leader: p.Leader, epoch: p.LeaderEpoch, shard: p.Shard}
			}
		}
		cl.topics[t.Name] = m
	}
	return errors.Join(errs...)
}

// staleMetadata reports whether err means that a request went to the
// wrong node or none: the partition's leader moved, it has none, or its
// node is unreachable. Such requests are retried after a refresh.
func staleMetadata(err error) bool {
	return errors.Is(err, proto.NotLeader) || errors.Is(err, proto.FencedLeaderEpoch) ||
		errors.Is(err, proto.LeaderNotAvailable) || errors.Is(err, proto.BrokerNotAvailable) ||
		errors.Is(err, ErrNoLeader) || errors.Is(err, ErrConnectionLost)
}

// Backoff between attempts of requests routed to leaders.
const (
	routeBackoff    = 50 * time.Millisecond
	maxRouteBackoff = time.Second
)

// sleepCtx waits d, or until ctx ends (then it returns ctx.Err()).
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// listOffsets asks each partition's leader for the offset at ts
// (proto.TimestampEarliest, TimestampLatest or a time in ms) of topic's
// partitions parts. Partitions whose leader moved, has none or cannot be
// reached are asked again after a metadata refresh, with backoff, until
// ctx ends; the error then names the last cause.
func (cl *cluster) listOffsets(ctx context.Context, topic string, parts []uint32, ts int64) (map[uint32]uint64, error) {
	out := make(map[uint32]uint64, len(parts))
	left := slices.Clone(parts)
	backoff := routeBackoff
	for {
		byKey := make(map[connKey][]uint32)
		for _, p := range left {
			k := cl.route(topic, p)
			byKey[k] = append(byKey[k], p)
		}
		left = left[:0]
		var last error
		for k, ps := range byKey {
			err := cl.listOffsetsAt(ctx, k, topic, ps, ts, out)
			switch {
			case err == nil:
			case staleMetadata(err) || errors.Is(err, proto.ErrRetriable) || cl.stillListed(ctx, topic, ps, err):
				last = err
				for _, p := range ps {
					if _, ok := out[p]; !ok {
						left = append(left, p)
					}
				}
			default:
				return nil, err
			}
		}
		if len(left) == 0 {
			return out, nil
		}
		_ = cl.refreshStale(ctx, topic) // best effort: the next round tells
		if err := sleepCtx(ctx, backoff); err != nil {
			return nil, fmt.Errorf("client: list offsets of %s: %w (last attempt: %w)", topic, err, last)
		}
		backoff = min(2*backoff, maxRouteBackoff)
	}
}

// stillListed reports whether err refuses a topic or partition that fresh
// metadata still lists: a leader that has not opened a partition the
// controller just created or moved to it answers UNKNOWN_TOPIC or
// UNKNOWN_PARTITION for a moment.
func (cl *cluster) stillListed(ctx context.Context, topic string, ps []uint32, err error) bool {
	if !unknownPartition(err) || cl.refreshStale(ctx, topic) != nil {
		return false
	}
	t := cl.cached(topic)
	return t != nil && slices.Max(ps) < t.partitions()
}

// listOffsetsAt sends one ListOffsets over key's connection and stores
// the offsets found in out. It returns the first error: a retriable one
// for partitions left out.
func (cl *cluster) listOffsetsAt(ctx context.Context, key connKey, topic string, ps []uint32, ts int64, out map[uint32]uint64) error {
	c, err := cl.conn(ctx, key)
	if err != nil {
		return fmt.Errorf("client: list offsets of %s/%d: %w", topic, ps[0], err)
	}
	req := &proto.ListOffsetsRequest{Topics: []proto.ListOffsetsTopic{{Name: []byte(topic)}}}
	for _, p := range ps {
		req.Topics[0].Partitions = append(req.Topics[0].Partitions, proto.ListOffsetsPartition{Partition: p, Timestamp: ts})
	}
	resp, err := c.ListOffsets(ctx, req)
	if err != nil {
		return err
	}
	var first error
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.Error != proto.None {
				if first == nil {
					first = fmt.Errorf("client: list offsets of %s/%d: %w", topic, p.Partition, p.Error)
				}
				continue
			}
			out[p.Partition] = p.Offset
		}
	}
	if first != nil {
		return first
	}
	for _, p := range ps {
		if _, ok := out[p]; !ok {
			return fmt.Errorf("%w: list offsets response lacks %s/%d", ErrProtocol, topic, p)
		}
	}
	return nil
}
