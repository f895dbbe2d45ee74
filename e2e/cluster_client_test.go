package e2e

// The Go client and the CLI against three real nodes: given one node's
// address they find the leaders of partitions led by the others; given
// all three, they keep producing and consuming while a node that leads
// none of their partitions is killed.

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

func newClusterAdmin(t *testing.T, addrs string) *client.Admin {
	t.Helper()
	a, err := client.NewAdmin(addrs, client.Options{ClientID: "e2e-admin"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// createLedTopic creates topic through addr and waits until each of its
// partitions has a leader; it returns the leaders by partition.
func createLedTopic(t *testing.T, addr, topic string, partitions uint32) []uint32 {
	t.Helper()
	a := newClusterAdmin(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := a.CreateTopic(ctx, topic, partitions, nil); err != nil {
		t.Fatalf("create %s through %s: %v", topic, addr, err)
	}
	for {
		d, err := a.DescribeTopic(ctx, topic)
		if err == nil && len(d.Partitions) == int(partitions) {
			leaders := make([]uint32, partitions)
			for _, p := range d.Partitions {
				leaders[p.Partition] = p.Leader
			}
			if !slices.Contains(leaders, proto.NoNode) {
				return leaders
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("partitions of %s have no leaders within 60s: %v", topic, err)
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
}

// TestClusterClientsFindLeaders: a topic created through node 2 has
// leaders on every node; a producer given node 1 only and a consumer
// given node 3 only (the Go client, then the CLI) write and read every
// partition, so each found the leaders on the other nodes.
func TestClusterClientsFindLeaders(t *testing.T) {
	c := startCluster(t, clusterOptions{})
	const partitions, n = 6, 600
	leaders := createLedTopic(t, c.node(2).addr, "orders", partitions)
	t.Logf("leaders by partition: %v", leaders)
	for id := uint32(1); id <= 3; id++ {
		if !slices.Contains(leaders, id) {
			t.Fatalf("node %d leads none of %v: placement is not spread", id, leaders)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	p, err := client.NewProducer(c.node(1).addr, client.ProducerOptions{Linger: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	futures := make([]*client.Future, n)
	for i := range futures {
		futures[i] = p.Produce(ctx, client.Record{Topic: "orders", Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "%d", i)})
	}
	perPartition := make([]int, partitions)
	for i, f := range futures {
		r := f.Wait()
		if r.Err != nil {
			t.Fatalf("record %d: %v", i, r.Err)
		}
		perPartition[r.Partition]++
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("records per partition: %v", perPartition)

	cons, err := client.NewConsumer(c.node(3).addr, client.ConsumerOptions{MaxWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	if err := cons.Assign(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < n {
		recs, err := cons.Poll(ctx)
		if err != nil {
			t.Fatalf("poll after %d of %d: %v", len(got), n, err)
		}
		for _, r := range recs {
			got = append(got, string(r.Value))
		}
	}
	checkNumbers(t, got, 0, n)

	// The CLI, the same way round.
	mustCLI(t, seqLines(300), "produce", "orders", "-s", c.node(1).addr, "--timeout", "60s")
	out := mustCLI(t, "", "consume", "orders", "-s", c.node(3).addr, "-o", "earliest", "-e")
	lines := splitLines(out)
	if len(lines) != n+300 {
		t.Fatalf("consume -e through node 3: %d lines, want %d", len(lines), n+300)
	}
	res := runCLI(t, "", "topic", "create", "replicated", "--replicas", "4", "-s", c.node(1).addr)
	t.Logf("topic create --replicas 4: exit %d: %s", res.code, strings.TrimSpace(res.stderr))
	if res.code == 0 || !strings.Contains(res.stderr, "INVALID_REPLICATION_FACTOR") {
		t.Errorf("topic create --replicas 4: exit %d, stderr %q; want a refusal that says why", res.code, res.stderr)
	}
	mustCLI(t, "", "topic", "create", "replicated", "--replicas", "2", "-s", c.node(1).addr)
	describe := mustCLI(t, "", "topic", "describe", "orders", "-s", c.node(3).addr)
	t.Logf("topic describe through node 3:\n%s", describe)
	for id := 1; id <= 3; id++ {
		if !strings.Contains(describe, fmt.Sprintf("%d,", id)) && !strings.Contains(describe, fmt.Sprintf("  %d  ", id)) {
			t.Errorf("topic describe does not show node %d as a leader or replica:\n%s", id, describe)
		}
	}
}

// checkNumbers checks that got holds each of from..to-1 exactly once.
func checkNumbers(t *testing.T, got []string, from, to int) {
	t.Helper()
	seen := make(map[int]int)
	for _, s := range got {
		v, err := strconv.Atoi(s)
		if err != nil || v < from || v >= to {
			t.Fatalf("unexpected value %q", s)
		}
		seen[v]++
	}
	for v := from; v < to; v++ {
		if seen[v] != 1 {
			t.Fatalf("value %d seen %d times (of %d values)", v, seen[v], len(got))
		}
	}
}

// notLeading returns a node that leads none of leaders.
func notLeading(t *testing.T, leaders []uint32) int {
	t.Helper()
	for id := 1; id <= 3; id++ {
		if !slices.Contains(leaders, uint32(id)) {
			return id
		}
	}
	t.Fatalf("every node leads a partition of %v", leaders)
	return 0
}

// TestClusterClientsSurviveNodeKill: given all three addresses, a Go
// producer and consumer, and the CLI's produce and consume, keep going
// while the node that leads none of their partitions is killed with
// SIGKILL: every record is acknowledged and read exactly once.
func TestClusterClientsSurviveNodeKill(t *testing.T) {
	c := startCluster(t, clusterOptions{})
	leaders := createLedTopic(t, c.addrs(), "live", 2)
	victim := notLeading(t, leaders)
	t.Logf("leaders %v; killing node %d, which leads none", leaders, victim)

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	p, err := client.NewProducer(c.addrs(), client.ProducerOptions{DeliveryTimeout: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := client.NewConsumer(c.addrs(), client.ConsumerOptions{MaxWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	if err := cons.Assign(ctx, "live"); err != nil {
		t.Fatal(err)
	}
	cli := startCLI(t, "consume", "live", "-s", c.addrs(), "-o", "earliest", "-f", "%v\n")
	prodCLI := startCLI(t, "produce", "live", "-s", c.addrs(), "--timeout", "60s")

	// Go producer: one record every 2ms; the CLI producer: one line every
	// 10ms ("cli-N"); both before, during and after the kill.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var mu sync.Mutex
	var sent int
	var maxLatency time.Duration
	var failed []error
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			start := time.Now()
			err := p.Send(ctx, client.Record{Topic: "live", Value: []byte(strconv.Itoa(i))}, func(r client.Result) {
				mu.Lock()
				defer mu.Unlock()
				if r.Err != nil {
					failed = append(failed, r.Err)
				}
				maxLatency = max(maxLatency, time.Since(start))
			})
			if err != nil {
				mu.Lock()
				failed = append(failed, err)
				mu.Unlock()
				return
			}
			mu.Lock()
			sent = i + 1
			mu.Unlock()
		}
	})
	var cliSent int
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				prodCLI.stdin.Close()
				return
			case <-time.After(10 * time.Millisecond):
			}
			if _, err := fmt.Fprintf(prodCLI.stdin, "cli-%d\n", i); err != nil {
				return
			}
			cliSent = i + 1
		}
	})

	time.Sleep(time.Second) // let traffic flow before the kill (load, not synchronization)
	killedAt := time.Now()
	c.kill(victim)
	// Past the session timeout, so that the controller fences the node
	// while the clients go on.
	time.Sleep(5 * time.Second) // load duration, not synchronization
	close(stop)
	wg.Wait()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if code, stderr := prodCLI.wait(t); code != 0 {
		t.Fatalf("ringmq produce exited %d: %s", code, stderr)
	}
	mu.Lock()
	t.Logf("Go producer: %d records, max send-to-ack %v, %d failures; CLI producer: %d lines; node %d killed %v before the producers stopped",
		sent, maxLatency, len(failed), cliSent, victim, time.Since(killedAt))
	if len(failed) > 0 {
		t.Fatalf("%d records failed, first: %v", len(failed), failed[0])
	}
	mu.Unlock()

	var got []string
	for len(got) < sent+cliSent {
		recs, err := cons.Poll(ctx)
		if err != nil {
			t.Fatalf("poll after %d of %d: %v", len(got), sent+cliSent, err)
		}
		for _, r := range recs {
			got = append(got, string(r.Value))
		}
	}
	var goVals, cliVals []string
	for _, v := range got {
		if s, ok := strings.CutPrefix(v, "cli-"); ok {
			cliVals = append(cliVals, s)
		} else {
			goVals = append(goVals, v)
		}
	}
	checkNumbers(t, goVals, 0, sent)
	checkNumbers(t, cliVals, 0, cliSent)

	var cliGot []string
	for len(cliGot) < sent+cliSent {
		cliGot = append(cliGot, cli.line(t))
	}
	if !slices.Contains(cliGot, strconv.Itoa(sent-1)) || !slices.Contains(cliGot, fmt.Sprintf("cli-%d", cliSent-1)) {
		t.Errorf("ringmq consume did not print the last records")
	}
	out := mustCLI(t, "", "cluster", "status", "-s", c.addrs())
	t.Logf("cluster status after the kill:\n%s", out)
	if !regexpMatch(fmt.Sprintf(`(?m)^%d\s+\S+\s+no\s`, victim), out) {
		t.Errorf("cluster status does not show node %d as not alive:\n%s", victim, out)
	}
}

// TestClusterOfflinePartitionWaitsForRestart: with one replica per
// partition, killing the node that leads one makes it offline (cluster
// status lists it); the CLI's produce to it fails at its --timeout naming
// the cause, while a Go producer's record waits and is stored once the
// node is back, and the consumer reads it.
func TestClusterOfflinePartitionWaitsForRestart(t *testing.T) {
	c := startCluster(t, clusterOptions{})
	leaders := createLedTopic(t, c.addrs(), "solo", 3)
	victim := int(leaders[0])
	t.Logf("leaders %v; killing node %d, partition 0's leader", leaders, victim)
	mustCLI(t, "before\n", "produce", "solo", "-p", "0", "-s", c.addrs())

	c.kill(victim)
	killed := time.Now()
	// The controller fences the node after the session timeout (3s).
	deadline := time.Now().Add(30 * time.Second)
	var status string
	for {
		status = mustCLI(t, "", "cluster", "status", "-s", c.addrs())
		if regexpMatch(`(?m)^solo\s+0\s+none\s`, status) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partition 0 not reported offline within 30s:\n%s", status)
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
	t.Logf("offline %v after the kill; cluster status:\n%s", time.Since(killed), status)

	res := runCLI(t, "lost\n", "produce", "solo", "-p", "0", "-s", c.addrs(), "--timeout", "2s")
	t.Logf("produce to the offline partition: exit %d: %s", res.code, strings.TrimSpace(res.stderr))
	if res.code == 0 || !strings.Contains(res.stderr, "no leader") {
		t.Errorf("produce to an offline partition: exit %d, stderr %q; want a failure naming no leader", res.code, res.stderr)
	}
	mustCLI(t, "other\n", "produce", "solo", "-p", "1", "-s", c.addrs(), "--timeout", "30s") // led elsewhere: unaffected

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	p, err := client.NewProducer(c.addrs(), client.ProducerOptions{Partitioner: client.ManualPartitioner{}, DeliveryTimeout: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	f := p.Produce(ctx, client.Record{Topic: "solo", Partition: 0, Value: []byte("waited")})
	time.Sleep(500 * time.Millisecond) // the record waits meanwhile (load, not synchronization)
	restarted := time.Now()
	c.restart(victim)
	r := f.Wait()
	if r.Err != nil {
		t.Fatalf("record waiting for partition 0's leader: %v", r.Err)
	}
	t.Logf("record stored %v after the restart began, at offset %d", time.Since(restarted), r.Offset)
	out := mustCLI(t, "", "consume", "solo", "-p", "0", "-o", "earliest", "-e", "-s", c.addrs())
	if got := splitLines(out); !slices.Contains(got, "before") || !slices.Contains(got, "waited") {
		t.Errorf("partition 0 after the restart: %q, want before and waited", got)
	}
}
