package e2e

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/replica"
)

// idemBatch is a batch of n records of an idempotent producer.
func idemBatch(id int64, epoch int16, seq int32, n int) []byte {
	var b proto.BatchBuilder
	b.Reset(nil)
	b.SetProducer(id, epoch, seq)
	for i := 0; i < n; i++ {
		b.Append(time.Now().UnixMilli(), nil, []byte{byte(seq), byte(i)}, nil)
	}
	return append([]byte(nil), b.Finish()...)
}

func produceIdem(t *testing.T, c *client.Conn, records []byte) proto.ProducePartitionResponse {
	t.Helper()
	resp, err := c.Produce(ringtest.Ctx(t), &proto.ProduceRequest{Acks: proto.AcksLeader, TimeoutMs: 30000,
		Topics: []proto.ProduceTopic{{Name: []byte("idem"), Partitions: []proto.ProducePartition{{Records: records}}}}})
	if err != nil {
		t.Fatalf("produce: %v", err)
	}
	return resp.Topics[0].Partitions[0]
}

// After kill -9 and a restart, a retry of the last batch an idempotent
// producer sent (in the log after the last producer snapshot) and of one
// the snapshot covers is answered with its original offsets and not
// stored again; the producer's next batch follows on; a new producer id
// is never one handed out before the kill.
func TestIdempotentRetryAfterKillNine(t *testing.T) {
	dataDir := t.TempDir()
	cfgPath := writeConfig(t, dataDir)
	srv := startServer(t, cfgPath)
	c := ringtest.Dial(t, srv.addr, client.Options{})
	ringtest.CreateTopic(t, c, "idem", 1)
	init, err := c.InitProducer(ringtest.Ctx(t), &proto.InitProducerRequest{ProducerID: proto.NoProducerID, Epoch: -1})
	if err != nil {
		t.Fatal(err)
	}
	id := init.ProducerID
	var batches [][]byte
	send := func(k int) {
		batches = append(batches, idemBatch(id, init.Epoch, int32(2*k), 2))
		if got := produceIdem(t, c, batches[k]); got.Error != proto.None || got.BaseOffset != uint64(2*k) {
			t.Fatalf("batch %d: %v at %d", k, got.Error, got.BaseOffset)
		}
	}
	for k := 0; k < 5; k++ {
		send(k)
	}
	snapPath := filepath.Join(dataDir, "topics", "idem", "0", "producers.snapshot")
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(snapPath)
		if err == nil {
			if snap, _, err := replica.ParseProducerSnapshot(b); err == nil && snap.Offset == 10 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no producer snapshot at offset 10 in %s", snapPath)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronization
	}
	for k := 5; k < 8; k++ { // after the snapshot: only in the log
		send(k)
	}
	c.Close()
	srv.stop(t, syscall.SIGKILL)

	srv = startServer(t, cfgPath)
	c = ringtest.Dial(t, srv.addr, client.Options{})
	for _, k := range []int{7, 6, 3} {
		got := produceIdem(t, c, batches[k])
		if got.Error != proto.None || got.BaseOffset != uint64(2*k) || got.LogEnd != 16 {
			t.Fatalf("retry of batch %d after kill -9: %v base %d log end %d, want base %d log end 16",
				k, got.Error, got.BaseOffset, got.LogEnd, 2*k)
		}
	}
	if got := produceIdem(t, c, idemBatch(id, init.Epoch, 16, 1)); got.Error != proto.None || got.BaseOffset != 16 {
		t.Fatalf("next batch after kill -9: %v base %d", got.Error, got.BaseOffset)
	}
	if got := len(ringtest.ReadPartition(t, c, "idem", 0)); got != 17 {
		t.Fatalf("partition holds %d records, want 17", got)
	}
	again, err := c.InitProducer(ringtest.Ctx(t), &proto.InitProducerRequest{ProducerID: proto.NoProducerID, Epoch: -1})
	if err != nil || again.ProducerID == id {
		t.Fatalf("InitProducer after kill -9: %+v %v (before: %d)", again, err, id)
	}
}
