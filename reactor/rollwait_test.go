package reactor

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/stats"
	"github.com/ringmq/ringmq/storage"
)

// TestAppendsWaitForTheNextSegment: while the roll lane cannot make a
// partition's next segment (its file creation is held back), a produce
// that needs it waits — it is neither refused nor lost — and the produces
// after it wait behind it; once the lane runs, every record is stored
// once, in order.
func TestAppendsWaitForTheNextSegment(t *testing.T) {
	var gated atomic.Bool
	gate := make(chan struct{})
	t.Cleanup(storage.SetBlockingHook(func(op string) {
		if op == "ftruncate" && gated.Load() { // sizing new segment files (and seals)
			<-gate
		}
	}))
	srv := startServer(t, testConfig(t, t.TempDir()))
	var once sync.Once
	open := func() { once.Do(func() { gated.Store(false); close(gate) }) }
	t.Cleanup(open) // before the server stops
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "w", 1, proto.ConfigSegmentBytes, "4096")

	held := stats.AppendsHeld()
	gated.Store(true)
	const n = 12 // three 1 KiB records a segment: four segments
	var acked atomic.Int32
	done := make(chan error, 1)
	go func() {
		for i := range n {
			var b proto.BatchBuilder
			b.Reset(nil)
			b.Append(time.Now().UnixMilli(), nil, fmt.Appendf(bytes.Repeat([]byte("x"), 1000), "%d", i), nil)
			resp, err := c.Produce(ringtest.Ctx(t), &proto.ProduceRequest{Acks: proto.AcksLeader, Topics: []proto.ProduceTopic{{
				Name: []byte("w"), Partitions: []proto.ProducePartition{{Partition: 0, Records: b.Finish()}}}}})
			if err == nil && resp.Topics[0].Partitions[0].Error != proto.None {
				err = fmt.Errorf("produce %d: %v", i, resp.Topics[0].Partitions[0].Error)
			}
			if err != nil {
				done <- err
				return
			}
			acked.Add(1)
		}
		done <- nil
	}()
	deadline := time.Now().Add(30 * time.Second)
	for stats.AppendsHeld() == held {
		if time.Now().After(deadline) {
			t.Fatalf("no produce was held with the roll lane stopped (%d of %d acknowledged)", acked.Load(), n)
		}
		select {
		case err := <-done:
			t.Fatalf("the producer finished with the roll lane stopped: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	if a := acked.Load(); a >= n {
		t.Fatalf("%d of %d produces acknowledged with the roll lane stopped", a, n)
	}
	open()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("held produces not answered once the roll lane ran (%d of %d)", acked.Load(), n)
	}
	got := ringtest.ReadPartition(t, c, "w", 0)
	if len(got) != n {
		t.Fatalf("%d records stored, want %d", len(got), n)
	}
	for i, v := range got {
		if want := fmt.Appendf(bytes.Repeat([]byte("x"), 1000), "%d", i); !bytes.Equal(v, want) {
			t.Fatalf("record %d is %q..., want %q...", i, v[1000:], want[1000:])
		}
	}
}
