package reactor

import (
	"github.com/ringmq/ringmq/controller/driver"
	"github.com/ringmq/ringmq/proto"
)

// The cluster's requests served on a reactor, without waiting: ClusterStatus
// from the published cluster view and the driver's status (an atomic
// load), and RaftMessages handed to the driver's bounded inbox (a full
// inbox drops; Raft resends). BrokerHeartbeat goes to the admin goroutine.

func (r *Reactor) handleClusterStatus(q *request, body []byte) {
	var req proto.ClusterStatusRequest
	if err := req.Decode(body); err != nil {
		r.respondError(q, proto.InvalidRequest)
		return
	}
	cl := &r.srv.cl
	st := cl.ctrl().Status()
	v := cl.view.Load()
	r.respond(q, proto.None, &proto.ClusterStatusResponse{
		NodeID: cl.self, ControllerID: uint32(st.Leader), Term: st.Term,
		CommitIndex: st.Commit, AppliedIndex: st.Applied, Nodes: v.nodes,
		Topics: v.topics, Partitions: v.partitions, Offline: v.offline, UnderReplicated: v.underReplicated,
	})
}

// handleRaftMessages delivers a peer's Raft messages to the controller
// driver; the request is one-way.
func (r *Reactor) handleRaftMessages(q *request, body []byte) {
	var req proto.RaftMessagesRequest
	if err := req.Decode(body); err != nil {
		r.srv.log.Debug("bad RaftMessages request", "err", err)
		r.finishNoResponse(q)
		return
	}
	for _, b := range req.Messages {
		m, err := driver.UnmarshalMessage(b)
		if err != nil {
			r.srv.log.Debug("bad Raft message", "from", req.From, "err", err)
			continue
		}
		r.srv.cl.deliverRaft(m)
	}
	r.finishNoResponse(q)
}

// unknownTopicCode is the code for a topic missing from the topic table:
// LEADER_NOT_AVAILABLE (retriable) while the controller has it but this
// node is still opening its partitions (reconcile), else UNKNOWN_TOPIC.
// A lookup in the driver's published state: no wait.
func (s *Server) unknownTopicCode(name string) proto.ErrorCode {
	if _, ok := s.cl.ctrl().State().Topic(name); ok {
		return proto.LeaderNotAvailable
	}
	return proto.UnknownTopic
}
