package reactor

import (
	"errors"
	"fmt"

	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/stats"
	"github.com/ringmq/ringmq/storage"
	"github.com/ringmq/ringmq/storage/metalog"
)

// The admin goroutine serialises the requests that change metadata or do
// slow I/O outside the reactors: topic creation, deletion and changes (the
// metadata store fsyncs). Consumer groups and their commits have their own
// goroutine (group.go). It reads the request's body, which
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
	s.groups.topicDeleted(name)
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
