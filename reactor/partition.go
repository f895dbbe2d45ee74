package reactor

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/replica"
	"github.com/ringmq/ringmq/stats"
	"github.com/ringmq/ringmq/storage"
)

// partition is a reactor's handle on one partition it owns: the log
// (storage), the replica state machine that decides acks, the high
// watermark, waiters and flushes (replica), and the flush in flight.
type partition struct {
	topic  *topicInfo
	id     uint32
	log    *storage.Log
	rep    *replica.Replica
	shared *partShared
	// deleted is set when the topic is dropped while I/O is in flight.
	deleted bool
	// touched: in Reactor.touched (rep may have a Ready this turn);
	// waiting: in Reactor.waitParts (rep has registered waiters).
	touched, waiting bool
	// The flush in flight: one fdatasync per descriptor of flush.
	flush      storage.FlushOp
	flushLeft  int
	flushNext  int // next descriptor of flush.Fds to submit
	flushErr   int32
	flushStart time.Time
	// Published metrics: the partition's series, and the last segment
	// counts reported for it (deltas go to the shared gauges; the size
	// reported is shared.bytes).
	pstats   *stats.Partition
	segCount [storage.NumSegmentStates]int

	// Fenced logs retry resuming (fence.go).
	fenced      bool // listed in the owner's r.fenced
	resuming    bool // a resume job is in flight
	resumeAt    time.Time
	resumeDelay time.Duration
	corruptSeen int // corrupt ranges published (corruption.go)

	prod producerSide // idempotent producers' snapshots (producer.go)
	// Produce parts waiting for the next segment (rollwait.go), and
	// whether a msgLogReady for the log is in the mailbox.
	held     []heldAppend
	notified atomic.Bool
	// Replica fetches of followers parked here (replica_fetch.go).
	followers []followerWait
	// The follower's side: fetched bytes, a truncation running
	// (replica_drive.go).
	repl replState
}

// partShared is what other goroutines may read of a partition: published
// with atomics by its owner after every change.
type partShared struct {
	logStart atomic.Uint64
	logEnd   atomic.Uint64
	bytes    atomic.Int64
	fenceErr atomic.Pointer[string] // why appends are refused; nil when not fenced
	corrupt  atomic.Pointer[string] // the damage the log knows of; nil when none
}

// partition returns the owned partition, or nil.
func (r *Reactor) partition(topic []byte, id uint32) *partition {
	ps := r.parts[string(topic)]
	if int(id) >= len(ps) {
		return nil
	}
	return ps[id]
}

// publishOffsets publishes the replica's offsets for other goroutines.
func (r *Reactor) publishOffsets(p *partition, o replica.Offsets) {
	p.shared.logStart.Store(o.LogStart)
	p.shared.logEnd.Store(o.LogEnd)
	p.pstats.SetLogEnd(int64(o.LogEnd))
	p.pstats.SetHighWatermark(int64(o.HighWatermark))
	p.pstats.SetFollowerLag(int64(r.followerLag(p, o.LogEnd)))
}

// addDiskBytes counts an append in the partition's published size at once
// (publishStats corrects it from the log's own count on every tick).
func (r *Reactor) addDiskBytes(p *partition, n int64) {
	p.shared.bytes.Add(n)
	p.topic.stats.AddDiskBytes(n)
}

// publishStats reports the partition's size and segment life-cycle counts
// to the metrics (called on open, on the retention tick, and with
// zero counts when the partition goes away).
func (r *Reactor) publishStats(p *partition, st storage.Stats, gone bool) {
	for i := range p.segCount {
		n := 0
		if !gone && i < len(st.Segments) {
			n = st.Segments[i]
		}
		for ; p.segCount[i] < n; p.segCount[i]++ {
			stats.SegmentEntered(storage.SegmentState(i))
		}
		for ; p.segCount[i] > n; p.segCount[i]-- {
			stats.SegmentLeft(storage.SegmentState(i))
		}
	}
	size := st.Bytes
	if gone {
		size = 0
	}
	p.topic.stats.AddDiskBytes(size - p.shared.bytes.Swap(size))
}

func (r *Reactor) enforceRetention() {
	for _, ps := range r.parts {
		for _, p := range ps {
			if p == nil {
				continue
			}
			if p.repl.truncating {
				continue // the log is being cut off the reactor
			}
			if err := p.log.EnforceRetention(r.now); err != nil {
				r.srv.log.Warn("retention", "topic", p.topic.name, "partition", p.id, "err", err)
			}
			// Storage deletes only flushed segments: the new start is at
			// most the flushed offset, so at most the HW.
			p.rep.LogStartMoved(p.log.LogStart())
			r.expireProducers(p)
			r.touch(p)
			r.publishStats(p, p.log.Stats(), false)
			r.noteCorruption(p)
		}
	}
}

// installPartition makes the open log lg partition id of ti, served here.
func (r *Reactor) installPartition(ti *topicInfo, id uint32, lg *storage.Log) (*partition, error) {
	cfg := r.replicaConfig(ti)
	if int(id) < len(ti.lead) && len(ti.lead[id].replicas) > 0 {
		// min_insync above the replicas would hold the HW forever
		cfg.MinInsync = min(cfg.MinInsync, len(ti.lead[id].replicas))
	}
	rep, err := replica.New(cfg, replica.Offsets{LogStart: lg.LogStart(),
		Flushed: lg.FlushedOffset(), LogEnd: lg.LogEnd()})
	if err != nil {
		return nil, fmt.Errorf("topic %s partition %d: %w", ti.name, id, err)
	}
	var epochs []replica.EpochEntry
	for _, e := range lg.LeaderEpochs(nil) {
		epochs = append(epochs, replica.EpochEntry(e))
	}
	if err := rep.SetEpochs(epochs); err != nil {
		return nil, fmt.Errorf("topic %s partition %d: leader epochs: %w", ti.name, id, err)
	}
	rep.Tick(r.now)
	p := &partition{topic: ti, id: id, log: lg, rep: rep, shared: ti.shared[id],
		pstats: stats.ForPartition(ti.name, int32(id))}
	r.restoreProducers(p)
	r.watchLog(p)
	r.noteFence(p) // opened on a full disk
	r.noteCorruption(p)
	r.applyLead(p)
	r.publishOffsets(p, rep.Offsets())
	st := lg.Stats()
	r.publishStats(p, st, false)
	if st.RecoveryScannedBytes > 0 || st.RecoveryTruncated {
		r.srv.log.Info("partition recovered", "topic", ti.name, "partition", id,
			"scanned_bytes", st.RecoveryScannedBytes, "truncated", st.RecoveryTruncated, "log_end", st.End)
	}
	return p, nil
}

// replicaConfig is the replica policy of ti's partitions on this node.
func (r *Reactor) replicaConfig(ti *topicInfo) replica.Config {
	return replica.Config{ID: replica.ID(r.srv.cl.self), Sync: syncAcks(ti),
		FlushInterval: r.srv.cfg.Storage.FlushInterval, ProducerIdleExpiry: r.srv.cfg.Storage.ProducerIdleExpiry,
		MinInsync: r.srv.cfg.Cluster.MinInsyncReplicas, ReplicaLagTime: r.srv.cfg.Cluster.ReplicaLagTime}
}

// syncAcks: acks=all on ti waits for the fdatasync (flush=sync), unless
// a test build switched that rule off (unsafe_on.go).
func syncAcks(ti *topicInfo) bool {
	return ti.cfg.Flush == config.FlushSync && !unsafeAckBeforeSync
}

// dropTopic stops serving the partitions of u.ti this reactor owns and
// puts their logs in u.logs for the admin goroutine to delete: no I/O
// here. Appends still in flight complete with UNKNOWN_TOPIC (p.deleted);
// the ring holds its own reference to the files they write.
func (r *Reactor) dropTopic(u *topicUpdate) {
	ti := u.ti
	ps := r.parts[ti.name]
	delete(r.parts, ti.name)
	for id, p := range ps {
		if p == nil {
			continue
		}
		r.unfence(p)
		r.forgetCorruption(p)
		p.deleted = true
		r.publishStats(p, storage.Stats{}, true)
		r.dropAcks(p)
		r.dropWaiters(p)
		r.wakeFollowers(p, true)
		r.answerHeld(p, proto.UnknownTopic)
		u.logs[id] = p.log
	}
}

func (r *Reactor) closePartitions() {
	for _, ps := range r.parts {
		for _, p := range ps {
			if p == nil {
				continue
			}
			r.unfence(p)
			r.forgetCorruption(p)
			r.publishStats(p, storage.Stats{}, true)
			if err := p.log.Close(); err != nil {
				r.srv.log.Error("close partition", "topic", p.topic.name, "partition", p.id, "err", err)
			}
		}
	}
}

// updateTopic applies an altered or grown topic (see topicUpdate): its
// partitions here now belong to u.ti and take its configuration, and the
// new partitions this reactor owns are installed from the logs the admin
// goroutine opened. No I/O.
func (r *Reactor) updateTopic(u *topicUpdate) error {
	ti := u.ti
	ps := r.parts[ti.name]
	if n := int(ti.partitions); len(ps) < n {
		ps = append(ps, make([]*partition, n-len(ps))...)
	}
	lc := r.srv.logConfig(ti.cfg)
	var errs []error
	for id, p := range ps {
		if p == nil {
			if id < len(u.logs) && u.logs[id] != nil && int(ti.shards[id]) == r.id {
				np, err := r.installPartition(ti, uint32(id), u.logs[id])
				if err != nil {
					u.logs[id].Close()
					errs = append(errs, err)
					continue
				}
				ps[id] = np
			}
			continue
		}
		p.topic = ti
		if err := p.log.Reconfigure(lc); err != nil {
			errs = append(errs, fmt.Errorf("partition %d: %w", id, err))
		}
		p.rep.SetSync(syncAcks(ti))
		r.applyLead(p)
		r.touch(p)
	}
	r.parts[ti.name] = ps
	return errors.Join(errs...)
}
