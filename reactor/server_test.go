package reactor

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

func testConfig(t testing.TB, dir string) config.Config {
	cfg := config.Default()
	cfg.Server.Listen = "127.0.0.1:0"
	cfg.Server.MetricsListen = ""
	cfg.Storage.DataDir = dir
	cfg.Storage.SegmentBytes = 8 << 20
	cfg.Storage.FlushInterval = 50 * time.Millisecond
	cfg.Reactor.Cores = 2
	cfg.Reactor.RecvBuffers = 64
	cfg.Reactor.PinThreads = false
	return cfg
}

func startServer(t testing.TB, cfg config.Config) *Server {
	t.Helper()
	srv, err := NewServer(cfg, testLogger())
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	startServerWith(t, srv)
	return srv
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.Default()
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startServerWith starts srv, made by NewServer, and shuts it down when
// the test ends.
func startServerWith(t testing.TB, srv *Server) {
	t.Helper()
	if err := srv.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
}

// recordValue encodes (producer, seq) so a consumer can check exactly-once
// and per-producer order.
func recordValue(dst []byte, producer, seq uint32) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, producer)
	dst = binary.LittleEndian.AppendUint32(dst, seq)
	return append(dst, "ringmq-payload-0123456789"...)
}

// produceRecords sends count records for producer to the partitions of
// topic, round robin, perBatch records per batch, and returns how many went
// to each partition.
func produceRecords(t testing.TB, c *client.Conn, topic string, partitions, producer, count, perBatch uint32, acks int8) {
	t.Helper()
	var b proto.BatchBuilder
	var val []byte
	seqs := make([]uint32, partitions)
	for sent := uint32(0); sent < count; {
		p := (producer + sent/perBatch) % partitions
		n := min(perBatch, count-sent)
		b.Reset(nil)
		for i := uint32(0); i < n; i++ {
			val = recordValue(val[:0], producer, seqs[p])
			seqs[p]++
			b.Append(time.Now().UnixMilli(), nil, val, nil)
		}
		req := &proto.ProduceRequest{Acks: acks, TimeoutMs: 30000, Topics: []proto.ProduceTopic{{
			Name: []byte(topic), Partitions: []proto.ProducePartition{{Partition: p, Records: b.Finish()}}}}}
		resp, err := c.Produce(ringtest.Ctx(t), req)
		if err != nil {
			t.Fatalf("produce: %v", err)
		}
		if acks != proto.AcksNone {
			if e := resp.Topics[0].Partitions[0].Error; e != proto.None {
				t.Fatalf("produce to %s/%d: %v", topic, p, e)
			}
		}
		sent += n
	}
}

// readAll fetches every record of topic from the earliest offset and checks
// offsets are contiguous and CRCs valid; it returns the values per partition.
func readAll(t testing.TB, c *client.Conn, topic string, partitions uint32) [][][]byte {
	t.Helper()
	out := make([][][]byte, partitions)
	for p := range out {
		out[p] = ringtest.ReadPartition(t, c, topic, uint32(p))
	}
	return out
}

// checkExactlyOnce verifies every (producer, seq) of every partition
// appears once and in order per producer.
func checkExactlyOnce(t testing.TB, parts [][][]byte, producers uint32, wantTotal int) {
	t.Helper()
	total := 0
	for p, vals := range parts {
		next := make([]uint32, producers)
		for i, v := range vals {
			prod, seq := binary.LittleEndian.Uint32(v), binary.LittleEndian.Uint32(v[4:])
			if prod >= producers || seq != next[prod] {
				t.Fatalf("partition %d record %d: producer %d seq %d, want seq %d", p, i, prod, seq, next[prod])
			}
			next[prod]++
		}
		total += len(vals)
	}
	if total != wantTotal {
		t.Fatalf("read %d records, want %d", total, wantTotal)
	}
}

func TestProduceFetchEndToEnd(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "events", 8)
	ringtest.CreateTopic(t, c, "durable", 4, "flush", "sync")

	const producers, perProducer = 4, 250_000
	if testing.Short() {
		t.Skip("short")
	}
	var wg sync.WaitGroup
	for i := uint32(0); i < producers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pc := ringtest.Dial(t, srv.Addr(), client.Options{})
			produceRecords(t, pc, "events", 8, i, perProducer, 1000, proto.AcksLeader)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		pc := ringtest.Dial(t, srv.Addr(), client.Options{})
		produceRecords(t, pc, "durable", 4, 0, 100_000, 100, proto.AcksAll)
	}()
	wg.Wait()
	if t.Failed() {
		return
	}
	checkExactlyOnce(t, readAll(t, c, "events", 8), producers, producers*perProducer)
	checkExactlyOnce(t, readAll(t, c, "durable", 4), 1, 100_000)
}

func TestSeekByTimestamp(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "ts", 1)
	base := int64(1_700_000_000_000)
	for i := int64(0); i < 50; i++ {
		var b proto.BatchBuilder
		b.Reset(nil)
		b.Append(base+i*1000, nil, []byte(fmt.Sprint(i)), nil)
		b.Append(base+i*1000+500, nil, []byte(fmt.Sprint(i)), nil)
		_, err := c.Produce(ringtest.Ctx(t), &proto.ProduceRequest{Acks: 1, Topics: []proto.ProduceTopic{{Name: []byte("ts"),
			Partitions: []proto.ProducePartition{{Records: b.Finish()}}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		ts   int64
		want uint64
	}{
		{base - 1, 0}, {base, 0}, {base + 1, 1}, {base + 500, 1}, {base + 501, 2},
		{base + 10_000, 20}, {base + 49_500, 99}, {base + 49_501, 100},
	}
	for _, tc := range cases {
		if got := ringtest.ListOffset(t, c, "ts", 0, tc.ts); got != tc.want {
			t.Errorf("seek %d: offset %d, want %d", tc.ts-base, got, tc.want)
		}
	}
	if got := ringtest.ListOffset(t, c, "ts", 0, -2); got != 0 {
		t.Errorf("earliest = %d", got)
	}
	if got := ringtest.ListOffset(t, c, "ts", 0, -1); got != 100 {
		t.Errorf("latest = %d", got)
	}
}

func TestLongPollWakesOnProduce(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "lp", 2)
	for p := uint32(0); p < 2; p++ {
		start := time.Now()
		done := make(chan *proto.FetchResponse, 1)
		go func() {
			fc := ringtest.Dial(t, srv.Addr(), client.Options{})
			resp, err := fc.Fetch(ringtest.Ctx(t), &proto.FetchRequest{MaxWaitMs: 20_000, MinBytes: 1, MaxBytes: 1 << 20,
				Topics: []proto.FetchTopic{{Name: []byte("lp"), Partitions: []proto.FetchPartition{{Partition: p, PartitionMaxBytes: 1 << 20}}}}})
			if err != nil {
				t.Error(err)
			}
			done <- resp
		}()
		produceRecords(t, c, "lp", 1, 7, 1, 1, proto.AcksLeader) // lands in partition 0
		if p == 1 {
			produceOne(t, c, "lp", 1, []byte("x"))
		}
		resp := <-done
		if resp == nil {
			return
		}
		if el := time.Since(start); el > 10*time.Second {
			t.Fatalf("partition %d: long poll returned after %v", p, el)
		}
		if len(resp.Topics[0].Partitions[0].Records) == 0 {
			t.Fatalf("partition %d: long poll returned no records", p)
		}
	}
}

func produceOne(t testing.TB, c *client.Conn, topic string, p uint32, v []byte) uint64 {
	t.Helper()
	return produceOneAcks(t, c, topic, p, v, proto.AcksLeader)
}

// produceOneAcks produces v to topic/p with the given acks and returns its
// offset.
func produceOneAcks(t testing.TB, c *client.Conn, topic string, p uint32, v []byte, acks int8) uint64 {
	t.Helper()
	var b proto.BatchBuilder
	b.Reset(nil)
	b.Append(time.Now().UnixMilli(), nil, v, nil)
	resp, err := c.Produce(ringtest.Ctx(t), &proto.ProduceRequest{Acks: acks, Topics: []proto.ProduceTopic{{Name: []byte(topic),
		Partitions: []proto.ProducePartition{{Partition: p, Records: b.Finish()}}}}})
	if err != nil {
		t.Fatal(err)
	}
	r := resp.Topics[0].Partitions[0]
	if r.Error != proto.None {
		t.Fatalf("produce %s/%d: %v", topic, p, r.Error)
	}
	return r.BaseOffset
}

func TestForwardingAndShardHandoff(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "fw", 8)
	md, err := c.Metadata(ringtest.Ctx(t), &proto.MetadataRequest{Topics: []string{"fw"}})
	if err != nil {
		t.Fatal(err)
	}
	shards := map[uint16]bool{}
	for _, p := range md.Topics[0].Partitions {
		shards[p.Shard] = true
	}
	if len(shards) != 2 {
		t.Fatalf("8 partitions on %d shards, want 2", len(shards))
	}
	// One connection, whatever its reactor, reaches every partition: half
	// of them are owned by the other reactor and forwarded.
	for p := uint32(0); p < 8; p++ {
		if off := produceOne(t, c, "fw", p, []byte("v")); off != 0 {
			t.Fatalf("partition %d: first offset %d", p, off)
		}
	}
	got := readAll(t, c, "fw", 8)
	for p, vals := range got {
		if len(vals) != 1 || string(vals[0]) != "v" {
			t.Fatalf("partition %d: %q", p, vals)
		}
	}
	for shard := uint16(0); shard < 2; shard++ {
		hc := ringtest.Dial(t, srv.Addr(), client.Options{RequestShard: true, Shard: shard})
		if h := hc.Hello(); h.Shard != shard {
			t.Fatalf("asked for shard %d, served by %d", shard, h.Shard)
		}
		if off := produceOne(t, hc, "fw", 0, []byte("w")); off != uint64(1+shard) {
			t.Fatalf("after hand-off to %d: offset %d", shard, off)
		}
	}
}
