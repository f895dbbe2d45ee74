package reactor

import (
	"net"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

// Parked fetches over partitions of both reactors, ended by short
// deadlines and by their connections closing while the owners still hold
// watch messages for them: nothing may race (run with -race) and the
// server must still shut down cleanly.
func TestParkedCrossShardFetchesEndCleanly(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "park", 4)
	var parts []proto.FetchPartition
	for p := uint32(0); p < 4; p++ {
		parts = append(parts, proto.FetchPartition{Partition: p, PartitionMaxBytes: 1 << 20})
	}
	for i := 0; i < 100; i++ {
		nc, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		var frame []byte
		for j := 0; j < 4; j++ {
			req := &proto.FetchRequest{MaxWaitMs: uint32(j % 3), MinBytes: 1, MaxBytes: 1 << 20,
				Topics: []proto.FetchTopic{{Name: []byte("park"), Partitions: parts}}}
			if j == 3 {
				req.MaxWaitMs = 60_000
			}
			frame = proto.AppendRequest(frame, uint32(j), req)
		}
		nc.Write(frame)
		nc.Close()
	}
	// The server still serves, and a long poll still wakes on data.
	produceOne(t, c, "park", 3, []byte("after"))
	if got := readAll(t, c, "park", 4); len(got[3]) != 1 {
		t.Fatalf("partition 3 holds %d records", len(got[3]))
	}
}

// ownerOf returns the reactor that owns topic/p.
func ownerOf(t *testing.T, srv *Server, topic string, p uint32) uint16 {
	t.Helper()
	info := srv.topics.Load().lookup([]byte(topic))
	if info == nil {
		t.Fatalf("topic %s unknown", topic)
	}
	return info.shards[p]
}

// waitingFetch fetches one partition with min_bytes and max_wait from a
// connection served by shard, and returns the partition's answer and how
// long it took.
func waitingFetch(t *testing.T, srv *Server, shard uint16, topic string, p uint32, off uint64,
	minBytes, maxWaitMs uint32) (proto.FetchPartitionResponse, time.Duration) {
	t.Helper()
	c := ringtest.Dial(t, srv.Addr(), client.Options{RequestShard: true, Shard: shard})
	if h := c.Hello(); h.Shard != shard {
		t.Fatalf("asked for shard %d, served by %d", shard, h.Shard)
	}
	start := time.Now()
	resp, err := c.Fetch(ringtest.Ctx(t), &proto.FetchRequest{MaxWaitMs: maxWaitMs, MinBytes: minBytes,
		MaxBytes: 1 << 20, Topics: []proto.FetchTopic{{Name: []byte(topic),
			Partitions: []proto.FetchPartition{{Partition: p, Offset: off, PartitionMaxBytes: 1 << 20}}}}})
	if err != nil {
		t.Fatalf("fetch %s/%d@%d from shard %d: %v", topic, p, off, shard, err)
	}
	c.Close()
	return resp.Topics[0].Partitions[0], time.Since(start)
}

// A waiting fetch (min_bytes ≥ 1) below the log start, after retention
// deleted the first segments, is answered at once with
// OFFSET_OUT_OF_RANGE, from the owner's reactor and from the other one. It
// used to park, be woken at once because the log end is past the offset,
// and park again: a stack overflow on the owner, a spin on the other.
func TestWaitingFetchBelowLogStartIsOutOfRange(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Storage.RetentionCheckInterval = 20 * time.Millisecond
	srv := startServer(t, cfg)
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "ret", 1, "segment_bytes", "1024", "retention_bytes", "2048")
	for i := 0; i < 60; i++ {
		produceOne(t, c, "ret", 0, make([]byte, 100))
	}
	waitFor(t, "retention to move the log start", 20*time.Second, func() bool {
		return ringtest.ListOffset(t, c, "ret", 0, -2) > 0
	})
	owner := ownerOf(t, srv, "ret", 0)
	for _, shard := range []uint16{1 - owner, owner} {
		wakes := metricValue(t, "ringmq_fetch_wakeups_total")
		got, took := waitingFetch(t, srv, shard, "ret", 0, 0, 1, 30_000)
		if got.Error != proto.OffsetOutOfRange || len(got.Records) != 0 {
			t.Fatalf("shard %d: %v with %d bytes, want OFFSET_OUT_OF_RANGE", shard, got.Error, len(got.Records))
		}
		if took > 10*time.Second {
			t.Fatalf("shard %d: answered after %v, want at once", shard, took)
		}
		if w := metricValue(t, "ringmq_fetch_wakeups_total") - wakes; w > 0 {
			t.Fatalf("shard %d: %v wake-ups of a fetch no data arrived for", shard, w)
		}
	}
}

// A fetch asking for more bytes than the partition holds waits for
// max_wait without being woken (no data arrives), then answers what
// there is.
func TestWaitingFetchAboveWhatExistsWaitsQuietly(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "few", 1)
	produceOne(t, c, "few", 0, []byte("only"))
	owner := ownerOf(t, srv, "few", 0)
	for _, shard := range []uint16{1 - owner, owner} {
		wakes := metricValue(t, "ringmq_fetch_wakeups_total")
		got, took := waitingFetch(t, srv, shard, "few", 0, 0, 65536, 1000)
		if got.Error != proto.None || len(got.Records) == 0 {
			t.Fatalf("shard %d: %v with %d bytes, want the one record", shard, got.Error, len(got.Records))
		}
		if took < 900*time.Millisecond {
			t.Fatalf("shard %d: answered after %v, before max_wait", shard, took)
		}
		if w := metricValue(t, "ringmq_fetch_wakeups_total") - wakes; w > 0 {
			t.Fatalf("shard %d: %v wake-ups while no data arrived", shard, w)
		}
	}
	// A parked fetch still wakes when data arrives.
	done := make(chan proto.FetchPartitionResponse, 1)
	go func() {
		got, _ := waitingFetch(t, srv, 1-owner, "few", 0, 1, 1, 60_000)
		done <- got
	}()
	waitFor(t, "the fetch to park", 20*time.Second, func() bool { return parkedCount(srv) == 1 })
	produceOne(t, c, "few", 0, []byte("more"))
	select {
	case got := <-done:
		if got.Error != proto.None || len(got.Records) == 0 {
			t.Fatalf("woken fetch: %v with %d bytes", got.Error, len(got.Records))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a parked fetch was not woken by an append")
	}
}

// parkedCount is the number of parked fetches on every reactor (read
// through the reactors' own counters, published for tests and metrics).
func parkedCount(srv *Server) int64 { return srv.parkedFetches.Load() }

// A client that leaves while its fetch waits frees its connection slot at
// once, though max_wait is far away.
func TestLeavingClientEndsItsWaitingFetch(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "leave", 2)
	produceOne(t, c, "leave", 0, []byte("a"))
	produceOne(t, c, "leave", 1, []byte("b"))
	c.Close()
	waitFor(t, "setup connection to close", 10*time.Second, func() bool { return srv.connCount.Load() == 0 })
	for i := 0; i < 4; i++ {
		nc, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		req := &proto.FetchRequest{MaxWaitMs: 120_000, MinBytes: 65536, MaxBytes: 1 << 20,
			Topics: []proto.FetchTopic{{Name: []byte("leave"), Partitions: []proto.FetchPartition{
				{Partition: 0, PartitionMaxBytes: 1 << 20}, {Partition: 1, PartitionMaxBytes: 1 << 20}}}}}
		nc.Write(proto.AppendRequest(nil, 1, req))
		waitFor(t, "the fetch to park", 20*time.Second, func() bool { return parkedCount(srv) == 1 })
		nc.Close()
		waitFor(t, "the connection slot to free", 10*time.Second, func() bool { return srv.connCount.Load() == 0 })
	}
}
