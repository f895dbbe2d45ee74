package reactor

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/stats"
	"github.com/ringmq/ringmq/storage"
)

// partition is a reactor's handle on one partition it owns.
type partition struct {
	topic  *topicInfo
	id     uint32
	log    *storage.Log
	shared *partShared
	sync   bool
	// deleted is set when the topic is dropped while I/O is in flight.
	deleted bool

	// acks are appended parts waiting for the visible log end (or the
	// flushed offset when sync) to pass them, sorted by last offset.
	acks      []pendingAck
	fsyncBusy bool
	// The flush in flight: one fdatasync per descriptor of flush.
	flush      storage.FlushOp
	flushLeft  int
	flushErr   int32
	flushStart time.Time
	isDirty    bool
	inSync     bool
	// Published metrics: the partition's series, and the last segment
	// counts reported for it (deltas go to the shared gauges; the size
	// reported is shared.bytes).
	pstats   *stats.Partition
	segCount [storage.NumSegmentStates]int

	// waiters are parked fetches (here or on other reactors) to wake on
	// the next append.
	waiters []waiter

	// Fenced logs retry resuming (fence.go).
	fenced      bool // listed in the owner's r.fenced
	resuming    bool // a resume job is in flight
	resumeAt    time.Time
	resumeDelay time.Duration
	corruptSeen int // corrupt ranges published (corruption.go)
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

type pendingAck struct {
	req        *request
	origin     *Reactor
	ti, pi     int32
	base, last uint64
}

func (p *partition) addAck(a pendingAck) {
	p.acks = append(p.acks, a)
	i := len(p.acks) - 1
	for i > 0 && p.acks[i-1].last > a.last {
		p.acks[i] = p.acks[i-1]
		i--
	}
	p.acks[i] = a
}

// partition returns the owned partition, or nil.
func (r *Reactor) partition(topic []byte, id uint32) *partition {
	ps := r.parts[string(topic)]
	if int(id) >= len(ps) {
		return nil
	}
	return ps[id]
}

func (r *Reactor) publishEnds(p *partition) {
	end := p.log.LogEnd()
	p.shared.logEnd.Store(end)
	p.shared.logStart.Store(p.log.LogStart())
	p.pstats.SetLogEnd(int64(end))
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

func (r *Reactor) markDirty(p *partition) {
	if !p.isDirty {
		p.isDirty = true
		r.dirty = append(r.dirty, p)
	}
}

func (r *Reactor) markNeedSync(p *partition) {
	if !p.inSync {
		p.inSync = true
		r.needSync = append(r.needSync, p)
	}
}

// groupCommit issues one fdatasync per flush=sync partition that has acks
// waiting, covering every append completed in this loop turn.
func (r *Reactor) groupCommit() {
	keep := r.needSync[:0]
	for _, p := range r.needSync {
		if p.fsyncBusy {
			keep = append(keep, p)
			continue
		}
		if !r.startFlush(p) {
			p.inSync = false
			r.releaseAcks(p, p.log.LogEnd())
			continue
		}
		p.inSync = false
	}
	clear(r.needSync[len(keep):])
	r.needSync = keep
}

// startFlush plans and submits an fdatasync for p; false if nothing is dirty.
func (r *Reactor) startFlush(p *partition) bool {
	fl, ok := p.log.PrepareFlush()
	if !ok {
		return false
	}
	p.fsyncBusy = true
	p.flush, p.flushLeft, p.flushErr, p.flushStart = fl, len(fl.Fds), 0, r.now
	for _, fd := range fl.Fds {
		slot, o := r.ops.alloc()
		*o = ioOp{part: p}
		r.ring.PrepareFsync(fd, true, makeUD(udFsync, 0, slot))
	}
	return true
}

// onFsyncDone counts one fdatasync of the partition's flush; the flush is
// done when every descriptor it named is.
func (r *Reactor) onFsyncDone(o *ioOp, res int32) {
	p := o.part
	if res < 0 && p.flushErr == 0 {
		p.flushErr = res
	}
	p.flushLeft--
	if p.flushLeft > 0 {
		return
	}
	p.fsyncBusy = false
	r.srv.metrics.fsync(r.now.Sub(p.flushStart))
	if p.flushErr < 0 {
		err := errnoErr(p.flushErr)
		p.log.FlushFailed(p.flush, err)
		r.srv.log.Error("fdatasync failed; partition fenced", "topic", p.topic.name, "partition", p.id, "err", err)
		r.failAcks(p, proto.StorageError)
		r.noteFence(p)
		return
	}
	p.log.Flushed(p.flush)
	if p.sync {
		r.releaseAcks(p, p.flush.UpTo)
		if len(p.acks) > 0 {
			r.markNeedSync(p)
		}
	}
}

// intervalFlush fsyncs every dirty partition (flush=interval) and writes
// recovery-point checkpoints for what earlier flushes covered.
func (r *Reactor) intervalFlush() {
	keep := r.dirty[:0]
	for _, p := range r.dirty {
		if p.fsyncBusy {
			keep = append(keep, p)
			continue
		}
		r.startFlush(p)
		p.isDirty = false
	}
	clear(r.dirty[len(keep):])
	r.dirty = keep
	for _, ps := range r.parts {
		for _, p := range ps {
			if p != nil {
				if p.log.ApplyBackground() {
					r.markDirty(p) // a sealed segment waits for its final flush
				}
				p.log.WriteCheckpointAsync() // file creation and fdatasync: not on this thread
			}
		}
	}
}

func (r *Reactor) enforceRetention() {
	for _, ps := range r.parts {
		for _, p := range ps {
			if p == nil {
				continue
			}
			if err := p.log.EnforceRetention(r.now); err != nil {
				r.srv.log.Warn("retention", "topic", p.topic.name, "partition", p.id, "err", err)
			}
			r.publishEnds(p)
			r.publishStats(p, p.log.Stats(), false)
			r.noteCorruption(p)
		}
	}
}

// installPartition makes the open log lg partition id of ti, served here.
func (r *Reactor) installPartition(ti *topicInfo, id uint32, lg *storage.Log) *partition {
	p := &partition{topic: ti, id: id, log: lg, shared: ti.shared[id], sync: ti.cfg.Flush == config.FlushSync,
		pstats: stats.ForPartition(ti.name, int32(id))}
	r.noteFence(p) // opened on a full disk
	r.noteCorruption(p)
	r.publishEnds(p)
	st := lg.Stats()
	r.publishStats(p, st, false)
	if st.RecoveryScannedBytes > 0 || st.RecoveryTruncated {
		r.srv.log.Info("partition recovered", "topic", ti.name, "partition", id,
			"scanned_bytes", st.RecoveryScannedBytes, "truncated", st.RecoveryTruncated, "log_end", st.End)
	}
	return p
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
		r.failAcks(p, proto.UnknownTopic)
		r.wakeWaiters(p)
		u.logs[id] = p.log
	}
	r.dirty = removeTopic(r.dirty, ti)
	r.needSync = removeTopic(r.needSync, ti)
}

func removeTopic(ps []*partition, ti *topicInfo) []*partition {
	keep := ps[:0]
	for _, p := range ps {
		if p.topic != ti {
			keep = append(keep, p)
		}
	}
	clear(ps[len(keep):])
	return keep
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
				ps[id] = r.installPartition(ti, uint32(id), u.logs[id])
			}
			continue
		}
		p.topic = ti
		if err := p.log.Reconfigure(lc); err != nil {
			errs = append(errs, fmt.Errorf("partition %d: %w", id, err))
		}
		if wasSync := p.sync; wasSync != (ti.cfg.Flush == config.FlushSync) {
			p.sync = !wasSync
			if wasSync && len(p.acks) > 0 {
				// Acks waiting for an fsync now wait only for visibility.
				r.releaseAcks(p, p.log.LogEnd())
				r.markDirty(p)
			}
		}
	}
	r.parts[ti.name] = ps
	return errors.Join(errs...)
}
