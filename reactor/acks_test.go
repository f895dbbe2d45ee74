package reactor

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

// produceAsync produces v to topic/0 with acks and reports the result on
// the returned channel (the test goroutine keeps control while it waits).
func produceAsync(c *client.Conn, topic string, v []byte, acks int8) <-chan error {
	done := make(chan error, 1)
	go func() {
		var b proto.BatchBuilder
		b.Reset(nil)
		b.Append(time.Now().UnixMilli(), nil, v, nil)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		resp, err := c.Produce(ctx, &proto.ProduceRequest{Acks: acks, Topics: []proto.ProduceTopic{{Name: []byte(topic),
			Partitions: []proto.ProducePartition{{Partition: 0, Records: b.Finish()}}}}})
		if err == nil && resp.Topics[0].Partitions[0].Error != proto.None {
			err = resp.Topics[0].Partitions[0].Error
		}
		done <- err
	}()
	return done
}

// fetchBelowHW fetches topic/0 from off with the given wait and checks that
// every record it returns lies below the high watermark it reports. It
// returns the records' values and that high watermark.
func fetchBelowHW(t *testing.T, c *client.Conn, topic string, off uint64, minBytes, maxWaitMs uint32) ([]string, uint64) {
	t.Helper()
	got, hw, err := tryFetchBelowHW(c, topic, off, minBytes, maxWaitMs)
	if err != nil {
		t.Fatal(err)
	}
	return got, hw
}

// tryFetchBelowHW is fetchBelowHW for another goroutine than the test's.
func tryFetchBelowHW(c *client.Conn, topic string, off uint64, minBytes, maxWaitMs uint32) ([]string, uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := c.Fetch(ctx, &proto.FetchRequest{MaxWaitMs: maxWaitMs, MinBytes: minBytes, MaxBytes: 1 << 20,
		Topics: []proto.FetchTopic{{Name: []byte(topic),
			Partitions: []proto.FetchPartition{{Partition: 0, Offset: off, PartitionMaxBytes: 1 << 20}}}}})
	if err != nil {
		return nil, 0, fmt.Errorf("fetch %s@%d: %w", topic, off, err)
	}
	fp := resp.Topics[0].Partitions[0]
	if fp.Error != proto.None {
		return nil, 0, fmt.Errorf("fetch %s@%d: %w", topic, off, fp.Error)
	}
	var got []string
	next := off
	for b := fp.Records; len(b) > 0; {
		h, rest, err := proto.ValidateBatch(b)
		if err != nil {
			return nil, 0, fmt.Errorf("fetch %s@%d: corrupt batch: %w", topic, off, err)
		}
		if last := h.NextOffset() - 1; last >= fp.HighWatermark {
			return nil, 0, fmt.Errorf("fetch %s@%d returned offsets up to %d, at or above the high watermark %d",
				topic, off, last, fp.HighWatermark)
		}
		it, err := proto.NewRecordIter(b[:h.Size()])
		if err != nil {
			return nil, 0, err
		}
		for it.Next() {
			if rec := it.Record(); rec.Offset >= next {
				got = append(got, string(rec.Value))
				next = rec.Offset + 1
			}
		}
		if err := it.Err(); err != nil {
			return nil, 0, err
		}
		b = rest
	}
	return got, fp.HighWatermark, nil
}

func describeLogEnd(t *testing.T, c *client.Conn, topic string) uint64 {
	t.Helper()
	resp, err := c.DescribeTopic(ringtest.Ctx(t), &proto.DescribeTopicRequest{Name: topic})
	if err != nil {
		t.Fatalf("describe %s: %v", topic, err)
	}
	return resp.Partitions[0].LogEnd
}

// On a flush=sync topic, with the fdatasync completions held back (a slow
// disk): acks=1 is answered once the append is visible, acks=all only
// after the fdatasync; a fetch meanwhile returns nothing the fdatasync has
// not covered (below the high watermark only) and reports the real high
// watermark; a long poll waiting for more is woken by the fdatasync, not
// by the append.
func TestAcksByLevelOnSyncTopic(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "dur", 1, proto.ConfigFlush, proto.FlushSync)
	produceOneAcks(t, c, "dur", 0, []byte("durable"), proto.AcksAll)

	srv.holdFsyncs.Store(true)
	released := false
	defer func() {
		if !released {
			srv.holdFsyncs.Store(false)
		}
	}()
	select {
	case err := <-produceAsync(c, "dur", []byte("leader"), proto.AcksLeader):
		if err != nil {
			t.Fatalf("acks=1: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("acks=1 on a flush=sync topic waited for the fdatasync")
	}
	all := produceAsync(c, "dur", []byte("all"), proto.AcksAll)
	waitFor(t, "the acks=all append to be visible", 20*time.Second, func() bool { return describeLogEnd(t, c, "dur") == 3 })

	poll := make(chan []string, 1)
	pollErr := make(chan error, 1)
	pollConn := ringtest.Dial(t, srv.Addr(), client.Options{})
	go func() { // a long poll for anything past offset 1
		got, _, err := tryFetchBelowHW(pollConn, "dur", 1, 1, 60_000)
		if err != nil {
			pollErr <- err
			return
		}
		poll <- got
	}()
	waitFor(t, "the long poll to park", 20*time.Second, func() bool { return parkedCount(srv) == 1 })

	got, hw := fetchBelowHW(t, c, "dur", 0, 0, 0)
	if fmt.Sprint(got) != "[durable]" || hw != 1 {
		t.Fatalf("fetch while the fdatasync is held: %q, high watermark %d; want [durable], 1", got, hw)
	}
	if latest := ringtest.ListOffset(t, c, "dur", 0, -1); latest != 1 {
		t.Fatalf("latest offset %d while the fdatasync is held, want the high watermark 1", latest)
	}
	// Nothing will answer acks=all or wake the poll while the completion
	// is held: a short look is enough to catch one that does.
	select {
	case err := <-all:
		t.Fatalf("acks=all answered (%v) before its fdatasync completed", err)
	case got := <-poll:
		t.Fatalf("long poll answered %q before the fdatasync completed", got)
	case err := <-pollErr:
		t.Fatal(err)
	case <-time.After(300 * time.Millisecond):
	}

	srv.holdFsyncs.Store(false)
	released = true
	select {
	case err := <-all:
		if err != nil {
			t.Fatalf("acks=all: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("acks=all not answered after the fdatasync completed")
	}
	select {
	case got := <-poll:
		if len(got) == 0 || got[0] != "leader" {
			t.Fatalf("long poll woken with %q, want [leader ...]", got)
		}
	case err := <-pollErr:
		t.Fatal(err)
	case <-time.After(30 * time.Second):
		t.Fatal("long poll not woken after the fdatasync completed")
	}
	got, hw = fetchBelowHW(t, c, "dur", 0, 0, 0)
	if fmt.Sprint(got) != "[durable leader all]" || hw != 3 {
		t.Fatalf("fetch after the fdatasync: %q, high watermark %d", got, hw)
	}
}

var hwSeed = flag.Uint64("hwseed", 0, "seed of TestFetchNeverPassesHighWatermark (0: from the clock)")

// Under concurrent acks=1 produce on a flush=sync topic (the high
// watermark trailing the log end by the fdatasync in flight), consumers on
// both reactors never get a record at or above the high watermark their
// fetch reports, and in the end read everything in order.
func TestFetchNeverPassesHighWatermark(t *testing.T) {
	seed := *hwSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -args -hwseed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	srv := startServer(t, testConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "hw", 1, proto.ConfigFlush, proto.FlushSync)
	const n = 300
	prod := ringtest.Dial(t, srv.Addr(), client.Options{})
	errs := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			if err := <-produceAsync(prod, "hw", []byte(fmt.Sprint(i)), proto.AcksLeader); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	for shard := uint16(0); shard < 2; shard++ {
		cc := ringtest.Dial(t, srv.Addr(), client.Options{RequestShard: true, Shard: shard})
		var vals []string
		deadline := time.Now().Add(60 * time.Second)
		for off := uint64(0); off < n; {
			if time.Now().After(deadline) {
				t.Fatalf("shard %d: read %d of %d records in 60s", shard, off, n)
			}
			got, _ := fetchBelowHW(t, cc, "hw", off, uint32(rng.IntN(2)), uint32(rng.IntN(20)))
			vals = append(vals, got...)
			off += uint64(len(got))
		}
		for i, v := range vals {
			if v != fmt.Sprint(i) {
				t.Fatalf("shard %d: record %d is %q", shard, i, v)
			}
		}
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}
