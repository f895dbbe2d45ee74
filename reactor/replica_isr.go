package reactor

import (
	"context"
	"errors"
	"time"

	"github.com/ringmq/ringmq/controller"
	"github.com/ringmq/ringmq/replica"
)

// ISR changes: a leader's replica proposes one change at a time
// (Ready.ProposeISR); proposeISR submits it to the controller from a
// goroutine of its own (any node: Raft forwards it to the controller
// leader) and resends it until the controller answers, however long that
// takes (a committed expand that the leader never learned of would leave
// the follower uncounted). A committed change reaches the replica through
// reconcile (BecomeLeader with the new partition epoch and ISR:
// ISRChanged); a refusal (a stale partition epoch, a fenced broker...)
// is handed back to the owner (msgISRRefused: rep.ISRChangeRefused).

// proposeISR submits ch for p (called on p's owner).
func (s *Server) proposeISR(owner *Reactor, p *partition, ch replica.ISRChange) {
	c := controller.Command{Type: controller.CmdShrinkISR, Topic: p.topic.name, Partition: int32(p.id),
		PartitionEpoch: ch.PartitionEpoch, Broker: int32(ch.Replica)}
	if ch.Op == replica.ISRExpand {
		c.Type = controller.CmdExpandISR
	}
	s.log.Info("proposing an ISR change", "topic", p.topic.name, "partition", p.id, "op", ch.Op.String(),
		"replica", ch.Replica, "partition_epoch", ch.PartitionEpoch)
	go func() {
		for pause := 50 * time.Millisecond; ; pause = min(2*pause, 2*time.Second) {
			if c.Type == controller.CmdExpandISR {
				c.BrokerEpoch = s.brokerEpoch(c.Broker)
			}
			ctx, cancel := s.stopContext(proposeTimeout)
			_, err := s.propose(ctx, c)
			cancel()
			switch {
			case err == nil:
				s.metrics.isrChanged(ch.Op)
				return
			case s.cl.stopping():
				return
			case errors.Is(err, controller.ErrNoLeader), errors.Is(err, errControllerBusy),
				errors.Is(err, context.DeadlineExceeded):
			default: // refused: the replica learns it
				s.log.Info("ISR change refused", "topic", p.topic.name, "partition", p.id, "op", ch.Op.String(),
					"replica", ch.Replica, "err", err)
				owner.mb.post(message{kind: msgISRRefused, part: p, idx: ch.PartitionEpoch})
				return
			}
			select {
			case <-s.cl.stop:
				return
			case <-time.After(pause):
			}
		}
	}()
}

// brokerEpoch is the epoch of broker id's registration in the applied
// state (0: unknown).
func (s *Server) brokerEpoch(id int32) uint64 {
	for _, b := range s.cl.ctrl().State().Brokers() {
		if b.ID == id {
			return b.Epoch
		}
	}
	return 0
}

// onISRRefused tells p's replica that its proposal at partition epoch pe
// was refused (on the owner).
func (r *Reactor) onISRRefused(p *partition, pe int32) {
	if p.deleted {
		return
	}
	p.rep.ISRChangeRefused(pe)
	r.touch(p)
}
