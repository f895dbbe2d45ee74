package reactor

import (
	"fmt"
	"time"

	"github.com/ringmq/ringmq/replica"
	"github.com/ringmq/ringmq/stats"
	"github.com/ringmq/ringmq/storage"
)

// Fenced partitions resume by themselves. A failed write or fdatasync (a
// full disk, most often), a roll that could not create the next segment,
// or an open on a full disk fences a partition's log: reads go on, appends
// are refused with PARTITION_FENCED. Its owner keeps such partitions in
// r.fenced and, once nothing is in flight, asks the Store's background
// worker to repair and probe the files (storage.Log.StartResume); the
// worker posts the result back through the mailbox and the owner lifts the
// fence (FinishResume) or tries again later, backing off from
// resumeFirstDelay to resumeMaxDelay. The reactor thread makes no file
// system call for it.
const (
	resumeFirstDelay = 100 * time.Millisecond
	resumeMaxDelay   = 5 * time.Second
)

// noteFence starts retrying p if its log is fenced and p is not listed
// yet, and publishes the fence to /readyz and the metrics.
func (r *Reactor) noteFence(p *partition) {
	err := p.log.Err()
	if p.fenced || err == nil || p.deleted {
		return
	}
	p.fenced = true
	p.resumeDelay = resumeFirstDelay
	p.resumeAt = r.now.Add(p.resumeDelay)
	r.fenced = append(r.fenced, p)
	reason := err.Error()
	p.shared.fenceErr.Store(&reason)
	stats.PartitionFenced(1)
}

// unfence forgets p as fenced (it resumed, or is going away).
func (r *Reactor) unfence(p *partition) {
	if !p.fenced {
		return
	}
	p.fenced = false
	for i, q := range r.fenced {
		if q == p {
			r.fenced = append(r.fenced[:i], r.fenced[i+1:]...)
			break
		}
	}
	p.shared.fenceErr.Store(nil)
	stats.PartitionFenced(-1)
}

// retryFenced starts a resume for each fenced partition whose time came.
func (r *Reactor) retryFenced() {
	for _, p := range r.fenced {
		if p.resuming || r.now.Before(p.resumeAt) {
			continue
		}
		mb, part := r.mb, p
		if p.log.StartResume(func(res storage.ResumeResult) {
			mb.post(message{kind: msgResumed, part: part, resume: res})
		}) {
			p.resuming = true
			continue
		}
		p.resumeAt = r.now.Add(p.resumeDelay) // appends or a flush in flight
	}
}

// nextResume is when retryFenced has work next (zero: none).
func (r *Reactor) nextResume() time.Time {
	var next time.Time
	for _, p := range r.fenced {
		if !p.resuming && (next.IsZero() || p.resumeAt.Before(next)) {
			next = p.resumeAt
		}
	}
	return next
}

// onResumed applies a resume job's result on the owner.
func (r *Reactor) onResumed(p *partition, res storage.ResumeResult) {
	p.resuming = false
	if p.deleted || !p.fenced {
		return
	}
	if err := p.log.FinishResume(res); err != nil {
		if p.resumeDelay == resumeFirstDelay {
			r.srv.log.Warn("fenced partition cannot resume yet; retrying", "topic", p.topic.name,
				"partition", p.id, "err", err)
		}
		p.resumeDelay = min(2*p.resumeDelay, resumeMaxDelay)
		p.resumeAt = r.now.Add(p.resumeDelay)
		return
	}
	if p.log.Err() != nil {
		return // a stale result; the next try is already planned
	}
	// The replica takes the resumed log's offsets (nothing is in flight:
	// StartResume waited for that); appends still waiting for the HW fail,
	// waiters read again.
	if err := p.rep.Reset(replica.Offsets{LogStart: p.log.LogStart(), HighWatermark: p.rep.HighWatermark(),
		Flushed: p.log.FlushedOffset(), LogEnd: p.log.LogEnd()}); err != nil {
		panic(fmt.Sprintf("BUG: reactor: replica of resumed %s/%d: %v", p.topic.name, p.id, err))
	}
	r.touch(p)
	r.unfence(p)
	r.srv.log.Info("partition resumed", "topic", p.topic.name, "partition", p.id, "log_end", p.log.LogEnd())
}

// Ready reports nil when the server serves and every partition is open
// and takes writes; otherwise why not (/readyz).
func (s *Server) Ready() error {
	if err := s.Healthy(); err != nil {
		return err
	}
	if p := s.unserved.Load(); p != nil {
		return fmt.Errorf("partitions not served: %s", *p)
	}
	if err := s.controllerStopped(); err != nil {
		return err
	}
	fenced, first := 0, ""
	t := s.topics.Load()
	for _, name := range t.sortedNames() {
		ti := t.byName[name]
		for id := range ti.shared {
			if reason := ti.shared[id].fenceErr.Load(); reason != nil {
				if fenced == 0 {
					first = fmt.Sprintf("%s/%d: %s", name, id, *reason)
				}
				fenced++
			}
		}
	}
	if fenced > 0 {
		return fmt.Errorf("%d partition(s) fenced, refusing writes; first %s", fenced, first)
	}
	return nil
}

// noteUnserved records a topic whose partitions could not be opened at
// start, for /readyz.
func (s *Server) noteUnserved(topic string, err error) {
	reason := fmt.Sprintf("%s: %v", topic, err)
	s.unserved.CompareAndSwap(nil, &reason)
}
