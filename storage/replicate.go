package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"

	"github.com/ringmq/ringmq/proto"
)

// The storage side of replication: a follower appends the leader's
// batches as they are (AppendReplicated keeps their base offsets and
// leader epochs), and cuts its log where it diverged from the leader's
// (TruncateTo). The replica state machine decides both (replica/).

var (
	// ErrNotLogEnd refuses a replicated batch whose base offset is not
	// the log end: a follower appends only what continues its log.
	ErrNotLogEnd = errors.New("storage: replicated batch does not start at the log end")
	// ErrEpochOrder refuses a replicated batch whose leader epoch is older
	// than the log's latest: a log's epochs only grow.
	ErrEpochOrder = errors.New("storage: replicated batch of an older leader epoch")
	// ErrTruncateBusy refuses TruncateTo while appends, a flush or a
	// resume are in flight, or the log is fenced.
	ErrTruncateBusy = errors.New("storage: truncation with work in flight")
)

// AppendReplicated is PrepareAppend for a follower: batches (one or more,
// back to back, as the leader's fetch answer carries them) keep their
// base offsets and leader epochs, which must continue the log: the first
// starts at the planned log end, each next one where the previous ended,
// and epochs do not decrease (nor go below the log's latest). Everything
// else is as PrepareAppend: validated (header, length, CRC, records),
// rolled, reserved, indexed; the driver writes op and reports Appended or
// Failed. Like PrepareAppend it returns ErrRollPending, changing nothing,
// while the next segment is not ready. It does not allocate in steady state.
func (l *Log) AppendReplicated(batches []byte) (AppendOp, error) {
	switch {
	case l.closed:
		return AppendOp{}, ErrClosed
	case l.err != nil:
		return AppendOp{}, l.err
	}
	sum, err := validateReplicated(batches, l.next, l.latestEpoch())
	if err != nil {
		return AppendOp{}, err
	}
	return l.planAppend(batches, sum)
}

// validateReplicated checks replicated batches without changing them.
func validateReplicated(b []byte, next uint64, epoch int32) (appendSummary, error) {
	sum := appendSummary{base: next, maxTs: math.MinInt64}
	if len(b) == 0 {
		return sum, fmt.Errorf("%w: empty append", ErrBadBatch)
	}
	for rest := b; len(rest) > 0; {
		at := len(b) - len(rest)
		h, r, err := proto.ValidateBatch(rest)
		if err == nil {
			err = proto.ValidateRecords(rest[:h.Size()])
		}
		switch {
		case err != nil:
			return sum, fmt.Errorf("%w at byte %d: %w", ErrBadBatch, at, err)
		case h.BaseOffset != next:
			return sum, fmt.Errorf("%w: batch at byte %d has base offset %d, the log end is %d", ErrNotLogEnd, at, h.BaseOffset, next)
		case h.LeaderEpoch < epoch:
			return sum, fmt.Errorf("%w: batch at offset %d has leader epoch %d, the log holds epoch %d", ErrEpochOrder, next, h.LeaderEpoch, epoch)
		}
		epoch, next = h.LeaderEpoch, h.NextOffset()
		sum.maxTs = max(sum.maxTs, h.MaxTimestamp)
		rest = r
	}
	sum.next = next
	if next-1-sum.base > maxRelOffset {
		return sum, fmt.Errorf("%w: one append spans %d offsets", ErrBadBatch, next-sum.base)
	}
	return sum, nil
}

// TruncateTo drops every batch at or after offset (a batch boundary in
// [LogStart, LogEnd]): the segments after it are deleted, the one holding
// it is cut there (the active one by a hole punched from there to its
// end, so a View still reading it sees zeros; a sealed one by cutting its
// file, as sealing does), indexes, leader epochs and the flushed offset
// follow, and the next append goes at offset (into a new active segment
// when the log now ends with a sealed one). Nothing may be in flight (no
// append, flush or resume; ErrTruncateBusy), and an offset inside an
// archived segment is refused.
//
// It is crash-safe: before anything is cut, the leader-epoch checkpoint
// and (when it was past offset) the recovery checkpoint are rewritten
// durably to describe the log below offset, so a power cut at any point
// recovers either the log before the truncation or a prefix of the one
// after (offsets past the recovery point may be lost as always), with no
// damage. The cut segment is fdatasync'd and the directory fsync'd before
// it returns, so a later crash never brings the dropped batches back.
//
// It makes blocking file system calls (it runs on the caller's goroutine,
// waiting for the log's background jobs first): the server's driver runs
// it where it may block, as it does resumes.
func (l *Log) TruncateTo(offset uint64) error {
	switch {
	case l.closed:
		return ErrClosed
	case l.err != nil:
		return fmt.Errorf("%w: %w", ErrTruncateBusy, l.err)
	case l.pend.len() > 0 || l.flushing || l.resuming:
		return fmt.Errorf("%w: %d appends, flushing %v", ErrTruncateBusy, l.pend.len(), l.flushing)
	case offset < l.LogStart() || offset > l.end:
		return fmt.Errorf("%w: truncate to %d, log is [%d, %d]", ErrOffsetOutOfRange, offset, l.LogStart(), l.end)
	case offset == l.end:
		l.truncateEpochs(offset)
		return nil
	}
	// Let background work on this log finish: seals (they resize files
	// we cut), archive moves, checkpoint and epoch writes.
	l.bg.Wait()
	l.applyRolls()
	if l.FlushWaiting() || l.renaming > 0 {
		return fmt.Errorf("%w: a rolled segment is still being renamed", ErrTruncateBusy)
	}
	l.finishSeals()
	l.drainArchived()
	l.ckpt.Wait()
	k := l.segmentFor(offset)
	s := l.segs[k]
	if s.state == SegmentArchived || s.archiving {
		return fmt.Errorf("%w: truncate to %d inside archived segment %s", ErrOffsetOutOfRange, offset, s.path(logExt))
	}
	pos, _, err := s.find(offset)
	if err != nil {
		return fmt.Errorf("storage: truncate to %d: %w", offset, err)
	}
	if h, err := s.header(pos, s.size); err != nil || h.BaseOffset != offset {
		return fmt.Errorf("%w: truncate to %d: not a batch boundary (batch at %d, %v)", ErrOffsetOutOfRange, offset, h.BaseOffset, err)
	}
	// 1. What describes the log must not describe what is cut.
	ec := l.epochCheckpoint(offset)
	if err := writeEpochs(l.fs, l.dir, &ec); err != nil {
		return fmt.Errorf("storage: truncate: %w", err)
	}
	l.epochsWritten = offset
	if l.written.RecoveryPoint > offset || l.rp.RecoveryPoint > offset {
		c := l.checkpointBefore(k, pos, offset)
		if err := writeCheckpoint(l.fs, l.dir, &c); err != nil {
			return fmt.Errorf("storage: truncate: %w", err)
		}
		if err := syncDir(l.fs, l.dir); err != nil {
			return fmt.Errorf("storage: truncate: %w", err)
		}
		l.rp, l.written = c, c
	}
	// 2. Cut.
	drop := k + 1
	if offset == s.base {
		drop = k
	}
	// Later segments go last first, so that a crash in between leaves a
	// prefix of the log; the first segment is replaced, never removed (a
	// log with no segment would restart at offset 0).
	for i := len(l.segs) - 1; i >= max(drop, 1); i-- {
		x := l.segs[i]
		x.close()
		l.segs[i] = nil
		for _, ext := range segmentExts {
			if err := l.fs.Remove(x.path(ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				l.segs = l.segs[:i]
				return l.fail(err)
			}
		}
	}
	l.segs = l.segs[:max(drop, 1)]
	if drop == 0 {
		return l.fail(l.restartAt(offset))
	}
	if drop == k+1 {
		if err := l.cutSegment(s, pos, offset); err != nil {
			return l.fail(err)
		}
	}
	l.end = offset
	l.flushed = min(l.flushed, offset)
	last := l.segs[len(l.segs)-1]
	l.rewind(len(l.segs)-1, -1)
	if last.state != SegmentActive {
		// the log now ends with a sealed (flushed, archived) segment: the
		// next appends go to a new one, and the old keeps its state
		capacity := l.cfg.SegmentBytes
		f, err := createMappedSegment(l.fs, segmentPaths(l.dir, offset), capacity, l.cfg.indexEntries(capacity))
		if err != nil {
			return l.fail(fmt.Errorf("truncate %s: next segment: %w", l.dir, err))
		}
		l.segs = append(l.segs, newSegment(l.dir, offset, f))
		l.dirGen++
	}
	if err := syncDir(l.fs, l.dir); err != nil {
		return l.fail(err)
	}
	l.dirSynced = l.dirGen
	return nil
}

// restartAt replaces the log's only segment (based at offset) by an empty
// one: its files are created under temporary names and renamed over the
// old ones, indexes first and the .log last, so a crash leaves either the
// old segment or the new one (with possibly empty indexes, which recovery
// rebuilds).
func (l *Log) restartAt(offset uint64) error {
	old := l.segs[0]
	capacity := l.cfg.SegmentBytes
	var tmp [3]string
	for i, ext := range segmentExts {
		tmp[i] = filepath.Join(l.dir, nextPrefix+"-truncate"+ext)
	}
	f, err := createSegmentFiles(l.fs, tmp, capacity, l.cfg.indexEntries(capacity), false, nil)
	if err != nil {
		return err
	}
	dst := segmentPaths(l.dir, offset)
	for i := len(dst) - 1; i >= 0; i-- {
		blocking("rename")
		if err := l.fs.Rename(tmp[i], dst[i]); err != nil {
			return err
		}
	}
	f.paths = dst
	if err := syncDir(l.fs, l.dir); err != nil {
		return err
	}
	if err := f.mapFiles(); err != nil {
		return err
	}
	old.close()
	l.segs[0] = newSegment(l.dir, offset, f)
	l.next, l.end, l.flushed = offset, offset, offset
	l.epochs = l.epochs[:0]
	l.rp = l.checkpointAt()
	l.written = l.rp
	return nil
}

// fail fences the log after a truncation that failed half way (nil: no
// failure); a resume or a reopen recovers it.
func (l *Log) fail(err error) error {
	if err == nil {
		return nil
	}
	l.fenceAt(l.pend.tail, fmt.Errorf("%w: truncate: %w", ErrFenced, err))
	return l.err
}

// cutSegment cuts s at pos (offset), fdatasync'd: the active segment by a
// hole from pos to its end (it keeps its capacity), a sealed one by
// cutting the file there (as sealing trims it); its visible state,
// indexes and running max timestamp are shortened to match.
func (l *Log) cutSegment(s *segment, pos int64, offset uint64) error {
	switch {
	case s.state != SegmentActive:
		if err := resize(l.fs, s.file.fd, pos, pos); err != nil {
			return err
		}
		s.fileSize = pos
	case s.fileSize > pos:
		blocking("fallocate")
		if err := cutTail(l.fs, s.file.fd, pos, s.fileSize); err != nil {
			return err
		}
	}
	blocking("fdatasync")
	if err := l.fs.Fdatasync(s.file.fd); err != nil {
		return err
	}
	rel := uint32(offset - s.base)
	for s.idx.n > 0 {
		if r, _ := s.idx.offsetEntry(s.idx.n - 1); r < rel {
			break
		}
		s.idx.n--
	}
	for s.tidx.n > 0 {
		if _, r := s.tidx.timeEntry(s.tidx.n - 1); r < rel {
			break
		}
		s.tidx.n--
	}
	maxTs, maxRel := runningMax(s, pos)
	n := 0
	for _, d := range s.damaged {
		if d.pos < pos {
			s.damaged[n] = d
			n++
		}
	}
	s.damaged = s.damaged[:n]
	s.size, s.next, s.reserved = pos, offset, pos
	s.maxTs, s.maxTsRel = maxTs, maxRel
	s.flushedSize = min(s.flushedSize, pos)
	return nil
}

// runningMax is the largest max timestamp of s's batches before pos and
// the relative offset of the batch that set it.
func runningMax(s *segment, pos int64) (int64, uint32) {
	maxTs, rel := int64(math.MinInt64), uint32(0)
	for p := int64(0); p < pos; {
		if d, ok := s.damagedAt(p); ok {
			p = d.end
			continue
		}
		h, err := s.header(p, pos)
		if err != nil {
			break
		}
		if p == 0 || h.MaxTimestamp > maxTs {
			maxTs, rel = h.MaxTimestamp, uint32(h.BaseOffset-s.base)
		}
		p += int64(h.Size())
	}
	return maxTs, rel
}

// checkpointBefore is a recovery point at offset, which starts the batch
// at pos of segment k (or, at a segment's base, ends the one before).
func (l *Log) checkpointBefore(k int, pos int64, offset uint64) Checkpoint {
	s := l.segs[k]
	if pos == 0 && k > 0 {
		p := l.segs[k-1]
		return Checkpoint{RecoveryPoint: offset, SegmentBase: p.base, SegmentPos: p.size, MaxTimestamp: p.maxTs, MaxTimestampRel: p.maxTsRel}
	}
	if pos == 0 {
		return Checkpoint{RecoveryPoint: offset, SegmentBase: s.base, MaxTimestamp: math.MinInt64}
	}
	ts, rel := runningMax(s, pos)
	return Checkpoint{RecoveryPoint: offset, SegmentBase: s.base, SegmentPos: pos, MaxTimestamp: ts, MaxTimestampRel: rel}
}

// AppendReplicated prepares, writes and completes one replicated append.
func (d *SyncDriver) AppendReplicated(l *Log, batches []byte) (AppendOp, error) {
	return d.append(l, l.AppendReplicated, batches)
}
