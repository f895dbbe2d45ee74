package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

// produceN sends n records with values value(from..from+n) and timestamps
// base+i seconds to one partition, in one batch, and waits for them.
func produceN(t *testing.T, addr, topic string, from, n int, base time.Time) {
	t.Helper()
	p, err := client.NewProducer(addr, client.ProducerOptions{Linger: time.Minute, Partitioner: client.ManualPartitioner{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	for i := from; i < from+n; i++ {
		rec := client.Record{Topic: topic, Value: value(i), Timestamp: base.Add(time.Duration(i) * time.Second)}
		if err := p.Send(ctx, rec, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func firstRecord(t *testing.T, addr, topic string, opts client.ConsumerOptions) client.Record {
	t.Helper()
	c := newConsumer(t, addr, opts)
	if err := c.Assign(testCtx(t), topic); err != nil {
		t.Fatal(err)
	}
	return consumeN(t, c, 1)[0]
}

// Every Start finds the right first record, including one in the middle
// of a batch (the records below it are skipped).
func TestConsumerStartPositions(t *testing.T) {
	srv := newTestServer(t)
	createTopic(t, srv.addr, "starts", 1, nil)
	base := time.UnixMilli(1_700_000_000_000)
	produceN(t, srv.addr, "starts", 0, 100, base) // offsets 0..99 in one batch
	if bs := fetchBatches(t, srv.addr, "starts", 0); len(bs) != 1 {
		t.Fatalf("want the records in one batch, got %d batches", len(bs))
	}
	cases := []struct {
		name  string
		start client.Start
		want  uint64
	}{
		{"earliest", client.StartEarliest(), 0},
		{"offset in a batch", client.StartAt(42), 42},
		{"time", client.StartAtTime(base.Add(50*time.Second + 500*time.Millisecond)), 51},
		{"time exact", client.StartAtTime(base.Add(7 * time.Second)), 7},
	}
	for _, c := range cases {
		r := firstRecord(t, srv.addr, "starts", client.ConsumerOptions{Start: c.start})
		if r.Offset != c.want || !bytes.Equal(r.Value, value(int(c.want))) {
			t.Errorf("%s: first record %d %q, want %d", c.name, r.Offset, r.Value, c.want)
		}
	}

	// Latest: only what is produced after the assignment.
	ctx := testCtx(t)
	c := newConsumer(t, srv.addr, client.ConsumerOptions{Start: client.StartLatest(), MaxWait: 50 * time.Millisecond})
	if err := c.Assign(ctx, "starts"); err != nil {
		t.Fatal(err)
	}
	if pos, err := c.Position("starts", 0); err != nil || pos != 100 {
		t.Fatalf("latest position %d, %v; want 100", pos, err)
	}
	// An empty poll waits (across several long polls) instead of returning
	// nothing.
	pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	recs, err := c.Poll(pctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || len(recs) != 0 {
		t.Fatalf("Poll with nothing new: %d records, %v", len(recs), err)
	}
	produceN(t, srv.addr, "starts", 100, 1, base)
	if r := consumeN(t, c, 1)[0]; r.Offset != 100 || !bytes.Equal(r.Value, value(100)) {
		t.Fatalf("latest: got %d %q", r.Offset, r.Value)
	}
}

// Seek moves the position; data prefetched from the old one is dropped.
func TestConsumerSeek(t *testing.T) {
	srv := newTestServer(t)
	createTopic(t, srv.addr, "seek", 1, nil)
	produceN(t, srv.addr, "seek", 0, 20, time.Now())
	produceN(t, srv.addr, "seek", 20, 20, time.Now())
	c := newConsumer(t, srv.addr, client.ConsumerOptions{PartitionMaxBytes: 64}) // one batch per fetch
	ctx := testCtx(t)
	if err := c.Assign(ctx, "seek"); err != nil {
		t.Fatal(err)
	}
	recs := consumeN(t, c, 1) // the first batch; the second is being prefetched
	if recs[0].Offset != 0 {
		t.Fatalf("first record at %d", recs[0].Offset)
	}
	if err := c.Seek("seek", 0, 5); err != nil {
		t.Fatal(err)
	}
	next := uint64(5)
	for _, r := range consumeN(t, c, 35) {
		if r.Offset != next || !bytes.Equal(r.Value, value(int(next))) {
			t.Fatalf("after Seek(5): got %d %q, want %d", r.Offset, r.Value, next)
		}
		next++
	}
	if err := c.Seek("seek", 1, 0); !errors.Is(err, client.ErrNotAssigned) {
		t.Errorf("Seek of an unassigned partition: %v", err)
	}
	if got := c.Assignment(); len(got) != 1 || got[0] != (client.PartitionOffset{Topic: "seek", Partition: 0, Offset: 40}) {
		t.Errorf("Assignment = %+v", got)
	}
	c.Unassign("seek")
	if _, err := c.Poll(ctx); !errors.Is(err, client.ErrNotAssigned) {
		t.Errorf("Poll with nothing assigned: %v", err)
	}
}

// Partitions spread over both shards are read in order, each over its
// shard's connection.
func TestConsumerManyPartitions(t *testing.T) {
	srv := newTestServer(t)
	createTopic(t, srv.addr, "many", 6, nil)
	p := newProducer(t, srv.addr, client.ProducerOptions{Linger: time.Millisecond})
	ctx := testCtx(t)
	const n = 600
	for i := 0; i < n; i++ {
		if err := p.Send(ctx, client.Record{Topic: "many", Key: fmt.Appendf(nil, "k%d", i), Value: value(i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	c := newConsumer(t, srv.addr, client.ConsumerOptions{})
	if err := c.Assign(ctx, "many"); err != nil {
		t.Fatal(err)
	}
	next := make(map[uint32]uint64)
	for _, r := range consumeN(t, c, n) {
		if r.Offset != next[r.Partition] || r.Partition != client.KeyPartition(r.Key, 6) {
			t.Fatalf("partition %d: got offset %d key %q, want offset %d", r.Partition, r.Offset, r.Key, next[r.Partition])
		}
		next[r.Partition]++
	}
	if len(next) != 6 {
		t.Errorf("records came from %d partitions, want 6", len(next))
	}
}

// A group commits its positions (the next offset to read), a new consumer
// of the group resumes there, and the admin API reports offsets and lag.
func TestConsumerGroupCommitResume(t *testing.T) {
	srv := newTestServer(t)
	createTopic(t, srv.addr, "orders", 1, nil)
	produceN(t, srv.addr, "orders", 0, 60, time.Now())
	produceN(t, srv.addr, "orders", 60, 40, time.Now())
	ctx := testCtx(t)
	opts := client.ConsumerOptions{Group: "billing", PartitionMaxBytes: 64}
	a := newConsumer(t, srv.addr, opts)
	if err := a.Assign(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	got := consumeN(t, a, 1)
	pos := got[len(got)-1].Offset + 1
	if p, _ := a.Position("orders", 0); p != pos || pos != 60 {
		t.Fatalf("position %d after reading up to %d; want 60 (the first batch)", p, pos-1)
	}
	if lag, err := a.Lag("orders", 0); err != nil || lag != 40 {
		t.Errorf("Lag = %d, %v; want 40", lag, err)
	}
	if err := a.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	a.Close()
	groups, err := newAdmin(t, srv.addr).ListGroups(ctx, "billing")
	want := []client.GroupInfo{{Name: "billing", State: "empty", Partitions: []client.GroupPartition{
		{Topic: "orders", Partition: 0, Committed: 60, LogEnd: 100, Lag: 40}}}}
	if err != nil || fmt.Sprint(groups) != fmt.Sprint(want) {
		t.Fatalf("ListGroups = %+v, %v; want %+v", groups, err, want)
	}

	b := newConsumer(t, srv.addr, opts)
	if err := b.Assign(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	rest := consumeN(t, b, 40)
	if rest[0].Offset != 60 || rest[len(rest)-1].Offset != 99 {
		t.Fatalf("resumed at %d..%d, want 60..99", rest[0].Offset, rest[len(rest)-1].Offset)
	}
	done := make(chan error, 1)
	b.CommitAsync(func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	groups, err = newAdmin(t, srv.addr).ListGroups(ctx, "billing")
	if err != nil || len(groups) != 1 || groups[0].Partitions[0].Committed != 100 || groups[0].Partitions[0].Lag != 0 {
		t.Fatalf("after CommitAsync: %+v, %v", groups, err)
	}
	if _, err := newAdmin(t, srv.addr).ListGroups(ctx, "nobody"); !errors.Is(err, proto.GroupNotFound) {
		t.Errorf("ListGroups(nobody): %v, want GroupNotFound", err)
	}
	noGroup := newConsumer(t, srv.addr, client.ConsumerOptions{})
	if err := noGroup.Commit(ctx); err == nil {
		t.Error("Commit without a group succeeded")
	}
}
