package reactor

import (
	"errors"
	"fmt"
	"sync"

	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/storage"
)

// AlterTopic and AddPartitions, on the admin goroutine. Both persist the
// topic's new record in the metadata store, then replace its topicInfo:
// every reactor is sent a topicUpdate (msgUpdateTopic) that points its
// partitions of the topic at the new description and applies the new
// configuration to their logs, which does no I/O. New partitions' logs are
// created here, on the admin goroutine, and handed over open, so no
// reactor makes a file syscall for them.

// topicUpdate replaces an open topic's description. logs[p] is the open
// log of a new partition p (nil for the partitions that already existed).
type topicUpdate struct {
	ti   *topicInfo
	logs []*storage.Log
}

func (s *Server) runAlter(j adminJob) (proto.ErrorCode, proto.Message) {
	switch j.api {
	case proto.APIAlterTopic:
		var req proto.AlterTopicRequest
		if err := req.Decode(j.body); err != nil {
			return proto.InvalidRequest, nil
		}
		code, msg := s.alterTopic(&req)
		return proto.None, &proto.AlterTopicResponse{Error: code, Message: msg}
	case proto.APIAddPartitions:
		var req proto.AddPartitionsRequest
		if err := req.Decode(j.body); err != nil {
			return proto.InvalidRequest, nil
		}
		code, msg := s.addPartitions(&req)
		return proto.None, &proto.AddPartitionsResponse{Error: code, Message: msg}
	}
	return proto.UnsupportedAPI, nil
}

// alterTopic sets or (with an empty value) removes configuration
// overrides of a topic, validated as CreateTopic validates them.
func (s *Server) alterTopic(req *proto.AlterTopicRequest) (proto.ErrorCode, string) {
	ti := s.topics.Load().byName[req.Name]
	if ti == nil {
		return proto.UnknownTopic, fmt.Sprintf("topic %q does not exist", req.Name)
	}
	if len(req.Configs) == 0 {
		return proto.InvalidConfig, "no configuration key given"
	}
	kv := ti.overrides.Overrides()
	given := make(map[string]string, len(req.Configs))
	for _, c := range req.Configs {
		key, ok := config.TopicKey(c.Key)
		if !ok {
			return proto.InvalidConfig, (&config.KeyError{Key: c.Key, Err: config.ErrUnknownKey}).Error()
		}
		if other, dup := given[key]; dup {
			return proto.InvalidConfig, fmt.Sprintf("%s given twice (as %s and %s)", key, other, c.Key)
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
		return proto.InvalidConfig, err.Error()
	}
	if err := s.meta.PutTopic(ti.name, encodeTopic(ti.partitions, overrides)); err != nil {
		return proto.StorageError, fmt.Sprintf("persist topic: %v", err)
	}
	if err := s.replaceTopic(&topicUpdate{ti: s.nextTopicInfo(ti, ti.partitions, overrides)}); err != nil {
		return proto.StorageError, fmt.Sprintf("apply configuration: %v", err)
	}
	s.log.Info("topic altered", "topic", ti.name, "overrides", overrides.Overrides())
	return proto.None, ""
}

// addPartitions grows a topic to req.Partitions partitions.
func (s *Server) addPartitions(req *proto.AddPartitionsRequest) (proto.ErrorCode, string) {
	ti := s.topics.Load().byName[req.Name]
	switch {
	case ti == nil:
		return proto.UnknownTopic, fmt.Sprintf("topic %q does not exist", req.Name)
	case req.Partitions <= ti.partitions:
		return proto.InvalidPartitions, fmt.Sprintf("topic %q has %d partitions; the new count %d must be larger (partitions are never removed)",
			req.Name, ti.partitions, req.Partitions)
	case req.Partitions > maxPartitions:
		return proto.InvalidPartitions, fmt.Sprintf("partitions %d: must be 1..%d", req.Partitions, maxPartitions)
	}
	next := s.nextTopicInfo(ti, req.Partitions, ti.overrides)
	logs, err := s.openNewLogs(next, ti.partitions)
	if err != nil {
		return proto.StorageError, fmt.Sprintf("create partitions: %v", err)
	}
	if err := s.meta.PutTopic(ti.name, encodeTopic(req.Partitions, ti.overrides)); err != nil {
		s.discardLogs(logs)
		return proto.StorageError, fmt.Sprintf("persist topic: %v", err)
	}
	if err := s.replaceTopic(&topicUpdate{ti: next, logs: logs}); err != nil {
		return proto.StorageError, fmt.Sprintf("apply: %v", err)
	}
	s.log.Info("partitions added", "topic", ti.name, "partitions", req.Partitions, "was", ti.partitions)
	return proto.None, ""
}

// nextTopicInfo is the description that replaces ti: the same name,
// shards of existing partitions (assignShards keeps a prefix) and
// published state, with the new count and overrides.
func (s *Server) nextTopicInfo(ti *topicInfo, partitions uint32, overrides config.TopicConfig) *topicInfo {
	return &topicInfo{
		name:       ti.name,
		partitions: partitions,
		cfg:        overrides.Resolve(s.cfg.Storage.TopicDefaults()),
		overrides:  overrides,
		shards:     assignShards(ti.name, partitions, len(s.reactors)),
		shared:     newShared(partitions, ti.shared),
		stats:      ti.stats,
	}
}

// openNewLogs opens (creating) the logs of ti's partitions from first on,
// off the reactors (see openLogs); on a failure it deletes those it opened.
func (s *Server) openNewLogs(ti *topicInfo, first uint32) ([]*storage.Log, error) {
	logs, err := s.openLogs(ti, first)
	if err != nil {
		s.discardLogs(logs)
		return nil, err
	}
	return logs, nil
}

// openLogs opens (creating when not on disk) the logs of ti's partitions
// from first on, on the calling goroutine and one helper goroutine per
// reactor shard, never on a reactor: opening makes directories, files and
// checkpoints and fsyncs them, and recovery reads whole segments. A shard
// stops at its first failure; the logs it opened stay in the result
// (nil where not opened), with every shard's error joined.
func (s *Server) openLogs(ti *topicInfo, first uint32) ([]*storage.Log, error) {
	logs := make([]*storage.Log, ti.partitions)
	errs := make([]error, len(s.reactors))
	lc := s.logConfig(ti.cfg)
	var wg sync.WaitGroup
	for shard := range s.reactors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := first; id < ti.partitions; id++ {
				if int(ti.shards[id]) != shard {
					continue
				}
				lg, err := s.store.OpenLog(ti.name, id, lc)
				if err != nil {
					errs[shard] = fmt.Errorf("partition %d: %w", id, err)
					return
				}
				s.recoverProducers(lg)
				logs[id] = lg
			}
		}()
	}
	wg.Wait()
	return logs, errors.Join(errs...)
}

// closeLogs closes logs opened by openLogs that no reactor serves.
func (s *Server) closeLogs(logs []*storage.Log) {
	for _, lg := range logs {
		if lg != nil {
			lg.Close()
		}
	}
}

// discardLogs deletes logs opened by openNewLogs that were not handed to
// any reactor.
func (s *Server) discardLogs(logs []*storage.Log) {
	for _, lg := range logs {
		if lg == nil {
			continue
		}
		if err := s.store.DeleteLog(lg); err != nil {
			s.log.Error("remove a partition not added", "topic", lg.Topic(), "partition", lg.Partition(), "err", err)
		}
	}
}

// replaceTopic sends u to every reactor, waits for all, and publishes the
// new description. Reactors apply it without I/O; a failure (a log that
// refuses the new configuration) is reported, but the description is
// published anyway, as the metadata store already holds it.
func (s *Server) replaceTopic(u *topicUpdate) error {
	done := make(chan error, len(s.reactors))
	for _, r := range s.reactors {
		r.mb.post(message{kind: msgUpdateTopic, update: u, done: done})
	}
	var errs []error
	for range s.reactors {
		if err := <-done; err != nil {
			errs = append(errs, err)
		}
	}
	s.topics.Store(s.topics.Load().with(u.ti))
	return errors.Join(errs...)
}
