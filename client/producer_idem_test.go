package client_test

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/reactor"
)

var (
	proxySeed  = flag.Uint64("proxy.seed", 0, "seed of the fault proxy's drops (0: from the clock)")
	proxyDrops = flag.Int("proxy.drops", 1000, "connections the fault proxy drops in TestIdempotentProducerLostAnswers")
)

// faultProxy forwards TCP connections to a server and cuts a connection
// when the answer to a Produce comes back from the server, before the
// client reads it: the server appended the records, the client never
// learns it. It decides at random (seeded) which answers to cut, until
// max connections were cut.
type faultProxy struct {
	t      testing.TB
	ln     net.Listener
	target string
	max    int64

	mu    sync.Mutex
	rng   *rand.Rand
	drops atomic.Int64
	wg    sync.WaitGroup
}

func startFaultProxy(t testing.TB, target string, seed uint64, maxDrops int) *faultProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fp := &faultProxy{t: t, ln: ln, target: target, max: int64(maxDrops), rng: rand.New(rand.NewPCG(seed, seed))}
	fp.wg.Add(1)
	go fp.accept()
	t.Cleanup(func() {
		ln.Close()
		fp.wg.Wait()
	})
	return fp
}

func (fp *faultProxy) addr() string { return fp.ln.Addr().String() }

func (fp *faultProxy) accept() {
	defer fp.wg.Done()
	for {
		c, err := fp.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", fp.target)
		if err != nil {
			c.Close()
			continue
		}
		produce := &sync.Map{} // correlation ids of the Produce requests on this connection
		fp.wg.Add(2)
		go fp.pipe(c, s, func(frame []byte) bool {
			if h, _, err := proto.ParseRequestHeader(frame); err == nil && h.API == proto.APIProduce {
				produce.Store(h.CorrelationID, true)
			}
			return true
		})
		go fp.pipe(s, c, func(frame []byte) bool {
			h, _, err := proto.ParseResponseHeader(frame)
			if err != nil {
				return true
			}
			if _, ok := produce.LoadAndDelete(h.CorrelationID); !ok {
				return true
			}
			return !fp.cut()
		})
	}
}

// cut decides whether to drop the connection instead of forwarding a
// Produce answer.
func (fp *faultProxy) cut() bool {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if fp.drops.Load() >= fp.max || fp.rng.IntN(2) == 0 {
		return false
	}
	fp.drops.Add(1)
	return true
}

// pipe copies whole frames from src to dst while pass allows them; when
// it does not (or either side ends) both connections are closed.
func (fp *faultProxy) pipe(src, dst net.Conn, pass func(frame []byte) bool) {
	defer fp.wg.Done()
	defer src.Close()
	defer dst.Close()
	var lenBuf [proto.FrameLengthSize]byte
	for {
		if _, err := io.ReadFull(src, lenBuf[:]); err != nil {
			return
		}
		n, _ := proto.FrameLength(lenBuf[:])
		frame := make([]byte, n)
		copy(frame, lenBuf[:])
		if _, err := io.ReadFull(src, frame[proto.FrameLengthSize:]); err != nil {
			return
		}
		if !pass(frame) {
			return
		}
		if _, err := dst.Write(frame); err != nil {
			return
		}
	}
}

// lostAnswers produces through a fault proxy that cuts drops connections
// right after the server appended and before the client read the answer,
// and returns how many records were produced and how often each value was
// stored (per partition, in the order stored).
func lostAnswers(t *testing.T, drops int, opts client.ProducerOptions) (int, [][]int) {
	seed := *proxySeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("fault proxy seed %d (replay with -proxy.seed=%d)", seed, seed)
	srv := newTestServer(t)
	const partitions = 2
	createTopic(t, srv.addr, "lost", partitions, nil)
	fp := startFaultProxy(t, srv.addr, seed, drops)
	opts.BatchBytes, opts.RetryBackoff, opts.MaxRetryBackoff = 512, time.Millisecond, 5*time.Millisecond
	opts.DeliveryTimeout = time.Minute
	p := newProducer(t, fp.addr(), opts)
	ctx := testCtx(t)
	var failed atomic.Int64
	var firstErr atomic.Pointer[error]
	n := 0
	for ; fp.drops.Load() < int64(drops); n++ {
		rec := client.Record{Topic: "lost", Key: []byte(strconv.Itoa(n % partitions)), Value: value(n)}
		err := p.Send(ctx, rec, func(r client.Result) {
			if r.Err != nil && failed.Add(1) == 1 {
				firstErr.Store(&r.Err)
			}
		})
		if err != nil {
			t.Fatalf("send %d: %v", n, err)
		}
		if n%64 == 63 { // keep a few requests in flight, not the whole buffer
			if err := p.Flush(ctx); err != nil {
				t.Fatalf("flush after %d records, %d connections cut: %v", n, fp.drops.Load(), err)
			}
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d records failed, the first with %v", f, *firstErr.Load())
	}
	t.Logf("%d records, %d connections cut, producer stats %+v", n, fp.drops.Load(), p.Stats())
	c := newConsumer(t, srv.addr, client.ConsumerOptions{RetryBackoff: 10 * time.Millisecond})
	if err := c.Assign(ctx, "lost"); err != nil {
		t.Fatal(err)
	}
	stored := make([][]int, partitions)
	total := logEnds(t, srv.addr, "lost", partitions)
	for _, r := range consumeN(t, c, int(total)) {
		i, err := strconv.Atoi(string(r.Value[len("value-"):]))
		if err != nil {
			t.Fatalf("record %q: %v", r.Value, err)
		}
		stored[r.Partition] = append(stored[r.Partition], i)
	}
	return n, stored
}

// logEnds sums the log ends of topic's partitions.
func logEnds(t *testing.T, addr, topic string, partitions uint32) uint64 {
	t.Helper()
	c, err := client.Dial(testCtx(t), addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := &proto.ListOffsetsRequest{Topics: []proto.ListOffsetsTopic{{Name: []byte(topic)}}}
	for p := uint32(0); p < partitions; p++ {
		req.Topics[0].Partitions = append(req.Topics[0].Partitions, proto.ListOffsetsPartition{Partition: p, Timestamp: proto.TimestampLatest})
	}
	resp, err := c.ListOffsets(testCtx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	var total uint64
	for _, pr := range resp.Topics[0].Partitions {
		if pr.Error != proto.None {
			t.Fatalf("list offsets: %v", pr.Error)
		}
		total += pr.Offset
	}
	return total
}

// TestIdempotentProducerLostAnswers: 1,000 times (-proxy.drops) the
// connection drops after the server appended a produce and before the
// client read the answer; every record is stored exactly once, in the
// order sent per partition.
func TestIdempotentProducerLostAnswers(t *testing.T) {
	n, stored := lostAnswers(t, *proxyDrops, client.ProducerOptions{})
	seen := make([]bool, n)
	for part, vals := range stored {
		for i, v := range vals {
			switch {
			case v >= n:
				t.Fatalf("partition %d record %d: value %d never produced", part, i, v)
			case seen[v]:
				t.Fatalf("partition %d record %d: value %d stored twice", part, i, v)
			case i > 0 && v < vals[i-1]:
				t.Fatalf("partition %d record %d: value %d after %d (out of order)", part, i, v, vals[i-1])
			}
			seen[v] = true
		}
	}
	for v, ok := range seen {
		if !ok {
			t.Fatalf("value %d of %d not stored", v, n)
		}
	}
}

// The same faults without idempotence store records twice: the test above
// would see them.
func TestProducerLostAnswersWithoutIdempotence(t *testing.T) {
	n, stored := lostAnswers(t, 50, client.ProducerOptions{DisableIdempotence: true})
	seen := make(map[int]int)
	for _, vals := range stored {
		for _, v := range vals {
			seen[v]++
		}
	}
	dups := 0
	for i := 0; i < n; i++ {
		switch seen[i] {
		case 0:
			t.Fatalf("record %d lost", i)
		case 1:
		default:
			dups++
		}
	}
	if dups == 0 {
		t.Fatalf("no record stored twice after 50 lost answers")
	}
	t.Logf("%d of %d records stored twice", dups, n)
}

// A partition that lost the producer's state (here: the producer expired
// between two of its batches) answers the next batch UNKNOWN_PRODUCER_ID;
// the producer starts the partition over in a new epoch and the record is
// stored once.
func TestIdempotentProducerResetsAfterLostState(t *testing.T) {
	dir := t.TempDir()
	cfg := serverConfig(dir, "127.0.0.1:0")
	cfg.Storage.ProducerIdleExpiry = time.Hour
	cfg.Storage.RetentionCheckInterval = 10 * time.Millisecond
	srv := startConfigured(t, cfg)
	createTopic(t, srv.Addr(), "reset", 1, nil)
	p := newProducer(t, srv.Addr(), client.ProducerOptions{RetryBackoff: time.Millisecond})
	ctx := testCtx(t)
	old := time.Now().Add(-2 * time.Hour) // older than the expiry: forgotten at the next check
	send := func(i int) client.Result {
		t.Helper()
		res, err := p.SendSync(ctx, client.Record{Topic: "reset", Value: value(i), Timestamp: old})
		if err != nil {
			t.Fatalf("record %d: %v (stats %+v)", i, err, p.Stats())
		}
		return res
	}
	send(0)
	// The server's first producer id (node 1, counter 0): wait until the
	// partition forgot it (a batch past its sequence is then unknown, not
	// out of order).
	c, err := client.Dial(ctx, srv.Addr(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const pid = 1 << 40
	deadline := time.Now().Add(30 * time.Second)
	for {
		var b proto.BatchBuilder
		b.Reset(nil)
		b.SetProducer(pid, 0, 5)
		b.Append(old.UnixMilli(), nil, []byte("probe"), nil)
		resp, err := c.Produce(ctx, &proto.ProduceRequest{Acks: proto.AcksLeader, Topics: []proto.ProduceTopic{{
			Name: []byte("reset"), Partitions: []proto.ProducePartition{{Records: b.Finish()}}}}})
		if err != nil {
			t.Fatal(err)
		}
		code := resp.Topics[0].Partitions[0].Error
		if code == proto.UnknownProducerID {
			break
		}
		if code != proto.OutOfOrderSequence || time.Now().After(deadline) {
			t.Fatalf("probe: %v", code)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronization
	}
	for i := 1; i < 4; i++ {
		if res := send(i); res.Offset != uint64(i) {
			t.Fatalf("record %d at offset %d", i, res.Offset)
		}
	}
	if end := logEnds(t, srv.Addr(), "reset", 1); end != 4 {
		t.Fatalf("log end %d, want 4", end)
	}
}

// startConfigured starts a server with cfg for the test.
func startConfigured(t *testing.T, cfg config.Config) *reactor.Server {
	t.Helper()
	srv, err := reactor.NewServer(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return srv
}

// Pipelined requests of a partition reach the server in sequence order:
// with five in flight and no fault, no batch is refused as out of order
// (a request queued on the connection before an earlier one was, and was
// retried).
func TestIdempotentProducerPipelinesInOrder(t *testing.T) {
	srv := newTestServer(t)
	createTopic(t, srv.addr, "pipe", 1, nil)
	p := newProducer(t, srv.addr, client.ProducerOptions{Partitioner: client.ManualPartitioner{},
		BatchBytes: 4 << 10, MaxBufferedBytes: 1 << 20})
	ctx := testCtx(t)
	const n = 10_000
	val := make([]byte, 200)
	for i := 0; i < n; i++ {
		if err := p.Send(ctx, client.Record{Topic: "pipe", Value: val}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if st.Retries != 0 || st.Failed != 0 || st.Records != n {
		t.Fatalf("stats %+v: want %d records, no retry", st, n)
	}
	if end := logEnds(t, srv.addr, "pipe", 1); end != n {
		t.Fatalf("log end %d, want %d", end, n)
	}
}
