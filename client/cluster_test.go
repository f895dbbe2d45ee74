package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/proto"
)

// Tests of leader routing against fakeCluster: three fake nodes that
// agree on who leads each partition of topic "t".

func clusterProducer(t *testing.T, addrs string, opts ProducerOptions) *Producer {
	t.Helper()
	opts.Partitioner = ManualPartitioner{}
	if opts.RetryBackoff == 0 {
		opts.RetryBackoff = 10 * time.Millisecond
	}
	p, err := NewProducer(addrs, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

func clusterConsumer(t *testing.T, addrs string, opts ConsumerOptions) *Consumer {
	t.Helper()
	opts.MaxWait, opts.RetryBackoff = 20*time.Millisecond, 10*time.Millisecond
	c, err := NewConsumer(addrs, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// produceTo sends n records to partition p ("p<p>-<i>" from first) and
// waits for their results; it fails the test on any error.
func produceTo(t *testing.T, pr *Producer, p uint32, first, n int) {
	t.Helper()
	ctx := testCtx(t)
	fs := make([]*Future, n)
	for i := range n {
		fs[i] = pr.Produce(ctx, Record{Topic: "t", Partition: p, Value: fmt.Appendf(nil, "p%d-%d", p, first+i)})
	}
	for i, f := range fs {
		if r := f.Wait(); r.Err != nil || r.Partition != p {
			t.Fatalf("record %d to partition %d: %+v", first+i, p, r)
		}
	}
}

// consumeUntil polls until every partition in want holds its values (in
// order) and returns what arrived per partition.
func consumeUntil(t *testing.T, c *Consumer, want map[uint32][]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(testCtx(t), 20*time.Second)
	defer cancel()
	got := map[uint32][]string{}
	done := func() bool {
		for p, w := range want {
			if len(got[p]) < len(w) {
				return false
			}
		}
		return true
	}
	for !done() {
		recs, err := c.Poll(ctx)
		if err != nil {
			t.Fatalf("poll: %v; got %v, want %v", err, got, want)
		}
		for _, r := range recs {
			got[r.Partition] = append(got[r.Partition], string(r.Value))
		}
	}
	for p, w := range want {
		if !slices.Equal(got[p], w) {
			t.Fatalf("partition %d: got %v, want %v", p, got[p], w)
		}
	}
}

func values(p uint32, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("p%d-%d", p, i))
	}
	return out
}

// Given one node's address, the producer and consumer find every
// partition's leader and send each its partitions only.
func TestClusterRoutesToLeaders(t *testing.T) {
	fc := newFakeCluster(t, 1, 2, 3)
	pr := clusterProducer(t, fc.addrs(1), ProducerOptions{})
	for p := range uint32(3) {
		produceTo(t, pr, p, 0, 5)
	}
	c := clusterConsumer(t, fc.addrs(3), ConsumerOptions{})
	if err := c.Assign(testCtx(t), "t"); err != nil {
		t.Fatal(err)
	}
	consumeUntil(t, c, map[uint32][]string{0: values(0, 0, 5), 1: values(1, 0, 5), 2: values(2, 0, 5)})
	if n := fc.misleads.Load(); n != 0 {
		t.Errorf("%d requests reached a node that does not lead their partition", n)
	}
	for p := range uint32(3) {
		leader := p + 1
		for _, op := range []string{"produce", "fetch", "list"} {
			if !fc.served(op, leader, p) {
				t.Errorf("%s of partition %d did not reach its leader, node %d", op, p, leader)
			}
		}
	}
}

// A leader change answered with NOT_LEADER or FENCED_LEADER_EPOCH makes
// the producer and consumer refresh metadata and go on with the new
// leader: nothing is lost or duplicated.
func TestClusterFollowsLeaderChange(t *testing.T) {
	for _, code := range []proto.ErrorCode{proto.NotLeader, proto.FencedLeaderEpoch} {
		t.Run(code.String(), func(t *testing.T) {
			fc := newFakeCluster(t, 1, 1)
			fc.misled = code
			pr := clusterProducer(t, fc.addrs(1, 2, 3), ProducerOptions{})
			c := clusterConsumer(t, fc.addrs(2), ConsumerOptions{})
			produceTo(t, pr, 0, 0, 5)
			if err := c.Assign(testCtx(t), "t", 0); err != nil {
				t.Fatal(err)
			}
			consumeUntil(t, c, map[uint32][]string{0: values(0, 0, 5)})
			fc.setLeader(0, 2)
			produceTo(t, pr, 0, 5, 5)
			consumeUntil(t, c, map[uint32][]string{0: values(0, 5, 10)})
			if got := fc.log(0); !slices.Equal(got, values(0, 0, 10)) {
				t.Fatalf("log %v, want %v", got, values(0, 0, 10))
			}
			if fc.misleads.Load() == 0 {
				t.Error("no request met the old leader: the test did not test a redirect")
			}
			if !fc.served("produce", 2, 0) || !fc.served("fetch", 2, 0) {
				t.Error("the new leader served no produce or fetch")
			}
		})
	}
}

// A partition without a leader makes its records wait, and fail clearly
// once DeliveryTimeout passes; metadata refreshes meanwhile are
// rate-limited. Once a leader is elected within the timeout, they are
// delivered.
func TestClusterOfflinePartition(t *testing.T) {
	fc := newFakeCluster(t, proto.NoNode, 2)
	pr := clusterProducer(t, fc.addrs(1), ProducerOptions{DeliveryTimeout: 600 * time.Millisecond})
	start := time.Now()
	res, err := pr.SendSync(testCtx(t), Record{Topic: "t", Partition: 0, Value: []byte("x")})
	took := time.Since(start)
	if !errors.Is(err, ErrDeliveryTimeout) || !errors.Is(err, ErrNoLeader) || res.Partition != 0 {
		t.Fatalf("record to an offline partition: %+v, %v; want a delivery timeout naming no leader", res, err)
	}
	if took < 500*time.Millisecond || took > 5*time.Second {
		t.Errorf("failed after %v, want about the delivery timeout (600ms)", took)
	}
	t.Logf("offline partition: %v after %v; %d refreshes", err, took, fc.metadataBy[1].Load())
	// At most one refresh per minRefreshInterval, plus the first lookup.
	if n, limit := fc.metadataBy[1].Load(), int64(took/minRefreshInterval)+2; n > limit {
		t.Errorf("%d refreshes in %v, want at most %d (rate-limited)", n, took, limit)
	}

	// Elected while a record waits: it is delivered.
	pr2 := clusterProducer(t, fc.addrs(1), ProducerOptions{DeliveryTimeout: 20 * time.Second})
	f := pr2.Produce(testCtx(t), Record{Topic: "t", Partition: 0, Value: []byte("y")})
	time.AfterFunc(300*time.Millisecond, func() { fc.setLeader(0, 3) })
	if r := f.Wait(); r.Err != nil || r.Offset != 0 {
		t.Fatalf("record waiting for a leader: %+v", r)
	}
	if !fc.served("produce", 3, 0) {
		t.Error("the elected leader did not get the record")
	}
}

// A consumer goes on reading the partitions that have a leader while one
// has none, and reads that one once a leader is elected. Its start
// position (ListOffsets) waits for the leader too.
func TestClusterConsumerOfflinePartition(t *testing.T) {
	fc := newFakeCluster(t, 1, 2)
	pr := clusterProducer(t, fc.addrs(1), ProducerOptions{})
	produceTo(t, pr, 0, 0, 3)
	produceTo(t, pr, 1, 0, 3)
	fc.setLeader(0, proto.NoNode)

	c := clusterConsumer(t, fc.addrs(2), ConsumerOptions{Start: StartLatest()})
	ctx, cancel := context.WithTimeout(testCtx(t), 300*time.Millisecond)
	err := c.Assign(ctx, "t")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrNoLeader) {
		t.Fatalf("Assign from latest with partition 0 offline: %v; want a timeout naming no leader", err)
	}
	c2 := clusterConsumer(t, fc.addrs(2), ConsumerOptions{Start: StartAt(0)})
	if err := c2.Assign(testCtx(t), "t"); err != nil {
		t.Fatal(err)
	}
	consumeUntil(t, c2, map[uint32][]string{1: values(1, 0, 3)})
	fc.setLeader(0, 3)
	consumeUntil(t, c2, map[uint32][]string{0: values(0, 0, 3)})
}

// A node that dies (its partitions then led by a survivor, as the
// controller decides) costs the client nothing but retries: the producer
// and the consumer go on, also when the dead node was the one they
// bootstrapped from.
func TestClusterBrokerDies(t *testing.T) {
	fc := newFakeCluster(t, 1, 2)
	pr := clusterProducer(t, fc.addrs(1, 2, 3), ProducerOptions{DeliveryTimeout: 20 * time.Second})
	c := clusterConsumer(t, fc.addrs(1, 2, 3), ConsumerOptions{})
	produceTo(t, pr, 0, 0, 3)
	produceTo(t, pr, 1, 0, 3)
	if err := c.Assign(testCtx(t), "t"); err != nil {
		t.Fatal(err)
	}
	consumeUntil(t, c, map[uint32][]string{0: values(0, 0, 3), 1: values(1, 0, 3)})

	// Node 1 (the bootstrap connection, and partition 0's leader) dies; the
	// controller moves partition 0 to node 3 a little later.
	fc.kill(1)
	time.AfterFunc(200*time.Millisecond, func() { fc.setLeader(0, 3) })
	produceTo(t, pr, 0, 3, 3)
	produceTo(t, pr, 1, 3, 3)
	consumeUntil(t, c, map[uint32][]string{0: values(0, 3, 6), 1: values(1, 3, 6)})
	if !fc.served("produce", 3, 0) || !fc.served("fetch", 3, 0) {
		t.Error("partition 0's new leader served no produce or fetch")
	}
	for p := range 2 {
		if got, want := fc.log(p), values(uint32(p), 0, 6); !slices.Equal(got, want) {
			t.Errorf("partition %d: log %v, want %v", p, got, want)
		}
	}
}

// A node that keeps answering NOT_LEADER although metadata names it the
// leader (a stale controller view) costs at most one refresh per
// minRefreshInterval, and the records fail at the delivery timeout
// naming the cause.
func TestClusterRefreshRateLimited(t *testing.T) {
	fc := newFakeCluster(t, 1, 1, 1, 1)
	fc.lying = 1
	pr := clusterProducer(t, fc.addrs(2), ProducerOptions{DeliveryTimeout: time.Second, RetryBackoff: time.Millisecond,
		MaxRetryBackoff: 5 * time.Millisecond})
	ctx := testCtx(t)
	start := time.Now()
	var fs []*Future
	for p := range uint32(4) {
		fs = append(fs, pr.Produce(ctx, Record{Topic: "t", Partition: p, Value: []byte("x")}))
	}
	for _, f := range fs {
		if r := f.Wait(); !errors.Is(r.Err, ErrDeliveryTimeout) || !errors.Is(r.Err, proto.NotLeader) {
			t.Fatalf("record sent to a node that always misleads: %+v", r)
		}
	}
	took := time.Since(start)
	n, attempts := fc.metadataBy[2].Load(), fc.misleads.Load()
	t.Logf("%d attempts, %d refreshes in %v", attempts, n, took)
	if limit := int64(took/minRefreshInterval) + 2; n > limit || n < 2 {
		t.Errorf("%d refreshes in %v; want from 2 to %d", n, took, limit)
	}
}

// route, on every produce and fetch, does not allocate.
func TestRouteDoesNotAllocate(t *testing.T) {
	cl, err := newCluster("127.0.0.1:1", Options{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cl.brokers = map[uint32]string{1: "127.0.0.1:1", 2: "127.0.0.1:2"}
	cl.topics["orders"] = &topicMeta{name: "orders", parts: []partMeta{{leader: 1, shard: 0}, {leader: 2, shard: 1}, {}}}
	var k connKey
	allocs := testing.AllocsPerRun(1000, func() {
		k = cl.route("orders", 1)
		k = cl.route("orders", 2)
	})
	if allocs != 0 {
		t.Errorf("route allocates %.1f times per call pair", allocs)
	}
	if k != offlineKey || cl.route("orders", 1) != (connKey{2, 1}) || cl.route("nope", 0) != bootstrapKey {
		t.Errorf("routes: %v %v %v", k, cl.route("orders", 1), cl.route("nope", 0))
	}
}

// A broker that advertises an unspecified host is reached on the host
// that answered; a one-node cluster that advertises port 0 is the node
// that answered.
func TestAdvertisedAddress(t *testing.T) {
	cases := []struct {
		addr, via string
		brokers   int
		want      string
	}{
		{"10.0.0.2:9400", "10.0.0.1:9400", 3, "10.0.0.2:9400"},
		{"0.0.0.0:9410", "10.0.0.1:9400", 3, "10.0.0.1:9410"},
		{"[::]:9410", "[fd00::1]:9400", 3, "[fd00::1]:9410"},
		{":9410", "h1:9400", 3, "h1:9410"},
		{"127.0.0.1:0", "127.0.0.1:40123", 1, "127.0.0.1:40123"},
		{"127.0.0.1:0", "127.0.0.1:40123", 3, "127.0.0.1:0"},
		{"h2:9400", "h1:9400", 2, "h2:9400"},
	}
	for _, c := range cases {
		if got := advertised(c.addr, c.via, c.brokers); got != c.want {
			t.Errorf("advertised(%q via %q, %d brokers) = %q, want %q", c.addr, c.via, c.brokers, got, c.want)
		}
	}
}

func clusterAdmin(t *testing.T, addrs string) *Admin {
	t.Helper()
	a, err := NewAdmin(addrs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// DescribeTopic takes each partition's offsets and size from its leader;
// ListOffsets asks each leader.
func TestAdminDescribesThroughLeaders(t *testing.T) {
	fc := newFakeCluster(t, 1, 2, 3, proto.NoNode)
	pr := clusterProducer(t, fc.addrs(1), ProducerOptions{})
	for p := range uint32(3) {
		produceTo(t, pr, p, 0, int(p)+1)
	}
	a := clusterAdmin(t, fc.addrs(1))
	ctx := testCtx(t)
	d, err := a.DescribeTopic(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range d.Partitions[:3] {
		if p.Leader != p.Partition+1 || p.LogEnd != uint64(p.Partition)+1 || p.Bytes != 100*(uint64(p.Partition)+1) || p.Shard != 1 {
			t.Errorf("partition %d: %+v; want leader %d, log end %d from its leader", p.Partition, p, p.Partition+1, p.Partition+1)
		}
	}
	if p := d.Partitions[3]; p.Leader != proto.NoNode || len(p.ISR) != 0 {
		t.Errorf("offline partition 3: %+v", p)
	}
	ctx2, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := a.ListOffsets(ctx2, "t", proto.TimestampLatest); !errors.Is(err, ErrNoLeader) {
		t.Errorf("ListOffsets with partition 3 offline: %v, want it to wait and name no leader", err)
	}
	fc.setLeader(3, 1)
	ends, err := a.ListOffsets(ctx, "t", proto.TimestampLatest)
	if err != nil || !slices.Equal(ends, []uint64{1, 2, 3, 0}) {
		t.Errorf("ListOffsets latest = %v, %v; want [1 2 3 0]", ends, err)
	}
}

// ClusterStatus is the controller leader's view when it answers, the
// bootstrap node's otherwise.
func TestAdminClusterStatusFromController(t *testing.T) {
	fc := newFakeCluster(t, 1, proto.NoNode)
	fc.controller = 2
	a := clusterAdmin(t, fc.addrs(1))
	st, err := a.ClusterStatus(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.NodeID != 2 || st.ControllerID != 2 || st.Term != 12 || len(st.Nodes) != 3 || len(st.Offline) != 1 || st.Offline[0].Partition != 1 {
		t.Errorf("status = %+v; want node 2's (the controller's) view with partition 1 offline", st)
	}
	fc.kill(2)
	st, err = a.ClusterStatus(testCtx(t))
	if err != nil || st.NodeID != 1 || st.ControllerID != 2 || st.Nodes[1].Alive {
		t.Errorf("status with the controller dead = %+v, %v; want node 1's view", st, err)
	}
}

// CreateTopic waits while no controller leader answers (retriable
// refusals) and reports a refused replication factor as the server
// explains it.
func TestAdminCreateTopicWaitsForController(t *testing.T) {
	fc := newFakeCluster(t, 1)
	fc.createRefusals = 2
	a := clusterAdmin(t, fc.addrs(1))
	if err := a.CreateTopic(testCtx(t), "t2", 3, nil); err != nil {
		t.Fatalf("CreateTopic after two CONTROLLER_NOT_AVAILABLE: %v", err)
	}
	if n := fc.creates.Load(); n != 3 {
		t.Errorf("%d create requests, want 3", n)
	}
	err := a.CreateTopicReplicated(testCtx(t), "t3", 3, 3, nil)
	if !errors.Is(err, proto.InvalidReplicationFactor) || !strings.Contains(err.Error(), "replication factor 3 > 1 live brokers") {
		t.Errorf("CreateTopic with 3 replicas: %v", err)
	}
}

// A node that has not applied a topic's creation yet answers
// UNKNOWN_TOPIC; the client then asks the controller leader, which has.
func TestClusterUnknownTopicAsksController(t *testing.T) {
	fc := newFakeCluster(t, 2)
	fc.lagging, fc.controller = 1, 3
	pr := clusterProducer(t, fc.addrs(1), ProducerOptions{})
	produceTo(t, pr, 0, 0, 2)
	if n := fc.metadataBy[3].Load(); n == 0 {
		t.Error("the controller leader was not asked")
	}
	if err := pr.Send(testCtx(t), Record{Topic: "nope"}, nil); !errors.Is(err, proto.UnknownTopic) {
		t.Errorf("Send to a topic no node knows: %v, want UnknownTopic", err)
	}
}

// A node still opening a topic just created answers LEADER_NOT_AVAILABLE
// for it: Send and Assign ask again until it is open.
func TestClusterTopicStillOpening(t *testing.T) {
	fc := newFakeCluster(t, 1)
	fc.opening.Store(3)
	pr := clusterProducer(t, fc.addrs(1), ProducerOptions{})
	produceTo(t, pr, 0, 0, 1)
	fc.opening.Store(3)
	c := clusterConsumer(t, fc.addrs(2), ConsumerOptions{})
	if err := c.Assign(testCtx(t), "t"); err != nil {
		t.Fatalf("Assign while the topic opens: %v", err)
	}
	consumeUntil(t, c, map[uint32][]string{0: values(0, 0, 1)})
}
