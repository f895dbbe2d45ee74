package e2e

// Replication across three processes: a topic with three replicas,
// produce with acks=all, the three logs byte-identical below the high
// watermark; kill -9 of the partition leader: a new leader serves every
// acknowledged record and acks=all works again (the time is logged); a
// follower restarted with its data directory wiped rejoins the ISR only
// once it has caught up.

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

// replicatedCluster starts three nodes with a short replica_lag_time.
func replicatedCluster(t *testing.T) *testCluster {
	return startCluster(t, clusterOptions{ExtraConfig: "replica_lag_time = \"2s\"\n"})
}

// partitionAt is partition p of topic as node addr describes it.
func partitionAt(addr, topic string, p uint32) (proto.DescribePartition, error) {
	d, err := describeAt(addr, topic)
	if err != nil {
		return proto.DescribePartition{}, err
	}
	if int(p) >= len(d.Partitions) {
		return proto.DescribePartition{}, fmt.Errorf("%s has %d partitions", topic, len(d.Partitions))
	}
	return d.Partitions[p], nil
}

// waitPartition polls node addr's description of topic/p until ok accepts
// it, for at most timeout.
func waitPartition(t *testing.T, addr, topic string, p uint32, timeout time.Duration, what string,
	ok func(proto.DescribePartition) bool) proto.DescribePartition {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last proto.DescribePartition
	var lastErr error
	for {
		d, err := partitionAt(addr, topic, p)
		if err == nil && ok(d) {
			return d
		}
		last, lastErr = d, err
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last %+v (%v)", what, timeout, last, lastErr)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}

// produceAllAt sends n records "prefix-i" with acks=all through the
// cluster and returns the values acknowledged.
func produceAll(t *testing.T, addrs, topic, prefix string, n int) []string {
	t.Helper()
	p, err := client.NewProducer(addrs, client.ProducerOptions{ClientID: "e2e-repl", Acks: client.AcksAll,
		DeliveryTimeout: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	futures := make([]*client.Future, n)
	for i := range futures {
		futures[i] = p.Produce(ctx, client.Record{Topic: topic, Value: []byte(fmt.Sprintf("%s-%d", prefix, i))})
	}
	var acked []string
	for i, f := range futures {
		if res := f.Wait(); res.Err != nil {
			t.Fatalf("record %s-%d: %v", prefix, i, res.Err)
		}
		acked = append(acked, fmt.Sprintf("%s-%d", prefix, i))
	}
	return acked
}

// valuesAt reads topic/p from offset 0 up to the high watermark through
// node addr (its leader).
func valuesAt(addr, topic string, p uint32) ([]string, uint64, error) {
	var vals []string
	var hw uint64
	err := askNode(addr, 30*time.Second, func(ctx context.Context, c *client.Conn) error {
		off := uint64(0)
		for {
			resp, err := c.Fetch(ctx, &proto.FetchRequest{MaxBytes: 4 << 20, Topics: []proto.FetchTopic{{
				Name: []byte(topic), Partitions: []proto.FetchPartition{{Partition: p, Offset: off, PartitionMaxBytes: 4 << 20}}}}})
			if err != nil {
				return err
			}
			fp := resp.Topics[0].Partitions[0]
			if fp.Error != proto.None {
				return fp.Error
			}
			hw = fp.HighWatermark
			it, err := proto.NewRecordIter(fp.Records)
			if err != nil {
				return err
			}
			for it.Next() {
				vals = append(vals, string(it.Record().Value))
				off = it.Record().Offset + 1
			}
			if err := it.Err(); err != nil {
				return err
			}
			if off >= hw || len(fp.Records) == 0 {
				return nil
			}
		}
	})
	return vals, hw, err
}

// segmentBytes is the concatenation of the segment files of topic/p in
// node n's data directory, in offset order.
func segmentBytes(t *testing.T, n *clusterNode, topic string, p uint32) []byte {
	t.Helper()
	var files []string
	want := string(filepath.Separator) + filepath.Join("topics", topic, fmt.Sprint(p)) + string(filepath.Separator)
	err := filepath.WalkDir(n.dir, func(path string, d fs.DirEntry, err error) error {
		// 20-digit segment names; not the preallocated .next.log
		if err == nil && !d.IsDir() && len(d.Name()) == 24 && strings.HasSuffix(path, ".log") && strings.Contains(path, want) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("node %d: no segment of %s-%d under %s (%v)", n.id, topic, p, n.dir, err)
	}
	sort.Strings(files)
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// prefixUpTo is the length of the batches of log b below offset end.
func prefixUpTo(b []byte, end uint64) int {
	n := 0
	for len(b[n:]) >= proto.BatchHeaderSize {
		h, err := proto.ParseBatchHeader(b[n:])
		if err != nil || h.BaseOffset >= end || h.Size() > len(b[n:]) {
			break
		}
		n += h.Size()
	}
	return n
}

// leaderOf is topic/0's leader as running node ask describes it.
func leaderOf(t *testing.T, c *testCluster, ask int, topic string) (int, proto.DescribePartition) {
	t.Helper()
	d := waitPartition(t, c.node(ask).addr, topic, 0, 30*time.Second, "a leader", func(d proto.DescribePartition) bool {
		return d.Leader != proto.NoNode
	})
	return int(d.Leader), d
}

func TestClusterReplicationFailover(t *testing.T) {
	c := replicatedCluster(t)
	const topic = "r3"
	a, err := client.NewAdmin(c.addrs(), client.Options{ClientID: "e2e-repl"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.CreateTopicReplicated(ctx, topic, 1, 3, nil); err != nil {
		t.Fatal(err)
	}
	acked := produceAll(t, c.addrs(), topic, "a", 300)
	leader, d := leaderOf(t, c, 1, topic)
	if len(d.Replicas) != 3 {
		t.Fatalf("replicas %v, want 3", d.Replicas)
	}

	// Every replica holds the whole log, byte for byte, below the HW.
	d = waitPartition(t, c.node(leader).addr, topic, 0, 30*time.Second, "full ISR", func(d proto.DescribePartition) bool {
		return len(d.ISR) == 3
	})
	for _, n := range c.nodes {
		waitPartition(t, n.addr, topic, 0, 30*time.Second, fmt.Sprintf("node %d caught up", n.id), func(p proto.DescribePartition) bool {
			return p.LogEnd >= uint64(len(acked))
		})
	}
	ref := segmentBytes(t, c.node(leader), topic, 0)
	upTo := prefixUpTo(ref, uint64(len(acked)))
	if upTo == 0 {
		t.Fatalf("leader %d: no batches in its segments", leader)
	}
	for _, n := range c.nodes {
		b := segmentBytes(t, n, topic, 0)
		if len(b) < upTo || !bytes.Equal(b[:upTo], ref[:upTo]) {
			t.Fatalf("node %d's log differs from leader %d's below offset %d (%d bytes)", n.id, leader, len(acked), upTo)
		}
	}
	t.Logf("three logs identical: %d records, %d bytes", len(acked), upTo)

	// kill -9 the leader: a new leader from the ISR serves every
	// acknowledged record, and acks=all works again.
	start := time.Now()
	c.kill(leader)
	var survivors []string
	for _, n := range c.nodes {
		if n.id != leader {
			survivors = append(survivors, n.addr)
		}
	}
	more := produceAll(t, strings.Join(survivors, ","), topic, "b", 1)
	failover := time.Since(start)
	t.Logf("acks=all produce succeeded %v after kill -9 of leader %d", failover.Round(10*time.Millisecond), leader)
	newLeader, _ := leaderOf(t, c, leader%3+1, topic)
	if newLeader == leader {
		t.Fatalf("leader %d still named after its kill", leader)
	}
	vals, hw, err := valuesAt(c.node(newLeader).addr, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range append(slices.Clone(acked), more...) {
		if !slices.Contains(vals, v) {
			t.Fatalf("acknowledged record %q missing on new leader %d (HW %d, %d records)", v, newLeader, hw, len(vals))
		}
	}

	// The killed node comes back with its data directory wiped: it is out
	// of the ISR, catches up, and only then rejoins it.
	acked = append(acked, more...)
	acked = append(acked, produceAll(t, strings.Join(survivors, ","), topic, "c", 2000)...)
	if err := os.RemoveAll(c.node(leader).dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(c.node(leader).dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c.restart(leader)
	end := uint64(len(acked))
	waitPartition(t, c.node(newLeader).addr, topic, 0, 60*time.Second, "wiped node back in the ISR", func(d proto.DescribePartition) bool {
		if !slices.Contains(d.ISR, uint32(leader)) {
			return false
		}
		back, err := partitionAt(c.node(leader).addr, topic, 0)
		if err != nil || back.LogEnd < end {
			t.Fatalf("node %d in the ISR with log end %d < %d (%v)", leader, back.LogEnd, end, err)
		}
		return true
	})
	b := segmentBytes(t, c.node(leader), topic, 0)
	ref = segmentBytes(t, c.node(newLeader), topic, 0)
	upTo = prefixUpTo(ref, end)
	if len(b) < upTo || !bytes.Equal(b[:upTo], ref[:upTo]) {
		t.Fatalf("rejoined node %d's log differs from leader %d's below offset %d", leader, newLeader, end)
	}
}
