package reactor

import (
	"errors"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

// replicaFetch sends one ReplicaFetch for topic/0 as follower 2 and
// returns the partition's answer and how long it took.
func replicaFetch(t *testing.T, c *client.Conn, topic string, p proto.ReplicaFetchPartition, maxWaitMs uint32) (
	proto.ReplicaFetchPartitionResponse, time.Duration) {
	t.Helper()
	start := time.Now()
	var resp proto.ReplicaFetchResponse
	err := c.Do(ringtest.Ctx(t), &proto.ReplicaFetchRequest{ReplicaID: 2, MaxWaitMs: maxWaitMs, MaxBytes: 1 << 20,
		Topics: []proto.ReplicaFetchTopic{{Name: []byte(topic), Partitions: []proto.ReplicaFetchPartition{p}}}}, &resp)
	if err != nil {
		t.Fatalf("replica fetch %+v: %v", p, err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("replica fetch answer %+v", resp)
	}
	return resp.Topics[0].Partitions[0], time.Since(start)
}

// The leader's side of ReplicaFetch: batches from the follower's offset
// to the log end (past the HW: the follower copies the log), with the
// epoch, HW and log start; an epoch the leader has not reached is
// UNKNOWN_LEADER_EPOCH, a last epoch above the leader's latest is a
// divergence; a fetch at the log end parks and is woken by the next
// append, long before its max wait.
func TestReplicaFetchLeaderSide(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "rf", 1)
	for i := 0; i < 3; i++ {
		produceOne(t, c, "rf", 0, []byte("v"))
	}
	md, err := c.Metadata(ringtest.Ctx(t), &proto.MetadataRequest{Topics: []string{"rf"}})
	if err != nil {
		t.Fatal(err)
	}
	epoch := int32(md.Topics[0].Partitions[0].LeaderEpoch)

	a, _ := replicaFetch(t, c, "rf", proto.ReplicaFetchPartition{LeaderEpoch: epoch, LastEpoch: -1}, 0)
	n := 0
	last := ringtest.DecodeBatches(t, a.Records, 0, func(uint64, []byte) { n++ })
	if a.Error != proto.None || n != 3 || last != 3 || a.LeaderEpoch != epoch || a.Diverging {
		t.Fatalf("fetch from 0: %+v, %d records up to %d", a.ReplicaFetchPartitionHeader, n, last)
	}

	a, _ = replicaFetch(t, c, "rf", proto.ReplicaFetchPartition{LeaderEpoch: epoch + 1, FetchOffset: 3, LastEpoch: epoch}, 0)
	if a.Error != proto.UnknownLeaderEpoch {
		t.Fatalf("fetch in a later epoch: %v, want UNKNOWN_LEADER_EPOCH", a.Error)
	}
	a, _ = replicaFetch(t, c, "rf", proto.ReplicaFetchPartition{LeaderEpoch: epoch, FetchOffset: 3, LastEpoch: epoch + 5}, 0)
	// KIP-279: an epoch above the leader's latest is answered (none, log end)
	if a.Error != proto.None || !a.Diverging || a.DivergingEpoch != -1 || a.DivergingEnd != 3 || len(a.Records) != 0 {
		t.Fatalf("fetch with an unknown last epoch: %+v, want diverging at epoch -1 end 3", a.ReplicaFetchPartitionHeader)
	}

	done := make(chan time.Duration, 1)
	go func() {
		fc := ringtest.Dial(t, srv.Addr(), client.Options{})
		a, took := replicaFetch(t, fc, "rf", proto.ReplicaFetchPartition{LeaderEpoch: epoch, FetchOffset: 3, Flushed: 3, LastEpoch: epoch}, 20_000)
		if a.Error != proto.None || len(a.Records) == 0 {
			t.Errorf("parked fetch: %+v, %d bytes", a.ReplicaFetchPartitionHeader, len(a.Records))
		}
		done <- took
	}()
	deadline := time.Now().Add(10 * time.Second)
	for parkedCount(srv) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // polling for the park, bounded
	}
	if parkedCount(srv) == 0 {
		t.Fatal("the replica fetch at the log end did not park")
	}
	produceOne(t, c, "rf", 0, []byte("w"))
	if took := <-done; took > 10*time.Second {
		t.Fatalf("parked replica fetch answered after %v", took)
	}
	if err := c.Do(ringtest.Ctx(t), &proto.ReplicaFetchRequest{Topics: []proto.ReplicaFetchTopic{
		{Name: []byte("rf"), Partitions: []proto.ReplicaFetchPartition{{}, {}}}}}, &proto.ReplicaFetchResponse{}); !errors.Is(err, proto.InvalidRequest) {
		t.Fatalf("a partition listed twice: %v, want INVALID_REQUEST", err)
	}
}
