package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

// KeyPartition is part of ringmq's contract: these values must never
// change, or keys move between partitions when applications upgrade.
func TestKeyPartitionPinned(t *testing.T) {
	cases := []struct {
		key         string
		n           uint32
		want, wantN uint32 // partition among n, and among 12
	}{
		{"", 3, 1, 1},
		{"a", 8, 4, 4},
		{"user-1", 3, 1, 4},
		{"user-2", 8, 5, 1},
		{"order-42", 3, 2, 8},
		{"ringmq", 8, 1, 5},
		{"\x00\xff", 8, 0, 4},
	}
	for _, c := range cases {
		if got := client.KeyPartition([]byte(c.key), c.n); got != c.want {
			t.Errorf("KeyPartition(%q, %d) = %d, pinned %d", c.key, c.n, got, c.want)
		}
		if got := client.KeyPartition([]byte(c.key), 12); got != c.wantN {
			t.Errorf("KeyPartition(%q, 12) = %d, pinned %d", c.key, got, c.wantN)
		}
		h := fnv.New32a() // the documented definition, independently
		h.Write([]byte(c.key))
		if got := client.KeyPartition([]byte(c.key), 1000003); got != h.Sum32()%1000003 {
			t.Errorf("KeyPartition(%q) is not FNV-1a 32 mod n", c.key)
		}
	}
	var hp client.HashPartitioner
	if got := hp.Partition(&client.Record{Key: []byte("order-42")}, 3); got != 2 {
		t.Errorf("HashPartitioner(order-42, 3) = %d, want 2", got)
	}
	if got := hp.Partition(&client.Record{Key: nil}, 3); got != client.Sticky {
		t.Errorf("HashPartitioner(nil key) = %d, want Sticky", got)
	}
}

// Records with keys land on KeyPartition through the server, and every
// result's offset is where the consumer finds the record.
func TestProducerKeyedRecords(t *testing.T) {
	srv := newTestServer(t)
	createTopic(t, srv.addr, "keyed", 8, nil)
	p := newProducer(t, srv.addr, client.ProducerOptions{Linger: 5 * time.Millisecond})
	ctx := testCtx(t)
	futures := make([]*client.Future, 200)
	for i := range futures {
		key := fmt.Appendf(nil, "user-%d", i%17)
		futures[i] = p.Produce(ctx, client.Record{Topic: "keyed", Key: key, Value: value(i)})
	}
	where := make(map[[2]uint64]int) // (partition, offset) → record
	for i, f := range futures {
		res := f.Wait()
		key := fmt.Appendf(nil, "user-%d", i%17)
		if res.Err != nil || res.Partition != client.KeyPartition(key, 8) {
			t.Fatalf("record %d: %+v, want partition %d", i, res, client.KeyPartition(key, 8))
		}
		where[[2]uint64{uint64(res.Partition), res.Offset}] = i
	}
	c := newConsumer(t, srv.addr, client.ConsumerOptions{})
	if err := c.Assign(ctx, "keyed"); err != nil {
		t.Fatal(err)
	}
	for _, r := range consumeN(t, c, len(futures)) {
		i, ok := where[[2]uint64{uint64(r.Partition), r.Offset}]
		if !ok || !bytes.Equal(r.Value, value(i)) {
			t.Fatalf("consumed %s/%d@%d = %q; producer reported record %d there (%v)", r.Topic, r.Partition, r.Offset, r.Value, i, ok)
		}
	}
}

// Records sent quickly share batches and requests; a partial batch goes
// out once Linger has passed, without Flush.
func TestProducerBatchingAndLinger(t *testing.T) {
	srv := newTestServer(t)
	createTopic(t, srv.addr, "batching", 1, nil)
	p := newProducer(t, srv.addr, client.ProducerOptions{BatchBytes: 16 << 10, Linger: time.Second, MaxInFlight: 1})
	ctx := testCtx(t)
	res := newResults()
	const n = 1000
	for i := 0; i < n; i++ {
		if err := p.Send(ctx, client.Record{Topic: "batching", Value: value(i)}, res.callback(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, dup := res.snapshot()
	if len(got) != n || len(dup) != 0 {
		t.Fatalf("%d results for %d records, duplicates %v", len(got), n, dup)
	}
	for i := 0; i < n; i++ {
		if r := got[i]; r.Err != nil || r.Offset != uint64(i) {
			t.Fatalf("record %d: %+v, want offset %d", i, r, i) // one partition, one producer: in order
		}
	}
	batches := fetchBatches(t, srv.addr, "batching", 0)
	st := p.Stats()
	// ~45 KB of records in 16 KiB batches: 3 full batches and the flushed rest.
	if len(batches) > 5 || st.Requests > 5 || st.Batches != uint64(len(batches)) {
		t.Errorf("%d records went in %d batches, %d requests (stats %+v); want ≤ 5 of each", n, len(batches), st.Requests, st)
	}
	for _, h := range batches[:len(batches)-1] {
		if h.RecordCount < 200 {
			t.Errorf("a full batch holds %d records, want ≥ 200", h.RecordCount)
		}
	}

	// Linger: three records, no Flush; they arrive together after Linger.
	lp := newProducer(t, srv.addr, client.ProducerOptions{Linger: 300 * time.Millisecond})
	start := time.Now()
	var fs []*client.Future
	for i := 0; i < 3; i++ {
		fs = append(fs, lp.Produce(ctx, client.Record{Topic: "batching", Value: value(n + i)}))
	}
	for i, f := range fs {
		if r := f.Wait(); r.Err != nil || r.Offset != uint64(n+i) {
			t.Fatalf("lingered record %d: %+v", i, r)
		}
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Errorf("a partial batch went out after %v, before Linger", waited)
	}
	batches = fetchBatches(t, srv.addr, "batching", 0)
	if last := batches[len(batches)-1]; last.RecordCount != 3 || last.BaseOffset != n {
		t.Errorf("lingered records stored as %+v, want one batch of 3 at %d", last, n)
	}
}

// Keyless records stick to one partition for a whole batch, then move on.
func TestProducerStickyPartitions(t *testing.T) {
	srv := newTestServer(t)
	createTopic(t, srv.addr, "sticky", 4, nil)
	p := newProducer(t, srv.addr, client.ProducerOptions{BatchBytes: 4 << 10, Linger: time.Minute, MaxInFlight: 1})
	ctx := testCtx(t)
	res := newResults()
	const n = 400
	val := bytes.Repeat([]byte("x"), 100)
	for i := 0; i < n; i++ {
		if err := p.Send(ctx, client.Record{Topic: "sticky", Value: val}, res.callback(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := res.snapshot()
	runs, used := 0, map[uint32]bool{}
	for i := 0; i < n; i++ {
		if got[i].Err != nil {
			t.Fatalf("record %d: %v", i, got[i].Err)
		}
		if i == 0 || got[i].Partition != got[i-1].Partition {
			runs++
		}
		used[got[i].Partition] = true
	}
	// 400 × ~130 bytes in 4 KiB batches: ~13 batches, one run each.
	if runs > 16 || len(used) != 4 {
		t.Errorf("%d runs over partitions %v; want ≤ 16 runs over all 4", runs, used)
	}
	for part := range uint32(4) {
		bs := fetchBatches(t, srv.addr, "sticky", part)
		for _, h := range bs[:max(len(bs)-1, 0)] {
			if h.RecordCount < 20 {
				t.Errorf("partition %d has a batch of %d records, want whole batches", part, h.RecordCount)
			}
		}
	}
}

// One compressed round trip per codec through the server: the stored
// batches carry the codec, and the consumer returns every field intact.
func TestProducerCompressionRoundTrip(t *testing.T) {
	srv := newTestServer(t)
	ctx := testCtx(t)
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	for _, codec := range []proto.Codec{proto.CodecNone, proto.CodecGzip, proto.CodecSnappy, proto.CodecLZ4, proto.CodecZstd} {
		topic := "compressed-" + codec.String()
		createTopic(t, srv.addr, topic, 1, nil)
		rng := rand.New(rand.NewPCG(seed, uint64(codec)))
		p := newProducer(t, srv.addr, client.ProducerOptions{Compression: codec, Linger: 10 * time.Millisecond})
		var sent []client.Record
		for i := 0; i < 300; i++ {
			rec := client.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", rng.IntN(10)),
				Value:     bytes.Repeat(fmt.Appendf(nil, "payload %d ", rng.IntN(5)), 1+rng.IntN(40)),
				Timestamp: time.UnixMilli(1_700_000_000_000 + int64(i)),
				Headers:   []client.Header{{Key: "i", Value: fmt.Appendf(nil, "%d", i)}}}
			if i%10 == 0 {
				rec.Key, rec.Headers = nil, nil
			}
			sent = append(sent, rec)
			if err := p.Send(ctx, rec, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
		for _, h := range fetchBatches(t, srv.addr, topic, 0) {
			if h.Codec() != codec {
				t.Errorf("%v: stored batch has codec %v", codec, h.Codec())
			}
		}
		c := newConsumer(t, srv.addr, client.ConsumerOptions{})
		if err := c.Assign(ctx, topic); err != nil {
			t.Fatal(err)
		}
		for i, r := range consumeN(t, c, len(sent)) {
			checkRecord(t, fmt.Sprintf("%v record %d", codec, i), r, sent[i], uint64(i))
		}
	}
}

func checkRecord(t *testing.T, what string, got, want client.Record, offset uint64) {
	t.Helper()
	ok := got.Topic == want.Topic && got.Offset == offset && got.Timestamp.Equal(want.Timestamp) &&
		bytes.Equal(got.Key, want.Key) && (got.Key == nil) == (want.Key == nil) && bytes.Equal(got.Value, want.Value) &&
		len(got.Headers) == len(want.Headers)
	for i := 0; ok && i < len(got.Headers); i++ {
		ok = got.Headers[i].Key == want.Headers[i].Key && bytes.Equal(got.Headers[i].Value, want.Headers[i].Value)
	}
	if !ok {
		t.Fatalf("%s:\n got %+v\nwant %+v at offset %d", what, got, want, offset)
	}
}

// ManualPartitioner places records where they say; bad partitions and
// unknown topics are refused by Send.
func TestProducerManualPartitionAndRefusals(t *testing.T) {
	srv := newTestServer(t)
	createTopic(t, srv.addr, "manual", 3, nil)
	p := newProducer(t, srv.addr, client.ProducerOptions{Partitioner: client.ManualPartitioner{}})
	ctx := testCtx(t)
	res, err := p.SendSync(ctx, client.Record{Topic: "manual", Partition: 2, Value: []byte("v")})
	if err != nil || res.Partition != 2 || res.Offset != 0 {
		t.Fatalf("SendSync to partition 2: %+v, %v", res, err)
	}
	if err := p.Send(ctx, client.Record{Topic: "manual", Partition: 3}, nil); !errors.Is(err, proto.UnknownPartition) {
		t.Errorf("Send to partition 3 of 3: %v, want UnknownPartition", err)
	}
	if err := p.Send(ctx, client.Record{Topic: "no-such-topic"}, nil); !errors.Is(err, proto.UnknownTopic) {
		t.Errorf("Send to an unknown topic: %v, want UnknownTopic", err)
	}
	big := client.Record{Topic: "manual", Value: make([]byte, 2<<20)}
	if err := p.Send(ctx, big, nil); !errors.Is(err, client.ErrRecordTooLarge) {
		t.Errorf("Send of 2 MiB with MaxRequestBytes 1 MiB: %v, want ErrRecordTooLarge", err)
	}
	// A deleted topic: the server refuses the cached layout, then Send
	// finds out from fresh metadata.
	if err := newAdmin(t, srv.addr).DeleteTopic(ctx, "manual"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.SendSync(ctx, client.Record{Topic: "manual", Partition: 1}); !errors.Is(err, proto.UnknownTopic) {
		t.Errorf("SendSync to a deleted topic: %v, want UnknownTopic", err)
	}
	if err := p.Send(ctx, client.Record{Topic: "manual", Partition: 1}, nil); !errors.Is(err, proto.UnknownTopic) {
		t.Errorf("Send to a deleted topic: %v, want UnknownTopic", err)
	}
}

// Concurrent senders: every record gets one result, and the records of one
// key, sent in order by one goroutine, are stored in that order.
func TestProducerConcurrentSendersKeepKeyOrder(t *testing.T) {
	srv := newTestServer(t)
	createTopic(t, srv.addr, "concurrent", 3, nil)
	p := newProducer(t, srv.addr, client.ProducerOptions{BatchBytes: 1 << 10, MaxInFlight: 3})
	ctx := testCtx(t)
	const senders, each = 4, 400
	futures := make([][]*client.Future, senders)
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				key := fmt.Appendf(nil, "sender-%d-key-%d", g, i%5)
				futures[g] = append(futures[g], p.Produce(ctx, client.Record{Topic: "concurrent", Key: key, Value: value(i)}))
			}
		}()
	}
	wg.Wait()
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	stored := make(map[[2]uint64]bool)
	for g := range senders {
		last := make(map[int]uint64) // key → last offset
		for i, f := range futures[g] {
			r := f.Wait()
			if r.Err != nil {
				t.Fatalf("sender %d record %d: %v", g, i, r.Err)
			}
			at := [2]uint64{uint64(r.Partition), r.Offset}
			if stored[at] {
				t.Fatalf("two records reported at %v", at)
			}
			stored[at] = true
			if prev, ok := last[i%5]; ok && r.Offset <= prev {
				t.Fatalf("sender %d key %d: record %d at offset %d, after one at %d", g, i%5, i, r.Offset, prev)
			}
			last[i%5] = r.Offset
		}
	}
}

// With acks none every record still gets a result, with no offset.
func TestProducerAcksNone(t *testing.T) {
	srv := newTestServer(t)
	createTopic(t, srv.addr, "fire", 1, nil)
	p := newProducer(t, srv.addr, client.ProducerOptions{Acks: client.AcksNone})
	ctx := testCtx(t)
	res := newResults()
	for i := 0; i < 100; i++ {
		if err := p.Send(ctx, client.Record{Topic: "fire", Value: value(i)}, res.callback(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := res.snapshot()
	for i := 0; i < 100; i++ {
		if r, ok := got[i]; !ok || r.Err != nil || r.Offset != client.NoOffset {
			t.Fatalf("record %d: %+v (present %v)", i, r, ok)
		}
	}
	c := newConsumer(t, srv.addr, client.ConsumerOptions{})
	if err := c.Assign(ctx, "fire"); err != nil {
		t.Fatal(err)
	}
	for i, r := range consumeN(t, c, 100) {
		if !bytes.Equal(r.Value, value(i)) {
			t.Fatalf("record %d = %q", i, r.Value)
		}
	}
}

// The server stops and comes back on the same address and data directory
// while records flow: every record is acknowledged, and every acknowledged
// record is there after the restart (at least once: duplicates allowed).
func TestProducerSurvivesRestart(t *testing.T) {
	srv := newTestServer(t)
	createTopic(t, srv.addr, "restart", 2, map[string]string{proto.ConfigFlush: proto.FlushSync})
	p := newProducer(t, srv.addr, client.ProducerOptions{
		Linger: 2 * time.Millisecond, BatchBytes: 2 << 10, MaxInFlight: 2,
		RetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: 100 * time.Millisecond, DeliveryTimeout: 30 * time.Second,
	})
	ctx := testCtx(t)
	res := newResults()
	const n = 3000
	restarted := make(chan struct{})
	for i := 0; i < n; i++ {
		if i == n/3 {
			go func() { // restart while records are in flight
				srv.restart()
				close(restarted)
			}()
		}
		if err := p.Send(ctx, client.Record{Topic: "restart", Key: fmt.Appendf(nil, "%d", i), Value: value(i)}, res.callback(i)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if i == 2*n/3 {
			<-restarted // the last third goes to the new server
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, dup := res.snapshot()
	if len(got) != n || len(dup) != 0 {
		t.Fatalf("%d results for %d records; records with two results: %v", len(got), n, dup)
	}
	for i := 0; i < n; i++ {
		if got[i].Err != nil {
			t.Fatalf("record %d: %v (stats %+v)", i, got[i].Err, p.Stats())
		}
	}
	t.Logf("stats %+v", p.Stats())
	// A consumer reads everything back, across one more restart.
	c := newConsumer(t, srv.addr, client.ConsumerOptions{PartitionMaxBytes: 4 << 10, RetryBackoff: 10 * time.Millisecond})
	if err := c.Assign(ctx, "restart"); err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]bool)
	for total, polls := 0, 0; len(seen) < n; polls++ {
		if polls == 3 {
			srv.restart()
		}
		recs, err := c.Poll(ctx)
		if err != nil {
			t.Fatalf("poll after %d distinct of %d (%d read): %v", len(seen), n, total, err)
		}
		for _, r := range recs {
			seen[string(r.Value)] = true
			total++
		}
	}
	for i := 0; i < n; i++ {
		if !seen[string(value(i))] {
			t.Fatalf("acked record %d missing", i)
		}
	}
}

// With the server gone, Close gives every pending record an error result,
// exactly once, and later Sends are refused.
func TestProducerCloseReportsEveryRecord(t *testing.T) {
	srv := newTestServer(t)
	createTopic(t, srv.addr, "gone", 2, nil)
	p := newProducer(t, srv.addr, client.ProducerOptions{RetryBackoff: 5 * time.Millisecond, DeliveryTimeout: time.Minute})
	ctx := testCtx(t)
	if _, err := p.SendSync(ctx, client.Record{Topic: "gone", Value: []byte("first")}); err != nil {
		t.Fatal(err)
	}
	srv.stop()
	res := newResults()
	const n = 500
	for i := 0; i < n; i++ {
		if err := p.Send(ctx, client.Record{Topic: "gone", Value: value(i)}, res.callback(i)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := p.Close(cctx); !errors.Is(err, client.ErrProducerClosed) {
		t.Errorf("Close with the server gone: %v, want ErrProducerClosed", err)
	}
	got, dup := res.snapshot() // Close returned: every result is in
	if len(got) != n || len(dup) != 0 {
		t.Fatalf("%d results for %d records; duplicates %v", len(got), n, dup)
	}
	for i := 0; i < n; i++ {
		if !errors.Is(got[i].Err, client.ErrProducerClosed) {
			t.Fatalf("record %d: %+v, want ErrProducerClosed", i, got[i])
		}
	}
	if err := p.Send(ctx, client.Record{Topic: "gone"}, nil); !errors.Is(err, client.ErrProducerClosed) {
		t.Errorf("Send after Close: %v", err)
	}
}

// With the server gone and a short DeliveryTimeout, Flush returns once
// every record has failed with ErrDeliveryTimeout.
func TestProducerDeliveryTimeout(t *testing.T) {
	srv := newTestServer(t)
	createTopic(t, srv.addr, "timeout", 1, nil)
	p := newProducer(t, srv.addr, client.ProducerOptions{RetryBackoff: 5 * time.Millisecond, DeliveryTimeout: 200 * time.Millisecond})
	ctx := testCtx(t)
	if _, err := p.SendSync(ctx, client.Record{Topic: "timeout", Value: []byte("first")}); err != nil {
		t.Fatal(err)
	}
	srv.stop()
	futures := make([]*client.Future, 50)
	for i := range futures {
		futures[i] = p.Produce(ctx, client.Record{Topic: "timeout", Value: value(i)})
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i, f := range futures {
		select {
		case <-f.Done():
		default:
			t.Fatalf("record %d has no result after Flush", i)
		}
		if r := f.Wait(); !errors.Is(r.Err, client.ErrDeliveryTimeout) || !errors.Is(r.Err, client.ErrConnectionLost) {
			t.Fatalf("record %d: %v, want ErrDeliveryTimeout after a lost connection", i, r.Err)
		}
	}
}
