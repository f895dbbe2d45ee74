package storage

import (
	"fmt"
	"math"
)

// FlushOp is one planned flush: the driver fdatasyncs every descriptor in
// Fds (the active segment's .log, each newly sealed segment's .log, the
// partition directory after a roll), then calls Log.Flushed or Log.FlushFailed. Fds is owned by the log
// and valid until the next PrepareFlush.
type FlushOp struct {
	Fds  []int
	UpTo uint64 // offsets below UpTo are durable once the flush completes
	gen  uint64
}

type flushTarget struct {
	seg    *segment
	size   int64
	sealed bool
}

// PrepareFlush plans a flush of everything visible. It returns false when
// there is nothing to flush, a flush is already in flight (one at a time),
// the log is fenced or closed, or the flush must wait for a rolled
// segment's names (FlushWaiting; the notify function runs when they are
// in place). It makes no system call and does not allocate in steady
// state.
func (l *Log) PrepareFlush() (FlushOp, bool) {
	if l.closed || l.err != nil || l.flushing {
		return FlushOp{}, false
	}
	l.applySeals()
	l.applyRolls()
	if l.err != nil || l.FlushWaiting() {
		return FlushOp{}, false
	}
	fds, targets := l.flushFds[:0], l.flushSegs[:0]
	if l.dirGen != l.dirSynced {
		if l.dirFd < 0 {
			panic("BUG: storage: a directory entry changed without a directory descriptor to sync it")
		}
		fds = append(fds, l.dirFd)
	}
	first := len(l.segs)
	for first > 0 && (l.segs[first-1].state == SegmentActive || l.segs[first-1].state == SegmentSealed) {
		first--
	}
	for _, s := range l.segs[first:] {
		sealed := s.state == SegmentSealed && s.trimmed
		if s.size <= s.flushedSize && !sealed {
			continue
		}
		fds = append(fds, s.file.fd)
		for _, x := range []*index{&s.idx, &s.tidx} {
			if sealed && x.fd >= 0 {
				fds = append(fds, x.fd)
			}
		}
		targets = append(targets, flushTarget{seg: s, size: s.size, sealed: sealed})
	}
	l.flushFds, l.flushSegs = fds, targets
	if len(fds) == 0 {
		return FlushOp{}, false
	}
	l.flushing, l.flushRP, l.flushGen = true, l.checkpointAt(), l.dirGen
	return FlushOp{Fds: fds, UpTo: l.end, gen: l.dirGen}, true
}

// Flushed records that every descriptor of op was fdatasync'd: the
// recovery point advances to op.UpTo and sealed segments become flushed.
func (l *Log) Flushed(op FlushOp) {
	if l.closed {
		return
	}
	if !l.flushing {
		panic("BUG: storage: Flushed without a flush in flight")
	}
	l.flushing = false
	for i := range l.flushSegs {
		t := &l.flushSegs[i]
		t.seg.flushedSize = max(t.seg.flushedSize, t.size)
		// A segment trimmed (seal.go) while this flush was in flight is
		// flushed too once its data is.
		if (t.sealed || t.seg.trimmed) && t.seg.state == SegmentSealed && t.seg.flushedSize >= t.seg.size {
			t.seg.state = SegmentFlushed
			t.seg.idx.dropFd()
			t.seg.tidx.dropFd()
		}
		l.maybeSeal(t.seg) // a rolled segment is cut once its data is durable
		t.seg = nil
	}
	if op.UpTo > l.flushed {
		l.flushed, l.rp = op.UpTo, l.flushRP
	}
	l.dirSynced = op.gen
	if l.dirSynced == l.dirGen {
		closeFd(l.fs, l.dirFd) // reopened by the flush after the next roll
		l.dirFd = -1
	}
}

// FlushFailed records a failed fdatasync. The data's durability is unknown,
// so the log is fenced (appends in flight never become visible).
func (l *Log) FlushFailed(op FlushOp, err error) {
	if l.closed {
		return
	}
	l.flushing = false
	for i := range l.flushSegs {
		l.flushSegs[i].seg = nil
	}
	l.fenceAt(l.pend.head, fmt.Errorf("%w: flush up to offset %d in %s: %w", ErrFenced, op.UpTo, l.dir, err))
}

// checkpointAt describes the visible end as a recovery point.
func (l *Log) checkpointAt() Checkpoint {
	if l.end == l.LogStart() {
		return Checkpoint{RecoveryPoint: l.end, SegmentBase: l.segs[0].base, MaxTimestamp: math.MinInt64}
	}
	s := l.segs[l.segmentFor(l.end-1)]
	return Checkpoint{RecoveryPoint: l.end, SegmentBase: s.base, SegmentPos: s.size,
		MaxTimestamp: s.maxTs, MaxTimestampRel: s.maxTsRel}
}

// WriteCheckpoint persists the recovery point of the last completed flush
// if it changed: one small write, an fdatasync and a rename. Call it from a
// periodic tick (every few seconds), not per request; Close writes the
// final one. It bounds how much of the log recovery must verify.
// WriteCheckpointAsync is WriteCheckpoint done by the Store's background
// worker, so that the caller (a reactor) never waits on file creation and
// fdatasync. Checkpoints of one log are written in the order they were
// asked for; a failure is logged and retried with the next one. Close
// waits for them before its own, final checkpoint.
func (l *Log) WriteCheckpointAsync() {
	if l.closed || l.rp == l.written {
		return
	}
	if l.store == nil {
		if err := l.WriteCheckpoint(); err != nil {
			l.logger.Warn("storage: write checkpoint failed", "dir", l.dir, "err", err)
		}
		return
	}
	c, dir, fsys := l.rp, l.dir, l.fs
	l.written = c
	l.ckpt.Add(1)
	l.store.worker.post(func() {
		defer l.ckpt.Done()
		if err := writeCheckpoint(fsys, dir, &c); err != nil {
			l.logger.Warn("storage: write checkpoint failed", "dir", dir, "err", err)
		}
	})
}

func (l *Log) WriteCheckpoint() error {
	if l.closed {
		return ErrClosed
	}
	if l.rp == l.written {
		return nil
	}
	c := l.rp
	if err := writeCheckpoint(l.fs, l.dir, &c); err != nil {
		return err
	}
	l.written = c
	return nil
}
