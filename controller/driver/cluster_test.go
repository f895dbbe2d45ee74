package driver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/ringmq/ringmq/controller"
)

// testCluster runs three drivers in this process, on 127.0.0.1 ports
// chosen by the kernel, with the production clock (100 ms ticks, election
// timeout 10 ticks).
type testCluster struct {
	t       *testing.T
	ids     []uint64
	addrs   map[uint64]string
	dirs    map[uint64]string
	drivers map[uint64]*Driver
}

const testTick = 100 * time.Millisecond

func newTestCluster(t *testing.T) *testCluster {
	c := &testCluster{t: t, ids: []uint64{1, 2, 3}, addrs: map[uint64]string{},
		dirs: map[uint64]string{}, drivers: map[uint64]*Driver{}}
	lns := map[uint64]net.Listener{}
	for _, id := range c.ids {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[id], c.addrs[id], c.dirs[id] = ln, ln.Addr().String(), t.TempDir()
	}
	for _, id := range c.ids {
		c.open(id, lns[id], true)
	}
	t.Cleanup(func() {
		for _, d := range c.drivers {
			d.Close()
		}
	})
	return c
}

// open starts driver id on ln (nil: listen on its address again); with
// connected false it has no peers to talk to.
func (c *testCluster) open(id uint64, ln net.Listener, connected bool) {
	c.t.Helper()
	if ln == nil {
		ln = c.listenAgain(c.addrs[id])
	}
	peers := map[uint64]string{}
	if connected {
		for _, p := range c.ids {
			if p != id {
				peers[p] = c.addrs[p]
			}
		}
	}
	d, err := Open(Config{
		Node:   controller.Config{ID: id, ElectionTicks: 10, Logger: quietRaft},
		Voters: c.ids, Dir: c.dirs[id], Tick: testTick,
		NewTransport: func(deliver Deliver) (Transport, error) {
			return NewTCP(TCPConfig{Listener: ln, Peers: peers, Deliver: deliver}), nil
		},
	})
	if err != nil {
		ln.Close()
		c.t.Fatalf("open driver %d: %v", id, err)
	}
	c.drivers[id] = d
}

// listenAgain binds addr again after its driver closed (bounded retries).
func (c *testCluster) listenAgain(addr string) net.Listener {
	deadline := time.Now().Add(10 * time.Second)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			return ln
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("listen again on %s: %v", addr, err)
		}
		<-time.After(20 * time.Millisecond)
	}
}

func (c *testCluster) stop(id uint64) {
	if err := c.drivers[id].Close(); err != nil {
		c.t.Fatalf("close driver %d: %v", id, err)
	}
	delete(c.drivers, id)
}

// waitFor polls cond on every change of a running driver, or every 20 ms,
// until it holds or the deadline passes.
func (c *testCluster) waitFor(what string, timeout time.Duration, cond func() bool) time.Duration {
	c.t.Helper()
	start := time.Now()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for !cond() {
		var changed <-chan struct{}
		for _, d := range c.drivers {
			changed = d.Changed()
			break
		}
		select {
		case <-deadline.C:
			c.t.Fatalf("%s: not within %v", what, timeout)
		case <-changed:
		case <-time.After(20 * time.Millisecond):
		}
	}
	return time.Since(start)
}

// leader is the id all running drivers agree leads, or 0.
func (c *testCluster) leader() uint64 {
	var lead uint64
	for _, d := range c.drivers {
		s := d.Status()
		if s.Leader == 0 || (lead != 0 && s.Leader != lead) {
			return 0
		}
		lead = s.Leader
	}
	if d, ok := c.drivers[lead]; !ok || !d.Status().IsLeader {
		return 0
	}
	return lead
}

func (c *testCluster) follower() uint64 {
	lead := c.leader()
	for _, id := range c.ids {
		if _, ok := c.drivers[id]; ok && id != lead {
			return id
		}
	}
	c.t.Fatal("no follower running")
	return 0
}

// propose submits cmd through driver via, retrying while there is no
// leader or the proposal was lost, until timeout. A retried creation that
// finds its topic counts as done.
func (c *testCluster) propose(via uint64, cmd controller.Command, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	retried := false
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.drivers[via].Propose(ctx, cmd)
		cancel()
		if retried && errors.Is(err, controller.ErrTopicExists) {
			return nil
		}
		if !errors.Is(err, controller.ErrNoLeader) && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("propose %v through %d: %w", cmd.Type, via, err)
		}
		retried = true
		select {
		case <-c.drivers[via].Changed():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *testCluster) hasTopics(ids []uint64, names ...string) func() bool {
	return func() bool {
		for _, id := range ids {
			d, ok := c.drivers[id]
			if !ok {
				return false
			}
			for _, n := range names {
				if _, ok := d.State().Topic(n); !ok {
					return false
				}
			}
		}
		return true
	}
}

func TestThreeDrivers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real elections (seconds)")
	}
	c := newTestCluster(t)
	c.waitFor("a leader", 10*time.Second, func() bool { return c.leader() != 0 })
	lead := c.leader()
	t.Logf("leader %d, term %d", lead, c.drivers[lead].Status().Term)

	// Through a follower: Raft forwards proposals to the leader.
	via := c.follower()
	for _, id := range c.ids {
		cmd := controller.Command{Type: controller.CmdRegisterBroker, Broker: int32(id), Addr: c.addrs[id]}
		if err := c.propose(via, cmd, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	create := controller.Command{Type: controller.CmdCreateTopic, Topic: "orders", Partitions: 3, Replicas: 3}
	if err := c.propose(via, create, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.drivers[via].Propose(context.Background(), create); !errors.Is(err, controller.ErrTopicExists) {
		t.Fatalf("second create: %v, want ErrTopicExists", err)
	}
	c.waitFor("orders on every node", 10*time.Second, c.hasTopics(c.ids, "orders"))
	top, _ := c.drivers[lead].State().Topic("orders")
	if len(top.Partitions) != 3 || len(top.Partitions[0].ISR) != 3 {
		t.Fatalf("orders: %+v", top)
	}

	// A follower stops and restarts from its directory alone: the state
	// is kept; then it catches up with what it missed.
	f := c.follower()
	c.stop(f)
	if err := c.propose(c.leader(), controller.Command{Type: controller.CmdCreateTopic, Topic: "missed",
		Partitions: 1, Replicas: 2}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	c.open(f, nil, false)
	c.waitFor("orders back from the disk", 5*time.Second, c.hasTopics([]uint64{f}, "orders"))
	if _, ok := c.drivers[f].State().Topic("missed"); ok {
		t.Fatal("a node with no peers learnt a topic created while it was down")
	}
	c.stop(f)
	c.open(f, nil, true)
	c.waitFor("the restarted node catches up", 10*time.Second, c.hasTopics(c.ids, "orders", "missed"))

	// Kill the leader 10 times: a new leader, then a topic created
	// through a survivor.
	var elect, created []time.Duration
	for i := range 10 {
		old := c.leader()
		oldTerm := c.drivers[old].Status().Term
		start := time.Now()
		c.stop(old)
		// Bounded generously: under a loaded machine (the race detector,
		// parallel packages) PreVote rounds can repeat; the figures are
		// logged.
		c.waitFor("a new leader", 15*time.Second, func() bool {
			l := c.leader()
			return l != 0 && c.drivers[l].Status().Term > oldTerm
		})
		elect = append(elect, time.Since(start))
		name := fmt.Sprintf("after-kill-%d", i)
		if err := c.propose(c.follower(), controller.Command{Type: controller.CmdCreateTopic, Topic: name,
			Partitions: 1, Replicas: 1}, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		created = append(created, time.Since(start))
		c.open(old, nil, true)
		c.waitFor("the old leader catches up", 10*time.Second, c.hasTopics(c.ids, name))
	}
	t.Logf("new leader after a kill: %s", distribution(elect))
	t.Logf("topic created after a kill: %s", distribution(created))
	if err := c.drivers[c.leader()].State().CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

func distribution(ds []time.Duration) string {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("n=%d min %v p50 %v p90 %v max %v all %v", len(s), r(s[0]), r(s[len(s)/2]),
		r(s[len(s)*9/10]), r(s[len(s)-1]), roundAll(ds))
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
