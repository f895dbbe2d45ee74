package e2e

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

// groupMember is one Go consumer of a group in a cluster test: what it
// holds (OnAssigned/OnRevoked) and what it read.
type groupMember struct {
	c    *client.Consumer
	mu   sync.Mutex
	held map[uint32]bool
}

func (m *groupMember) holding() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.held)
}

// TestClusterGroupAcrossNodes: three members of one group, each
// bootstrapped through a different node of a 3-node cluster, form one
// group (each holds 4 partitions of a 12-partition topic), because every
// node sends them to the group's coordinator (FindCoordinator) instead of
// running a group of its own. Then the coordinator's node is killed with
// SIGKILL: with one replica its __consumer_offsets partition is offline
// until the node restarts; once it has, the coordinator loads the group
// from its log and the group goes on from its commits: every record
// produced before and after is read, and the members keep their shares.
func TestClusterGroupAcrossNodes(t *testing.T) {
	c := startCluster(t, clusterOptions{ExtraConfig: "\n[groups]\nmin_session_timeout = \"500ms\"\nheartbeat_interval = \"200ms\"\npartitions = 4\n"})
	createLedTopic(t, c.addrs(), "orders", 12)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	p, err := client.NewProducer(c.addrs(), client.ProducerOptions{Partitioner: client.ManualPartitioner{}, DeliveryTimeout: 90 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	produce := func(from, to int) {
		t.Helper()
		var fs []*client.Future
		for i := from; i < to; i++ {
			fs = append(fs, p.Produce(ctx, client.Record{Topic: "orders", Partition: uint32(i % 12), Value: []byte(fmt.Sprintf("r-%d", i))}))
		}
		for _, f := range fs {
			if r := f.Wait(); r.Err != nil {
				t.Fatalf("produce: %v", r.Err)
			}
		}
	}
	produce(0, 1200)

	var seenMu sync.Mutex
	seen := map[string]int{}
	seenCount := func() (distinct, twice int) {
		seenMu.Lock()
		defer seenMu.Unlock()
		for _, n := range seen {
			if n > 1 {
				twice++
			}
		}
		return len(seen), twice
	}
	members := make([]*groupMember, 3)
	var wg sync.WaitGroup
	readCtx, stopReading := context.WithCancel(ctx)
	defer func() {
		stopReading()
		wg.Wait()
		for _, m := range members {
			if m != nil {
				m.c.Close()
			}
		}
	}()
	for i := range members {
		m := &groupMember{held: map[uint32]bool{}}
		members[i] = m
		addr := c.node(i + 1).addr
		m.c, err = client.NewConsumer(addr, client.ConsumerOptions{Group: "g", ClientID: fmt.Sprintf("via-node-%d", i+1),
			SessionTimeout: 3 * time.Second, MaxWait: 100 * time.Millisecond,
			OnAssigned: func(tps []client.TopicPartition) {
				m.mu.Lock()
				defer m.mu.Unlock()
				for _, tp := range tps {
					m.held[tp.Partition] = true
				}
			},
			OnRevoked: func(tps []client.TopicPartition) {
				m.mu.Lock()
				defer m.mu.Unlock()
				for _, tp := range tps {
					delete(m.held, tp.Partition)
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.c.Subscribe(ctx, "orders"); err != nil {
			t.Fatalf("subscribe through node %d: %v", i+1, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for readCtx.Err() == nil {
				pctx, pcancel := context.WithTimeout(readCtx, 300*time.Millisecond)
				recs, err := m.c.Poll(pctx)
				pcancel()
				if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
					t.Logf("member via node %d: poll: %v", i+1, err)
				}
				seenMu.Lock()
				for _, r := range recs {
					seen[string(r.Value)]++
				}
				seenMu.Unlock()
				if len(recs) > 0 {
					cctx, ccancel := context.WithTimeout(readCtx, 2*time.Second)
					_ = m.c.Commit(cctx) // fails while the coordinator is down; the next one carries it
					ccancel()
				}
			}
		}()
	}
	waitShares := func(what string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			a, b, d := members[0].holding(), members[1].holding(), members[2].holding()
			if a == 4 && b == 4 && d == 4 {
				t.Logf("%s: the members hold 4, 4 and 4 partitions", what)
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: members hold %d, %d and %d partitions after 60s; want 4 each (one group)", what, a, b, d)
			}
			time.Sleep(50 * time.Millisecond) // polling interval
		}
	}
	waitSeen := func(n int, what string) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			distinct, twice := seenCount()
			if distinct == n {
				t.Logf("%s: %d records read, %d of them more than once", what, distinct, twice)
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d records read after 90s", what, distinct, n)
			}
			time.Sleep(50 * time.Millisecond) // polling interval
		}
	}
	waitShares("bootstrapped through nodes 1, 2 and 3")
	waitSeen(1200, "before the kill")

	conn, err := client.Dial(ctx, c.node(1).addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fc, err := conn.FindCoordinator(ctx, &proto.FindCoordinatorRequest{Group: "g"})
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	victim := int(fc.NodeID)
	t.Logf("group g lives on partition %d of %s, led by node %d (%s); killing it", fc.Partition, proto.OffsetsTopic, victim, fc.Addr)
	c.kill(victim)
	killed := time.Now()
	// Once the controller fences the dead node (session timeout 3s), the
	// group's partition has no leader: FindCoordinator says so.
	other := c.node(victim%3 + 1).addr
	for {
		conn, err := client.Dial(ctx, other, client.Options{})
		if err == nil {
			_, err = conn.FindCoordinator(ctx, &proto.FindCoordinatorRequest{Group: "g"})
			conn.Close()
		}
		if errors.Is(err, proto.CoordinatorNotAvailable) {
			t.Logf("coordinator not available %v after the kill (its partition is offline)", time.Since(killed))
			break
		}
		if time.Since(killed) > 30*time.Second {
			t.Fatalf("FindCoordinator through %s 30s after the kill: %v; want COORDINATOR_NOT_AVAILABLE", other, err)
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
	c.restart(victim)
	t.Logf("node %d restarted after %v", victim, time.Since(killed))
	produce(1200, 1800)
	waitSeen(1800, "after the coordinator's restart")
	waitShares("after the coordinator's restart")

	a := newClusterAdmin(t, c.addrs())
	d, err := a.DescribeGroup(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Members) != 3 {
		t.Fatalf("group after the restart: %d members, want 3: %+v", len(d.Members), d)
	}
	for i := 1; i <= 3; i++ {
		out := mustCLI(t, "", "groups", "-s", c.node(i).addr)
		if !regexpMatch(`(?m)^g\s+failover\s+stable\s+3\s`, out) {
			t.Errorf("ringmq groups through node %d does not list g with 3 members:\n%s", i, out)
		}
	}
	committed := 0
	for _, gp := range d.Partitions {
		committed += int(gp.Committed)
	}
	t.Logf("group g after the restart: state %s, epoch %d, commits add up to %d", d.State, d.Epoch, committed)
	if committed == 0 {
		t.Fatal("no commit survived the coordinator's restart")
	}
}
