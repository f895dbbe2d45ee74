package reactor

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

// Shutdown ends promptly while clients keep sending without pause and
// long polls are parked across shards: requests in flight are answered
// (parked fetches with what they have), later ones are not read, and the
// connections close.
func TestShutdownUnderLoad(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "busy", 4)
	ringtest.CreateTopic(t, c, "idle", 4)

	var acked atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		pc := ringtest.Dial(t, srv.Addr(), client.Options{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b proto.BatchBuilder
			for n := 0; ; n++ {
				b.Reset(nil)
				b.Append(time.Now().UnixMilli(), nil, []byte("payload"), nil)
				resp, err := pc.Produce(context.Background(), &proto.ProduceRequest{Acks: proto.AcksLeader, TimeoutMs: 10000,
					Topics: []proto.ProduceTopic{{Name: []byte("busy"), Partitions: []proto.ProducePartition{{Partition: uint32(n % 4), Records: b.Finish()}}}}})
				if err != nil {
					return // the server closed the connection
				}
				if resp.Topics[0].Partitions[0].Error == proto.None {
					acked.Add(1)
				}
				// Errors (SERVER_SHUTTING_DOWN) are not a reason to stop sending.
			}
		}()
	}
	fetchErrs := make(chan error, 2)
	for i := 0; i < 2; i++ {
		fc := ringtest.Dial(t, srv.Addr(), client.Options{})
		go func() {
			// Every partition of the idle topic: both shards, nothing to read.
			req := &proto.FetchRequest{MaxWaitMs: 60000, MinBytes: 1, MaxBytes: 1 << 20, Topics: []proto.FetchTopic{{Name: []byte("idle"),
				Partitions: []proto.FetchPartition{{Partition: 0, PartitionMaxBytes: 1 << 20}, {Partition: 1, PartitionMaxBytes: 1 << 20},
					{Partition: 2, PartitionMaxBytes: 1 << 20}, {Partition: 3, PartitionMaxBytes: 1 << 20}}}}}
			_, err := fc.Fetch(context.Background(), req)
			fetchErrs <- err
		}()
	}
	waitFor(t, "records acknowledged", 30*time.Second, func() bool { return acked.Load() >= 200 })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown under load: %v after %v", err, time.Since(start))
	}
	took := time.Since(start)
	t.Logf("shutdown under load took %v", took)
	if took > 5*time.Second {
		t.Errorf("shutdown under load took %v", took)
	}
	wg.Wait() // the producers' connections were closed
	for i := 0; i < 2; i++ {
		if err := <-fetchErrs; err != nil {
			t.Errorf("parked fetch at shutdown: %v, want an answer", err)
		}
	}
}
