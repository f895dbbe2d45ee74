package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/ringmq/ringmq/proto"
)

// fault kinds of the nemesis.
type faultKind int

const (
	faultKill      faultKind = iota // kill -9, then restart
	faultPause                      // SIGSTOP, then SIGCONT
	faultPartition                  // isolate the leader, split, drop one way, delay or reset links
	faultPowerLoss                  // kill -9 and drop unsynced data, then restart
	numFaults
)

var faultNames = [numFaults]string{"kill", "pause", "partition", "power-loss"}

// nemesis injects one fault at a time on a seeded schedule: a fault, held
// for 0.5-3 s, healed, then a calm of 0.5-2 s. Which faults it draws is
// kinds (all when empty).
type nemesis struct {
	c      *chaosCluster
	rng    *rand.Rand
	topic  string
	kinds  []faultKind
	counts [numFaults]int
	log    func(format string, args ...any)
}

// run injects faults until deadline, then heals everything and restarts
// every node that is down.
func (n *nemesis) run(deadline time.Time) error {
	kinds := n.kinds
	if len(kinds) == 0 {
		kinds = []faultKind{faultKill, faultPause, faultPartition, faultPowerLoss}
	}
	for time.Now().Add(3 * time.Second).Before(deadline) {
		k := kinds[n.rng.IntN(len(kinds))]
		hold := time.Duration(500+n.rng.IntN(2500)) * time.Millisecond
		calm := time.Duration(500+n.rng.IntN(1500)) * time.Millisecond
		if err := n.inject(k, hold); err != nil {
			return err
		}
		n.counts[k]++
		time.Sleep(calm) // the schedule's pause between faults, not synchronization
	}
	return n.healAll()
}

func (n *nemesis) healAll() error {
	n.c.heal()
	for _, nd := range n.c.nodes {
		if nd.cmd == nil {
			if err := n.c.restart(nd); err != nil {
				return err
			}
		}
	}
	return n.c.waitFormed(startTimeout)
}

// victim picks a node: the leader of a random partition when one is known
// (the interesting one to hurt), else any.
func (n *nemesis) victim() *chaosNode {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	any := n.c.nodes[n.rng.IntN(len(n.c.nodes))]
	leaders, err := n.c.partitionLeaders(ctx, n.topic)
	if err != nil || len(leaders) == 0 {
		return any
	}
	l := leaders[uint32(n.rng.IntN(len(leaders)))]
	if l == proto.NoNode || int(l) > len(n.c.nodes) || l == 0 {
		return any
	}
	return n.c.nodes[l-1]
}

func (n *nemesis) inject(k faultKind, hold time.Duration) error {
	c := n.c
	nd := n.victim()
	switch k {
	case faultKill, faultPowerLoss:
		n.log("nemesis: %s node %d for %v", faultNames[k], nd.id, hold)
		if k == faultKill {
			nd.kill()
		} else if err := c.powerLoss(nd); err != nil {
			return err
		}
		time.Sleep(hold) // the fault's duration
		if err := c.restart(nd); err != nil {
			return err
		}
	case faultPause:
		n.log("nemesis: pause node %d for %v", nd.id, hold)
		nd.pause()
		time.Sleep(hold) // the fault's duration
		nd.resume()
	case faultPartition:
		other := c.nodes[(nd.id+n.rng.IntN(len(c.nodes)-1))%len(c.nodes)]
		switch n.rng.IntN(5) {
		case 0, 1:
			n.log("nemesis: isolate node %d for %v", nd.id, hold)
			c.isolate(nd.id)
		case 2:
			n.log("nemesis: drop node %d → node %d for %v", nd.id, other.id, hold)
			c.dropOneWay(nd.id, other.id)
		case 3:
			n.log("nemesis: delay node %d's links and clients by 200ms for %v", nd.id, hold)
			for key, p := range c.links {
				if key[0] == nd.id || key[1] == nd.id {
					p.delay(200 * time.Millisecond)
				}
			}
			c.clients[nd.id-1].delay(200 * time.Millisecond)
		case 4:
			n.log("nemesis: reset node %d's connections, then isolate it for %v", nd.id, hold)
			c.clients[nd.id-1].reset()
			c.isolate(nd.id)
			for key, p := range c.links {
				if key[0] == nd.id || key[1] == nd.id {
					p.reset()
				}
			}
		}
		time.Sleep(hold) // the fault's duration
		c.heal()
	}
	return nil
}

func (n *nemesis) summary() string {
	return fmt.Sprintf("%s kill, %s pause, %s partition, %s power-loss",
		commas(n.counts[faultKill]), commas(n.counts[faultPause]),
		commas(n.counts[faultPartition]), commas(n.counts[faultPowerLoss]))
}

// commas writes n with thousands separators.
func commas(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + commas(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
