package reactor

import (
	"errors"
	"fmt"
	"sync"

	"github.com/ringmq/ringmq/storage"
)

// Installing a changed topic, on the admin goroutine (see reconcile):
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

// openLogs opens (creating when not on disk) the logs of ti's partitions
// from first on that this node hosts, on the calling goroutine and one helper goroutine per
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
				if int(ti.shards[id]) != shard || !ti.hosts(id) {
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

// replaceTopic sends u to every reactor, waits for all, and publishes the
// new description. Reactors apply it without I/O; a failure (a log that
// refuses the new configuration) is reported, but the description is
// published anyway, as the controller already holds it.
func (s *Server) replaceTopic(u *topicUpdate) error {
	done := make(chan error, len(s.reactors))
	for _, r := range s.reactors {
		r.mb.post(message{kind: msgUpdateTopic, update: u, done: done})
	}
	var errs []error
	for _, r := range s.reactors {
		// A reactor that stopped (Shutdown under way while the controller
		// applied a topic) never answers.
		select {
		case err := <-done:
			if err != nil {
				errs = append(errs, err)
			}
		case <-r.stopped:
		}
	}
	s.topics.Store(s.topics.Load().with(u.ti))
	return errors.Join(errs...)
}
