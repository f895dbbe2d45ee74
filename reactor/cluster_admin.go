package reactor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/controller"
	"github.com/ringmq/ringmq/proto"
)

// Topic administration through the controller. The admin goroutine checks
// a request, then a goroutine of its own proposes the change (any node
// may: Raft forwards a proposal to the controller leader) and waits until
// the change is applied here; the admin goroutine then reconciles, so the
// change is in effect on this node, and answers. No reactor waits: the
// request's origin gets the answer through its mailbox.

// proposal is a finished proposal on its way back to the admin goroutine.
type proposal struct {
	err     error
	retried bool // more than one attempt: the first may have taken effect
	done    func(proposal)
}

var errControllerBusy = errors.New("too many requests are waiting for the controller")

// reply answers j from the admin goroutine (or a goroutine it started).
func (s *Server) reply(j adminJob, code proto.ErrorCode, resp proto.Message) {
	frame := proto.AppendResponse(nil, proto.ResponseHeader{CorrelationID: j.req.hdr.CorrelationID, Error: code}, resp)
	s.metrics.responseErrors(j.api, code, resp)
	j.origin.mb.post(message{kind: msgReply, req: j.req, frame: frame})
}

// acquire takes one of maxInFlight slots for a request that waits for the
// controller.
func (cl *cluster) acquire() bool {
	if cl.inFlight.Add(1) > maxInFlight {
		cl.inFlight.Add(-1)
		return false
	}
	return true
}

// startProposal runs run on a goroutine of its own and hands its outcome
// to done on the admin goroutine, after a reconcile.
func (s *Server) startProposal(run func(ctx context.Context) (retried bool, err error), done func(proposal)) {
	if !s.cl.acquire() {
		done(proposal{err: errControllerBusy})
		return
	}
	go func() {
		defer s.cl.inFlight.Add(-1)
		ctx, cancel := s.stopContext(proposeTimeout)
		retried, err := run(ctx)
		cancel()
		select {
		case s.cl.proposed <- proposal{err: err, retried: retried, done: done}:
		case <-s.adminDone:
		}
	}()
}

// proposeOne is a startProposal run function for one command.
func (s *Server) proposeOne(c controller.Command) func(ctx context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) { return s.propose(ctx, c) }
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (s *Server) createTopic(j adminJob) {
	var req proto.CreateTopicRequest
	if err := req.Decode(j.body); err != nil {
		s.reply(j, proto.InvalidRequest, nil)
		return
	}
	c, refused := s.createCommand(&req)
	if refused != nil {
		s.reply(j, proto.None, refused)
		return
	}
	s.startProposal(func(ctx context.Context) (bool, error) {
		retried, err := s.propose(ctx, c)
		if err == nil {
			s.awaitTopicOnBrokers(ctx, req.Name)
		}
		return retried, err
	}, func(p proposal) {
		code := controllerCode(p.err)
		if p.retried && code == proto.TopicExists {
			code = proto.None // the first attempt created it
		}
		if openErr := s.cl.openFailed[req.Name]; code == proto.None && openErr != nil {
			s.rollBackCreate(j, req.Name, openErr)
			return
		}
		resp := &proto.CreateTopicResponse{Error: code}
		if code != proto.None {
			resp.Message = errText(p.err)
		} else {
			s.log.Info("topic created", "topic", req.Name, "partitions", req.Partitions)
		}
		s.reply(j, proto.None, resp)
	})
}

// rollBackCreate deletes a topic just created whose partitions could not
// be opened here, then answers the create STORAGE_ERROR with why.
func (s *Server) rollBackCreate(j adminJob, name string, openErr error) {
	s.log.Warn("rolling back a topic create: its partitions did not open", "topic", name, "err", openErr)
	c := controller.Command{Type: controller.CmdDeleteTopic, Topic: name}
	s.startProposal(s.proposeOne(c), func(p proposal) {
		if p.err != nil {
			s.log.Error("roll back a failed topic create", "topic", name, "err", p.err)
		}
		s.reply(j, proto.None, &proto.CreateTopicResponse{Error: proto.StorageError,
			Message: fmt.Sprintf("create partitions: %v", openErr)})
	})
}

// createCommand checks a CreateTopic request and returns its command, or
// the response that refuses it.
func (s *Server) createCommand(req *proto.CreateTopicRequest) (controller.Command, *proto.CreateTopicResponse) {
	fail := func(code proto.ErrorCode, format string, args ...any) (controller.Command, *proto.CreateTopicResponse) {
		return controller.Command{}, &proto.CreateTopicResponse{Error: code, Message: fmt.Sprintf(format, args...)}
	}
	if !proto.ValidName([]byte(req.Name)) {
		return fail(proto.InvalidTopicName, "topic name %q: use 1-249 characters of [a-zA-Z0-9._-]", req.Name)
	}
	if req.Partitions == 0 || req.Partitions > maxPartitions || req.Partitions > controller.MaxPartitions {
		return fail(proto.InvalidPartitions, "partitions %d: must be 1..%d", req.Partitions, min(maxPartitions, controller.MaxPartitions))
	}
	kv := make(map[string]string, len(req.Configs))
	for _, c := range req.Configs {
		kv[c.Key] = c.Value
	}
	overrides, err := config.ParseTopicOverrides(kv)
	if err != nil {
		return fail(proto.InvalidConfig, "%v", err)
	}
	if s.topics.Load().byName[req.Name] != nil {
		return fail(proto.TopicExists, "topic %q already exists", req.Name)
	}
	rf := int(req.ReplicationFactor)
	if rf == 0 {
		rf = s.cfg.Cluster.ReplicationFactor
	}
	if code, msg := s.checkReplicationFactor(rf); code != proto.None {
		return fail(code, "%s", msg)
	}
	return controller.Command{Type: controller.CmdCreateTopic, Topic: req.Name, Partitions: int32(req.Partitions),
		Replicas: int32(rf), Configs: configEntries(overrides.Overrides())}, nil
}

// checkReplicationFactor refuses a replication factor above the live
// brokers, and (until data replication is built) any above 1. While the
// cluster is forming (no controller leader, no broker registered) the
// answer is the retriable CONTROLLER_NOT_AVAILABLE.
func (s *Server) checkReplicationFactor(rf int) (proto.ErrorCode, string) {
	alive := 0
	for _, b := range s.cl.ctrl().State().Brokers() {
		if b.Alive {
			alive++
		}
	}
	switch {
	case s.cl.ctrl().Status().Leader == 0:
		return proto.ControllerNotAvailable, "no controller leader is elected yet; retry"
	case alive == 0:
		return proto.ControllerNotAvailable, "no broker has registered with the controller yet; retry"
	case rf < 1 || rf > controller.MaxReplicas:
		return proto.InvalidReplicationFactor, fmt.Sprintf("replication factor %d: must be 1..%d", rf, controller.MaxReplicas)
	case rf > alive:
		return proto.InvalidReplicationFactor, fmt.Sprintf("replication factor %d > %d live brokers", rf, alive)
	case rf > 1:
		return proto.InvalidReplicationFactor, fmt.Sprintf("replication factor %d: replication is not built yet; "+
			"topics take replication factor 1 for now", rf)
	}
	return proto.None, ""
}

func (s *Server) deleteTopic(j adminJob) {
	var req proto.DeleteTopicRequest
	if err := req.Decode(j.body); err != nil {
		s.reply(j, proto.InvalidRequest, nil)
		return
	}
	if s.topics.Load().byName[req.Name] == nil {
		s.reply(j, proto.None, &proto.DeleteTopicResponse{Error: proto.UnknownTopic})
		return
	}
	c := controller.Command{Type: controller.CmdDeleteTopic, Topic: req.Name}
	s.startProposal(s.proposeOne(c), func(p proposal) {
		code := controllerCode(p.err)
		if p.retried && code == proto.UnknownTopic {
			code = proto.None // the first attempt deleted it
		}
		if code != proto.None {
			s.log.Warn("delete topic", "topic", req.Name, "err", p.err)
		}
		s.reply(j, proto.None, &proto.DeleteTopicResponse{Error: code})
	})
}

// alterTopic sets or (with an empty value) removes configuration
// overrides of a topic, validated as CreateTopic validates them, and
// proposes the whole new set.
func (s *Server) alterTopic(j adminJob) {
	var req proto.AlterTopicRequest
	if err := req.Decode(j.body); err != nil {
		s.reply(j, proto.InvalidRequest, nil)
		return
	}
	answer := func(code proto.ErrorCode, msg string) {
		s.reply(j, proto.None, &proto.AlterTopicResponse{Error: code, Message: msg})
	}
	ti := s.topics.Load().byName[req.Name]
	if ti == nil {
		answer(proto.UnknownTopic, fmt.Sprintf("topic %q does not exist", req.Name))
		return
	}
	if len(req.Configs) == 0 {
		answer(proto.InvalidConfig, "no configuration key given")
		return
	}
	kv := ti.overrides.Overrides()
	given := make(map[string]string, len(req.Configs))
	for _, c := range req.Configs {
		key, ok := config.TopicKey(c.Key)
		if !ok {
			answer(proto.InvalidConfig, (&config.KeyError{Key: c.Key, Err: config.ErrUnknownKey}).Error())
			return
		}
		if other, dup := given[key]; dup {
			answer(proto.InvalidConfig, fmt.Sprintf("%s given twice (as %s and %s)", key, other, c.Key))
			return
		}
		given[key] = c.Key
		if c.Value == "" {
			delete(kv, key)
		} else {
			kv[key] = c.Value
		}
	}
	overrides, err := config.ParseTopicOverrides(kv)
	if err != nil {
		answer(proto.InvalidConfig, err.Error())
		return
	}
	c := controller.Command{Type: controller.CmdAlterTopic, Topic: req.Name, Configs: configEntries(overrides.Overrides())}
	s.startProposal(s.proposeOne(c), func(p proposal) {
		code := controllerCode(p.err)
		if code == proto.None {
			s.log.Info("topic altered", "topic", req.Name, "overrides", overrides.Overrides())
		}
		answer(code, errText(p.err))
	})
}

// addPartitions grows a topic to req.Partitions partitions, placed by the
// controller with the replication factor of the topic's first partition.
func (s *Server) addPartitions(j adminJob) {
	var req proto.AddPartitionsRequest
	if err := req.Decode(j.body); err != nil {
		s.reply(j, proto.InvalidRequest, nil)
		return
	}
	answer := func(code proto.ErrorCode, msg string) {
		s.reply(j, proto.None, &proto.AddPartitionsResponse{Error: code, Message: msg})
	}
	ti := s.topics.Load().byName[req.Name]
	switch {
	case ti == nil:
		answer(proto.UnknownTopic, fmt.Sprintf("topic %q does not exist", req.Name))
		return
	case req.Partitions <= ti.partitions:
		answer(proto.InvalidPartitions, fmt.Sprintf("topic %q has %d partitions; the new count %d must be larger (partitions are never removed)",
			req.Name, ti.partitions, req.Partitions))
		return
	case req.Partitions > maxPartitions || req.Partitions > controller.MaxPartitions:
		answer(proto.InvalidPartitions, fmt.Sprintf("partitions %d: must be 1..%d", req.Partitions, min(maxPartitions, controller.MaxPartitions)))
		return
	}
	rf := 1
	if len(ti.lead) > 0 {
		rf = max(len(ti.lead[0].replicas), 1)
	}
	if code, msg := s.checkReplicationFactor(rf); code != proto.None {
		answer(code, msg)
		return
	}
	was := ti.partitions
	c := controller.Command{Type: controller.CmdAddPartitions, Topic: req.Name, Partitions: int32(req.Partitions), Replicas: int32(rf)}
	s.startProposal(s.proposeOne(c), func(p proposal) {
		code := controllerCode(p.err)
		if cur := s.topics.Load().byName[req.Name]; p.retried && code == proto.InvalidRequest && cur != nil && cur.partitions == req.Partitions {
			code = proto.None // the first attempt added them
		}
		if code == proto.InvalidRequest {
			code = proto.InvalidPartitions
		}
		if code == proto.None {
			s.log.Info("partitions added", "topic", req.Name, "partitions", req.Partitions, "was", was)
		}
		answer(code, errText(p.err))
	})
}

// autoCreate creates the named topics that do not exist yet with
// topics.default_partitions and the server's defaults (topics.auto_create),
// then hands the request back to its origin.
func (s *Server) autoCreate(j adminJob) {
	var cmds []controller.Command
	for _, name := range j.topics {
		if s.topics.Load().byName[name] != nil {
			continue
		}
		c, refused := s.createCommand(&proto.CreateTopicRequest{Name: name, Partitions: uint32(s.cfg.Topics.DefaultPartitions)})
		if refused != nil {
			if refused.Error != proto.TopicExists {
				s.log.Warn("auto-create topic", "topic", name, "err", refused.Error, "message", refused.Message)
			}
			continue
		}
		cmds = append(cmds, c)
	}
	redispatch := func(proposal) { j.origin.mb.post(message{kind: msgRedispatch, req: j.req}) }
	if len(cmds) == 0 {
		redispatch(proposal{})
		return
	}
	s.startProposal(func(ctx context.Context) (bool, error) {
		for _, c := range cmds {
			if _, err := s.propose(ctx, c); err != nil && !errors.Is(err, controller.ErrTopicExists) {
				s.log.Warn("auto-create topic", "topic", c.Topic, "err", err)
			}
		}
		return false, nil
	}, redispatch)
}

// awaitTopicOnBrokers waits, for at most topicSpreadTimeout, until every
// other alive broker describes the new topic, so that a client that asks
// any live node right after the create finds it. A broker that cannot be
// asked (down, not yet fenced) or does not know the topic in time is left
// behind (its clients see UNKNOWN_TOPIC a moment longer).
func (s *Server) awaitTopicOnBrokers(ctx context.Context, topic string) {
	deadline := time.Now().Add(topicSpreadTimeout)
	for _, b := range s.cl.ctrl().State().Brokers() {
		if !b.Alive || uint32(b.ID) == s.cl.self {
			continue
		}
		pc := peerConn{tls: s.peerTLS}
		for time.Now().Before(deadline) && ctx.Err() == nil {
			var resp proto.DescribeTopicResponse
			err := pc.call(b.Addr, &proto.DescribeTopicRequest{Name: topic}, &resp)
			if err != nil || resp.Error == proto.None {
				break // it knows the topic, or cannot be asked (down): do not wait for it
			}
			time.Sleep(10 * time.Millisecond) // polling interval, bounded by the deadline
		}
		pc.close()
	}
}

// topicSpreadTimeout bounds awaitTopicOnBrokers.
const topicSpreadTimeout = 3 * time.Second
