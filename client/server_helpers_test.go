package client_test

// Tests of the producer, consumer and admin against the real server
// (reactor.Server in process, on 127.0.0.1 ephemeral ports). This external
// test package links the server; the client package itself never does.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/reactor"
)

// testServer is an in-process server that a test can stop and restart on
// the same data directory and address.
type testServer struct {
	t         testing.TB
	dir       string
	addr      string
	advertise string // when set, the address the server tells clients to use

	mu  sync.Mutex
	srv *reactor.Server
}

func serverConfig(dir, listen string) config.Config {
	cfg := config.Default()
	cfg.Server.Listen = listen
	cfg.Server.MetricsListen = ""
	cfg.Storage.DataDir = dir
	cfg.Storage.SegmentBytes = 8 << 20
	cfg.Storage.FlushInterval = 50 * time.Millisecond
	cfg.Reactor.Cores = 2
	cfg.Reactor.RecvBuffers = 64
	cfg.Reactor.PinThreads = false
	return cfg
}

func newTestServer(t testing.TB) *testServer {
	t.Helper()
	s := &testServer{t: t, dir: t.TempDir()}
	s.start("127.0.0.1:0")
	t.Cleanup(s.stop)
	return s
}

func (s *testServer) start(listen string) {
	s.t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := serverConfig(s.dir, listen)
	if s.advertise != "" { // a one-node cluster whose clients reach it at advertise
		cfg.Cluster.NodeID, cfg.Cluster.Peers = 1, []config.Peer{{ID: 1, Addr: s.advertise}}
	}
	srv, err := reactor.NewServer(cfg, log)
	if err != nil {
		s.t.Fatalf("NewServer: %v", err)
	}
	if err := srv.Start(); err != nil {
		s.t.Fatalf("Start: %v", err)
	}
	s.mu.Lock()
	s.srv, s.addr = srv, srv.Addr()
	s.mu.Unlock()
}

// stop shuts the server down (a no-op if it is stopped).
func (s *testServer) stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		s.t.Errorf("Shutdown: %v", err)
	}
}

// restart stops the server and starts a new one on the same directory and
// address.
func (s *testServer) restart() {
	s.t.Helper()
	s.stop()
	s.start(s.addr)
}

// testCtx bounds a test's calls so that a bug fails it instead of hanging;
// no test relies on the deadline to pass.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newAdmin(t testing.TB, addr string) *client.Admin {
	t.Helper()
	a, err := client.NewAdmin(addr, client.Options{ClientID: "test-admin"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func createTopic(t testing.TB, addr, name string, partitions uint32, configs map[string]string) {
	t.Helper()
	if err := newAdmin(t, addr).CreateTopic(testCtx(t), name, partitions, configs); err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
}

func newProducer(t testing.TB, addr string, opts client.ProducerOptions) *client.Producer {
	t.Helper()
	p, err := client.NewProducer(addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

func newConsumer(t testing.TB, addr string, opts client.ConsumerOptions) *client.Consumer {
	t.Helper()
	c, err := client.NewConsumer(addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// results collects producer results, safe for the delivery goroutine.
type results struct {
	mu  sync.Mutex
	got map[int]client.Result // by record index
	dup []int                 // indexes that got more than one result
}

func newResults() *results { return &results{got: make(map[int]client.Result)} }

func (r *results) callback(i int) func(client.Result) {
	return func(res client.Result) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if _, ok := r.got[i]; ok {
			r.dup = append(r.dup, i)
		}
		r.got[i] = res
	}
}

func (r *results) snapshot() (map[int]client.Result, []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[int]client.Result, len(r.got))
	for k, v := range r.got {
		out[k] = v
	}
	return out, append([]int(nil), r.dup...)
}

// consumeN polls until n records have arrived (failing the test on error
// or when ctx ends) and returns them.
func consumeN(t testing.TB, c *client.Consumer, n int) []client.Record {
	t.Helper()
	ctx := testCtx(t)
	var out []client.Record
	for len(out) < n {
		recs, err := c.Poll(ctx)
		if err != nil {
			t.Fatalf("poll after %d of %d records: %v", len(out), n, err)
		}
		out = append(out, recs...)
	}
	return out
}

// fetchBatches reads the raw batches of a partition from offset 0 with a
// plain Conn, as an independent view of what the producer stored.
func fetchBatches(t testing.TB, addr, topic string, partition uint32) []proto.BatchHeader {
	t.Helper()
	ctx := testCtx(t)
	c, err := client.Dial(ctx, addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out []proto.BatchHeader
	next := uint64(0)
	for {
		resp, err := c.Fetch(ctx, &proto.FetchRequest{MaxBytes: 8 << 20, Topics: []proto.FetchTopic{{Name: []byte(topic),
			Partitions: []proto.FetchPartition{{Partition: partition, Offset: next, PartitionMaxBytes: 8 << 20}}}}})
		if err != nil {
			t.Fatalf("fetch %s/%d@%d: %v", topic, partition, next, err)
		}
		fp := resp.Topics[0].Partitions[0]
		if fp.Error != proto.None {
			t.Fatalf("fetch %s/%d@%d: %v", topic, partition, next, fp.Error)
		}
		if len(fp.Records) == 0 {
			return out
		}
		for b := fp.Records; len(b) > 0; {
			h, rest, err := proto.ValidateBatch(b)
			if err != nil {
				t.Fatalf("batch of %s/%d at %d: %v", topic, partition, next, err)
			}
			out = append(out, h)
			next = h.NextOffset()
			b = rest
		}
	}
}

func value(i int) []byte { return []byte(fmt.Sprintf("value-%06d", i)) }
