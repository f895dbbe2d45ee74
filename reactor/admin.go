package reactor

import (
	"errors"
	"fmt"
	"time"

	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/stats"
	"github.com/ringmq/ringmq/storage"
	"github.com/ringmq/ringmq/storage/metalog"
)

// The admin goroutine serialises the requests that change metadata or do
// slow I/O outside the reactors: topic creation and deletion and consumer
// offsets (the metadata store fsyncs). It reads the request's body, which
// its origin does not touch until the answer comes back through the
// origin's mailbox.

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
	for j := range s.adminCh {
		if j.api == apiAutoCreate {
			s.autoCreate(j.topics)
			j.origin.mb.post(message{kind: msgRedispatch, req: j.req})
			continue
		}
		code, resp := s.runAdmin(j)
		frame := proto.AppendResponse(nil, proto.ResponseHeader{CorrelationID: j.req.hdr.CorrelationID, Error: code}, resp)
		s.metrics.responseErrors(j.api, code, resp)
		j.origin.mb.post(message{kind: msgReply, req: j.req, frame: frame})
	}
}

func (s *Server) runAdmin(j adminJob) (proto.ErrorCode, proto.Message) {
	switch j.api {
	case proto.APICreateTopic:
		var req proto.CreateTopicRequest
		if err := req.Decode(j.body); err != nil {
			return proto.InvalidRequest, nil
		}
		resp := s.createTopic(&req)
		return proto.None, resp
	case proto.APIDeleteTopic:
		var req proto.DeleteTopicRequest
		if err := req.Decode(j.body); err != nil {
			return proto.InvalidRequest, nil
		}
		return proto.None, &proto.DeleteTopicResponse{Error: s.deleteTopic(req.Name)}
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
	case proto.APIAlterTopic, proto.APIAddPartitions:
		return s.runAlter(j)
	case proto.APIInitProducer:
		return s.initProducer(j.body)
	}
	return proto.UnsupportedAPI, nil
}

func (s *Server) createTopic(req *proto.CreateTopicRequest) *proto.CreateTopicResponse {
	fail := func(code proto.ErrorCode, format string, args ...any) *proto.CreateTopicResponse {
		return &proto.CreateTopicResponse{Error: code, Message: fmt.Sprintf(format, args...)}
	}
	if !proto.ValidName([]byte(req.Name)) {
		return fail(proto.InvalidTopicName, "topic name %q: use 1-249 characters of [a-zA-Z0-9._-]", req.Name)
	}
	if req.Partitions == 0 || req.Partitions > maxPartitions {
		return fail(proto.InvalidPartitions, "partitions %d: must be 1..%d", req.Partitions, maxPartitions)
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
	ti := s.newTopicInfo(req.Name, req.Partitions, overrides)
	// The logs are created here, off the reactors, and handed to them open.
	logs, err := s.openNewLogs(ti, 0)
	if err == nil {
		if err = s.meta.PutTopic(req.Name, encodeTopic(req.Partitions, overrides)); err != nil {
			s.discardLogs(logs)
			err = fmt.Errorf("persist topic: %w", err)
		}
	} else {
		err = fmt.Errorf("create partitions: %w", err)
	}
	if err != nil {
		s.metrics.dropTopic(req.Name)
		if err := s.store.RemoveTopicDir(req.Name); err != nil {
			s.log.Error("remove the directory of a failed topic create", "topic", req.Name, "err", err)
		}
		return fail(proto.StorageError, "%v", err)
	}
	if err := s.replaceTopic(&topicUpdate{ti: ti, logs: logs}); err != nil {
		s.log.Error("install the partitions of a new topic", "topic", req.Name, "err", err)
	}
	s.log.Info("topic created", "topic", req.Name, "partitions", req.Partitions)
	return &proto.CreateTopicResponse{}
}

// autoCreate creates the named topics that do not exist yet with
// topics.default_partitions and the server's defaults (topics.auto_create).
func (s *Server) autoCreate(names []string) {
	for _, name := range names {
		if s.topics.Load().byName[name] != nil {
			continue
		}
		resp := s.createTopic(&proto.CreateTopicRequest{Name: name, Partitions: uint32(s.cfg.Topics.DefaultPartitions)})
		if resp.Error != proto.None && resp.Error != proto.TopicExists {
			s.log.Warn("auto-create topic", "topic", name, "err", resp.Error, "message", resp.Message)
		}
	}
}

func (s *Server) deleteTopic(name string) proto.ErrorCode {
	ti := s.topics.Load().byName[name]
	if ti == nil {
		return proto.UnknownTopic
	}
	s.topics.Store(s.topics.Load().without(name))
	if err := s.meta.DeleteTopic(name); err != nil {
		s.log.Error("delete topic metadata", "topic", name, "err", err)
		return proto.StorageError
	}
	if err := s.dropLogs(ti); err != nil {
		s.log.Error("delete topic partitions", "topic", name, "err", err)
		return proto.StorageError
	}
	// A topic created later under the same name starts with no commits.
	for _, g := range s.meta.ListGroups() {
		for _, po := range s.meta.GroupOffsets(g) {
			if po.Topic != name {
				continue
			}
			if err := s.meta.DeleteOffset(g, name, po.Partition); err != nil {
				s.log.Error("delete committed offset of a deleted topic", "group", g, "topic", name, "err", err)
			}
		}
	}
	s.metrics.dropTopic(name)
	s.log.Info("topic deleted", "topic", name)
	return proto.None
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

func (s *Server) newTopicInfo(name string, partitions uint32, overrides config.TopicConfig) *topicInfo {
	return &topicInfo{
		name:       name,
		partitions: partitions,
		cfg:        overrides.Resolve(s.cfg.Storage.TopicDefaults()),
		overrides:  overrides,
		shards:     assignShards(name, partitions, len(s.reactors)),
		shared:     newShared(partitions, nil),
		stats:      stats.ForTopic(name),
	}
}

// encodeTopic and decodeTopic convert a topic to and from its record in
// the metadata store; the format lives in metalog (TopicRecord).
func encodeTopic(partitions uint32, t config.TopicConfig) []byte {
	return metalog.AppendTopicRecord(nil, metalog.TopicRecord{Partitions: partitions, Overrides: t})
}

func decodeTopic(name string, b []byte, reactors int) (*topicInfo, error) {
	r, _, err := metalog.ParseTopicRecord(b)
	if err != nil {
		return nil, err
	}
	return &topicInfo{name: name, partitions: r.Partitions, overrides: r.Overrides,
		shards: assignShards(name, r.Partitions, reactors), shared: newShared(r.Partitions, nil),
		stats: stats.ForTopic(name)}, nil
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
