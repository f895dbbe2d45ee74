package reactor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/replica"
	"github.com/ringmq/ringmq/storage"
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

// produceOne sends records to topic/0 and returns the partition's answer.
func produceBatch(t testing.TB, c *client.Conn, topic string, records []byte) proto.ProducePartitionResponse {
	t.Helper()
	resp, err := c.Produce(ringtest.Ctx(t), &proto.ProduceRequest{Acks: proto.AcksLeader, TimeoutMs: 30000,
		Topics: []proto.ProduceTopic{{Name: []byte(topic), Partitions: []proto.ProducePartition{{Records: records}}}}})
	if err != nil {
		t.Fatalf("produce: %v", err)
	}
	return resp.Topics[0].Partitions[0]
}

func initProducer(t testing.TB, c *client.Conn, id int64, epoch int16) (*proto.InitProducerResponse, error) {
	t.Helper()
	return c.InitProducer(ringtest.Ctx(t), &proto.InitProducerRequest{ProducerID: id, Epoch: epoch})
}

func TestInitProducerIDs(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.Cluster.NodeID = 3
	srv := startServer(t, cfg)
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	seen := map[int64]bool{}
	var last int64
	for i := 0; i < 5; i++ {
		r, err := initProducer(t, c, proto.NoProducerID, -1)
		if err != nil {
			t.Fatal(err)
		}
		if r.Epoch != 0 || r.ProducerID>>producerIDNodeShift != 3 || seen[r.ProducerID] {
			t.Fatalf("InitProducer %d: id %#x epoch %d (node 3, seen %v)", i, r.ProducerID, r.Epoch, seen)
		}
		seen[r.ProducerID], last = true, r.ProducerID
	}
	r, err := initProducer(t, c, last, 4)
	if err != nil || r.ProducerID != last || r.Epoch != 5 {
		t.Fatalf("bump: %+v %v", r, err)
	}
	r, err = initProducer(t, c, last, proto.MaxProducerEpoch)
	if err != nil || seen[r.ProducerID] || r.Epoch != 0 {
		t.Fatalf("bump past the last epoch: %+v %v", r, err)
	}
	seen[r.ProducerID] = true
	for _, id := range []int64{3<<producerIDNodeShift | 5000, 2<<producerIDNodeShift | 0} {
		if _, err := initProducer(t, c, id, 0); !errors.Is(err, proto.UnknownProducerID) {
			t.Fatalf("bump of id %#x never issued: %v", id, err)
		}
	}

	// A restarted server never hands out an id again.
	c.Close()
	shutdown(t, srv)
	srv = startServer(t, cfg)
	c = ringtest.Dial(t, srv.Addr(), client.Options{})
	r, err = initProducer(t, c, proto.NoProducerID, -1)
	if err != nil || seen[r.ProducerID] || r.ProducerID>>producerIDNodeShift != 3 {
		t.Fatalf("after restart: %+v %v (seen %v)", r, err, seen)
	}
	if r, err := initProducer(t, c, last, 0); err != nil || r.ProducerID != last {
		t.Fatalf("bump of an id issued before the restart: %+v %v", r, err)
	}
}

func shutdown(t testing.TB, srv *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestIdempotentProduceAnswers(t *testing.T) {
	for _, acks := range []string{"interval", "sync"} {
		t.Run(acks, func(t *testing.T) {
			srv := startServer(t, testConfig(t, t.TempDir()))
			c := ringtest.Dial(t, srv.Addr(), client.Options{})
			ringtest.CreateTopic(t, c, "idem", 1, "flush", acks)
			r, err := initProducer(t, c, proto.NoProducerID, -1)
			if err != nil {
				t.Fatal(err)
			}
			id := r.ProducerID
			b0, b1 := idemBatch(id, 0, 0, 3), idemBatch(id, 0, 3, 2)
			want := func(name string, got proto.ProducePartitionResponse, code proto.ErrorCode, base, end uint64) {
				t.Helper()
				if got.Error != code || (code == proto.None && (got.BaseOffset != base || got.LogEnd != end)) {
					t.Fatalf("%s: %v base %d log end %d, want %v base %d log end %d", name, got.Error, got.BaseOffset, got.LogEnd, code, base, end)
				}
			}
			want("first", produceBatch(t, c, "idem", b0), proto.None, 0, 3)
			want("second", produceBatch(t, c, "idem", b1), proto.None, 3, 5)
			want("retry of the first", produceBatch(t, c, "idem", b0), proto.None, 0, 5)
			want("retry of the second", produceBatch(t, c, "idem", b1), proto.None, 3, 5)
			want("gap", produceBatch(t, c, "idem", idemBatch(id, 0, 7, 1)), proto.OutOfOrderSequence, 0, 0)
			want("unknown producer", produceBatch(t, c, "idem", idemBatch(id+1, 0, 4, 1)), proto.UnknownProducerID, 0, 0)
			want("two batches in a part", produceBatch(t, c, "idem", append(idemBatch(id, 0, 5, 1), idemBatch(id, 0, 6, 1)...)), proto.InvalidRequest, 0, 0)
			want("new epoch", produceBatch(t, c, "idem", idemBatch(id, 1, 0, 1)), proto.None, 5, 6)
			want("old epoch", produceBatch(t, c, "idem", idemBatch(id, 0, 5, 1)), proto.ProducerFenced, 0, 0)
			want("not idempotent", produceBatch(t, c, "idem", idemBatch(proto.NoProducerID, -1, -1, 1)), proto.None, 6, 7)
			waitFor(t, "the high watermark", 30*time.Second, func() bool { return ringtest.ListOffset(t, c, "idem", 0, -1) == 7 })
			if got := len(ringtest.ReadPartition(t, c, "idem", 0)); got != 7 {
				t.Fatalf("partition holds %d records, want 7", got)
			}
		})
	}
}

// The producer state survives a restart: rebuilt from the snapshot beside
// the checkpoint plus the batch headers after it, a retry of a batch from
// either part is answered with its original offsets and not written.
func TestIdempotentProduceAfterRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	w := watchReactorThreads(t) // snapshots are written on the store's worker
	srv := startServer(t, cfg)
	w.add(srv)
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "idem", 1)
	const id = 1 << producerIDNodeShift // issued or not, the partition does not care
	var batches [][]byte
	for seq := int32(0); seq < 3; seq++ {
		batches = append(batches, idemBatch(id, 0, seq*2, 2))
		produceBatch(t, c, "idem", batches[seq])
	}
	snapPath := filepath.Join(dir, "topics", "idem", "0", producerSnapshotFile)
	waitFor(t, "a producer snapshot", 30*time.Second, func() bool {
		b, err := os.ReadFile(snapPath)
		if err != nil {
			return false
		}
		snap, _, err := replica.ParseProducerSnapshot(b)
		return err == nil && snap.Offset == 6
	})
	for seq := int32(3); seq < 5; seq++ { // the tail after the snapshot
		batches = append(batches, idemBatch(id, 0, seq*2, 2))
		produceBatch(t, c, "idem", batches[seq])
	}
	w.report(t, "producer snapshots") // before the close at shutdown, not off the reactors yet
	w.forget(srv)
	c.Close()
	shutdown(t, srv)

	srv = startServer(t, cfg)
	c = ringtest.Dial(t, srv.Addr(), client.Options{})
	for _, i := range []int{1, 4} {
		got := produceBatch(t, c, "idem", batches[i])
		if got.Error != proto.None || got.BaseOffset != uint64(2*i) || got.LogEnd != 10 {
			t.Fatalf("retry of batch %d after restart: %v base %d log end %d, want base %d log end 10", i, got.Error, got.BaseOffset, got.LogEnd, 2*i)
		}
	}
	if got := produceBatch(t, c, "idem", idemBatch(id, 0, 11, 1)); got.Error != proto.OutOfOrderSequence {
		t.Fatalf("gap after restart: %v", got.Error)
	}
	if got := produceBatch(t, c, "idem", idemBatch(id, 0, 10, 1)); got.Error != proto.None || got.BaseOffset != 10 {
		t.Fatalf("next batch after restart: %v base %d", got.Error, got.BaseOffset)
	}
}

// A snapshot ahead of the log (a power cut took back its tail) is not
// used: the previous one is, or the log from its start.
func TestProducerRecoveryIgnoresSnapshotAhead(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	srv := startServer(t, cfg)
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "idem", 1)
	const id = 1 << producerIDNodeShift
	b0 := idemBatch(id, 0, 0, 2)
	produceBatch(t, c, "idem", b0)
	c.Close()
	shutdown(t, srv)
	// A snapshot claiming offsets the log does not have, with a batch of
	// this producer there, and none before it.
	ahead := replica.ProducerSnapshot{Offset: 100, Producers: []replica.SnapshotProducer{{ID: id, Epoch: 0,
		Batches: []replica.SnapshotBatch{{FirstSeq: 0, LastSeq: 49, BaseOffset: 50, LastOffset: 99}}}}}
	pdir := filepath.Join(dir, "topics", "idem", "0")
	if err := os.WriteFile(filepath.Join(pdir, producerSnapshotFile), replica.AppendProducerSnapshot(nil, &ahead), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(pdir, producerSnapshotPrev))
	srv = startServer(t, cfg)
	c = ringtest.Dial(t, srv.Addr(), client.Options{})
	if got := produceBatch(t, c, "idem", b0); got.Error != proto.None || got.BaseOffset != 0 || got.LogEnd != 2 {
		t.Fatalf("retry after recovery from the log: %v base %d log end %d", got.Error, got.BaseOffset, got.LogEnd)
	}
	if got := produceBatch(t, c, "idem", idemBatch(id, 0, 2, 1)); got.Error != proto.None || got.BaseOffset != 2 {
		t.Fatalf("next batch: %v base %d", got.Error, got.BaseOffset)
	}
	// The snapshot that was not used is replaced by the rebuilt state, so
	// a second crash does not come back to it.
	waitFor(t, "the rebuilt snapshot", 30*time.Second, func() bool {
		b, err := os.ReadFile(filepath.Join(pdir, producerSnapshotFile))
		if err != nil {
			return false
		}
		snap, _, err := replica.ParseProducerSnapshot(b)
		return err == nil && snap.Offset <= 3
	})
}

// Producers idle past storage.producer_idle_expiry are forgotten with
// retention: a retry of their batch is then refused, not deduplicated.
func TestProducerExpiry(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Storage.ProducerIdleExpiry = time.Hour
	cfg.Storage.RetentionCheckInterval = 20 * time.Millisecond
	srv := startServer(t, cfg)
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "idem", 1)
	old := func(id int64) []byte { // a batch whose timestamp is two hours old
		var b proto.BatchBuilder
		b.Reset(nil)
		b.SetProducer(id, 0, 0)
		b.Append(time.Now().Add(-2*time.Hour).UnixMilli(), nil, []byte("v"), nil)
		return append([]byte(nil), b.Finish()...)
	}
	idle, fresh := old(1), idemBatch(2, 0, 0, 1)
	produceBatch(t, c, "idem", idle)
	produceBatch(t, c, "idem", fresh)
	waitFor(t, "the idle producer to expire", 30*time.Second, func() bool {
		// A retry of the expired producer's first batch (sequence 0) is
		// appended again: nothing remembers it.
		return produceBatch(t, c, "idem", idle).BaseOffset != 0
	})
	if got := produceBatch(t, c, "idem", fresh); got.Error != proto.None || got.BaseOffset != 1 {
		t.Fatalf("the fresh producer's retry: %v base %d, want base 1", got.Error, got.BaseOffset)
	}
}

// A follower's truncation can cut every batch of a producer that its
// replica remembers (the last replica.ProducerBatches) while older
// batches of that producer stay in the log. The replica alone would forget
// the producer, and as a leader answer its next batch UNKNOWN_PRODUCER_ID,
// which makes the client start over in a new epoch and store its
// unresolved batches again (the fault harness counted such duplicates).
// truncatedProducers rebuilds the state from the cut log instead.
func TestTruncationKeepsOlderProducerBatches(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	srv := startServer(t, cfg)
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "idem", 1)
	const id = 1 << producerIDNodeShift
	for seq := range int32(8) { // offsets 0-7, one record each
		if got := produceBatch(t, c, "idem", idemBatch(id, 0, seq, 1)); got.Error != proto.None || got.BaseOffset != uint64(seq) {
			t.Fatalf("batch %d: %v at %d", seq, got.Error, got.BaseOffset)
		}
	}
	c.Close()
	shutdown(t, srv)

	st, err := storage.OpenStore(cfg.Storage.DataDir, storage.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	lg, err := st.OpenExistingLog("idem", 0, (&Server{cfg: cfg}).logConfig(cfg.Storage.TopicDefaults()))
	if err != nil {
		t.Fatal(err)
	}
	// The replica's own view: the last five batches (seq 3-7), all past a
	// cut at offset 3.
	var own replica.ProducerState
	for seq := range int32(8) {
		mustOK(t, own.Replay(replica.LogBatch{ProducerBatch: replica.ProducerBatch{ProducerID: id, BaseSeq: seq, Count: 1},
			BaseOffset: uint64(seq), LastOffset: uint64(seq)}))
	}
	mustOK(t, own.TruncateTo(3))
	if _, _, ok := own.Lookup(id); ok {
		t.Fatal("the replica's truncation kept the producer: the case this test is about does not arise")
	}
	mustOK(t, lg.TruncateTo(3))
	snap := truncatedProducers(&partition{log: lg})
	if snap == nil || snap.Offset != 3 {
		t.Fatalf("rebuilt producer state %+v, want one at offset 3", snap)
	}
	// Both snapshot files now describe the cut log: none past the cut
	// survives to be taken by a recovery once the log grows past it.
	for _, name := range []string{producerSnapshotFile, producerSnapshotPrev} {
		b, err := lg.ReadFile(name)
		mustOK(t, err)
		s, _, err := replica.ParseProducerSnapshot(b)
		if err != nil || s.Offset != 3 {
			t.Fatalf("%s after the truncation: offset %d, %v; want 3", name, s.Offset, err)
		}
	}
	var rebuilt replica.ProducerState
	mustOK(t, rebuilt.Restore(snap, 3))
	if epoch, last, ok := rebuilt.Lookup(id); !ok || epoch != 0 || last != 2 {
		t.Fatalf("producer after the cut: epoch %d last seq %d known %v; want epoch 0, last seq 2", epoch, last, ok)
	}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
