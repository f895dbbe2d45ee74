package reactor

import (
	"errors"

	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/storage"
)

// The admin goroutine serialises the requests that change metadata or do
// slow I/O outside the reactors: topic changes (proposed to the controller,
// cluster_admin.go) and the reconciling of the topic table with the controller's state
// (cluster_reconcile.go); consumer groups and their commits have their
// own goroutine (group.go). It reads the request's body, which its origin
// does not touch until the answer comes back through the origin's mailbox.

type adminJob struct {
	origin *Reactor
	req    *request
	api    proto.APIKey
	body   []byte
	// topics to create before the request is dispatched again (auto_create).
	topics []string
}

// apiAutoCreate marks an internal admin job: create topics, then hand the
// request back to its origin. It never appears on the wire.
const apiAutoCreate proto.APIKey = 0xffff

const maxPartitions = 100_000

func (s *Server) postAdmin(j adminJob) {
	select {
	case s.adminCh <- j:
	default:
		// The admin queue is full: answer at once rather than block a reactor.
		frame := proto.AppendResponse(nil, proto.ResponseHeader{CorrelationID: j.req.hdr.CorrelationID, Error: proto.RequestTimedOut}, nil)
		s.metrics.responseErrors(j.req.hdr.API, proto.RequestTimedOut, nil)
		j.origin.respondRaw(j.req, frame)
	}
}

func (s *Server) adminLoop() {
	defer close(s.adminDone)
	changed := s.cl.ctrl().Changed()
	for {
		select {
		case j, ok := <-s.adminCh:
			if !ok {
				return
			}
			s.runAdminJob(j)
		case <-changed:
			changed = s.cl.ctrl().Changed()
			s.reconcileUnlessStopping()
		case <-s.cl.reopened:
			changed = s.cl.ctrl().Changed()
			s.reconcileUnlessStopping()
		case p := <-s.cl.proposed:
			s.reconcileUnlessStopping()
			p.done(p)
		}
	}
}

// runAdminJob answers j, or starts what will (topic changes and
// heartbeats wait for the controller on goroutines of their own).
func (s *Server) runAdminJob(j adminJob) {
	switch j.api {
	case apiAutoCreate:
		s.autoCreate(j)
	case proto.APICreateTopic:
		s.createTopic(j)
	case proto.APIDeleteTopic:
		s.deleteTopic(j)
	case proto.APIAlterTopic:
		s.alterTopic(j)
	case proto.APIAddPartitions:
		s.addPartitions(j)
	case proto.APIBrokerHeartbeat:
		if !s.cl.acquire() {
			s.reply(j, proto.None, &proto.BrokerHeartbeatResponse{Error: proto.ControllerNotAvailable})
			return
		}
		go s.serveHeartbeat(j)
	case proto.APIAlterUser, proto.APIListUsers, proto.APIACLs:
		s.runSecurityAdmin(j)
	default:
		code, resp := s.runAdmin(j)
		s.reply(j, code, resp)
	}
}

func (s *Server) runAdmin(j adminJob) (proto.ErrorCode, proto.Message) {
	switch j.api {
	case proto.APIInitProducer:
		return s.initProducer(j.body)
	}
	return proto.UnsupportedAPI, nil
}

// dropLogs has every reactor stop serving ti's partitions and hand their
// logs back (msgDrop, no I/O there), then deletes the logs here.
func (s *Server) dropLogs(ti *topicInfo) error {
	u := &topicUpdate{ti: ti, logs: make([]*storage.Log, ti.partitions)}
	done := make(chan error, len(s.reactors))
	for _, r := range s.reactors {
		r.mb.post(message{kind: msgDrop, update: u, done: done})
	}
	for range s.reactors {
		<-done
	}
	var errs []error
	for _, lg := range u.logs {
		if lg == nil {
			continue
		}
		if err := s.store.DeleteLog(lg); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
