package reactor

import (
	"errors"
	"time"

	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/storage"
	"github.com/ringmq/ringmq/storage/metalog"
)

// The admin goroutine serialises the requests that change metadata or do
// slow I/O outside the reactors: topic changes (proposed to the controller,
// cluster_admin.go), consumer offsets (the metadata store fsyncs), and the
// reconciling of the topic table with the controller's state
// (cluster_reconcile.go). It reads the request's body, which its origin
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
	default:
		code, resp := s.runAdmin(j)
		s.reply(j, code, resp)
	}
}

func (s *Server) runAdmin(j adminJob) (proto.ErrorCode, proto.Message) {
	switch j.api {
	case proto.APIOffsetCommit:
		var req proto.OffsetCommitRequest
		if err := req.Decode(j.body); err != nil {
			return proto.InvalidRequest, nil
		}
		return s.offsetCommit(&req)
	case proto.APIOffsetFetch:
		var req proto.OffsetFetchRequest
		if err := req.Decode(j.body); err != nil {
			return proto.InvalidRequest, nil
		}
		return s.offsetFetch(&req)
	case proto.APIListGroups:
		var req proto.ListGroupsRequest
		if err := req.Decode(j.body); err != nil {
			return proto.InvalidRequest, nil
		}
		return s.listGroups(&req)
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

func (s *Server) offsetCommit(req *proto.OffsetCommitRequest) (proto.ErrorCode, proto.Message) {
	if !proto.ValidName(req.Group) {
		return proto.InvalidGroupName, nil
	}
	group := string(req.Group)
	tt := s.topics.Load()
	now := time.Now().UnixMilli()
	resp := &proto.OffsetCommitResponse{Topics: make([]proto.OffsetCommitTopicResponse, len(req.Topics))}
	for i, t := range req.Topics {
		rt := &resp.Topics[i]
		rt.Name = t.Name
		info := tt.lookup(t.Name)
		for _, p := range t.Partitions {
			_, code := partOwner(info, p.Partition)
			if code == proto.None && p.Offset > info.shared[p.Partition].logEnd.Load() {
				// Kafka semantics: the committed offset is the next one to
				// read, so the log end itself is the highest valid commit.
				code = proto.OffsetOutOfRange
			}
			if code == proto.None {
				c := metalog.OffsetCommit{Offset: p.Offset, Metadata: string(p.Metadata), CommitTimeMs: now}
				if err := s.meta.CommitOffset(group, info.name, p.Partition, c); err != nil {
					code = proto.StorageError
				} else {
					s.metrics.committed(group, info, p.Partition, p.Offset)
				}
			}
			rt.Partitions = append(rt.Partitions, proto.PartitionError{Partition: p.Partition, Error: code})
		}
	}
	return proto.None, resp
}

func (s *Server) offsetFetch(req *proto.OffsetFetchRequest) (proto.ErrorCode, proto.Message) {
	if !proto.ValidName(req.Group) {
		return proto.InvalidGroupName, nil
	}
	group := string(req.Group)
	resp := &proto.OffsetFetchResponse{}
	if len(req.Topics) == 0 {
		byTopic := map[string]int{}
		for _, po := range s.meta.GroupOffsets(group) {
			i, ok := byTopic[po.Topic]
			if !ok {
				i = len(resp.Topics)
				byTopic[po.Topic] = i
				resp.Topics = append(resp.Topics, proto.OffsetFetchTopicResponse{Name: []byte(po.Topic)})
			}
			resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, proto.OffsetFetchPartitionResponse{
				Partition: po.Partition, Offset: po.Offset, Metadata: []byte(po.Metadata), CommitTimeMs: po.CommitTimeMs})
		}
		return proto.None, resp
	}
	for _, t := range req.Topics {
		rt := proto.OffsetFetchTopicResponse{Name: t.Name}
		for _, p := range t.Partitions {
			pr := proto.OffsetFetchPartitionResponse{Partition: p, Offset: proto.NoOffset}
			if c, ok := s.meta.FetchOffset(group, string(t.Name), p); ok {
				pr.Offset, pr.Metadata, pr.CommitTimeMs = c.Offset, []byte(c.Metadata), c.CommitTimeMs
			}
			rt.Partitions = append(rt.Partitions, pr)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return proto.None, resp
}

func (s *Server) listGroups(req *proto.ListGroupsRequest) (proto.ErrorCode, proto.Message) {
	if req.Group != "" && !proto.ValidName([]byte(req.Group)) {
		return proto.InvalidGroupName, nil
	}
	tt := s.topics.Load()
	resp := &proto.ListGroupsResponse{}
	for _, g := range s.meta.ListGroups() {
		if req.Group != "" && req.Group != g {
			continue
		}
		gi := proto.GroupInfo{Name: g}
		for _, po := range s.meta.GroupOffsets(g) {
			if n := len(gi.Topics); n == 0 || gi.Topics[n-1].Name != po.Topic {
				gi.Topics = append(gi.Topics, proto.GroupTopic{Name: po.Topic})
			}
			gp := proto.GroupPartition{Partition: po.Partition, Committed: po.Offset}
			if info := tt.byName[po.Topic]; info != nil && po.Partition < info.partitions {
				gp.LogEnd = info.shared[po.Partition].logEnd.Load()
				if gp.LogEnd > gp.Committed {
					gp.Lag = gp.LogEnd - gp.Committed
				}
			}
			gt := &gi.Topics[len(gi.Topics)-1]
			gt.Partitions = append(gt.Partitions, gp)
		}
		resp.Groups = append(resp.Groups, gi)
	}
	if req.Group != "" && len(resp.Groups) == 0 {
		return proto.GroupNotFound, nil
	}
	return proto.None, resp
}
