package storage

import (
	"errors"
	"fmt"

	"github.com/ringmq/ringmq/storage/vfs"
	"golang.org/x/sys/unix"
)

// Sealing a rolled segment, once its last write completed and a flush
// made its data durable, trims its files to their used size. Every file operation of it runs on the Store's background
// worker, in two phases, so that the owner's thread never blocks; the
// owner applies each finished phase (applySeals) from PrepareFlush,
// EnforceRetention and ApplyBackground:
//
//  1. worker: cut the .log to its size (its mapping keeps its length;
//     nothing reads past size), map both index files at their used length
//     (the files are still longer, so no mapped page lies past the end of
//     its file);
//  2. owner: switch the indexes to the new mappings;
//  3. worker: unmap the old index mappings, cut the index files to the
//     new mappings' length and fdatasync them (both cut first: one
//     journal commit);
//  4. owner: the segment is trimmed and SegmentFlushed.
//
// The .log is not synced here: its data is durable before the cut starts
// (the flush that covered it fdatasync'd it), so a power cut keeps either
// size of the file with all of its data, and recovery takes an uncut
// segment whose batches stop before its end for what it is (a sealed one
// the cut of which was lost). Cutting before the data was durable let a
// cut reach the disk without the data, and recovery took the cut segment
// for a complete one (the long power-cut mode lost flushed records, seed
// 1129), so the seal used to fdatasync the .log itself: on the one
// worker, with small segments, those syncs and their journal commits
// were the roll's tail latency (DESIGN.md §9). The index syncs stay
// (without them: seeds 1341, 1357).
//
// A failed phase leaves the segment sealed but untrimmed (counted in
// Stats.SealErrors): recovery trims it. Until phase 4 the segment stays
// SegmentSealed, so retention and archiving leave it alone.

// sealPhase is one finished worker phase of sealing s: after phase 1,
// maps are the indexes' new mappings.
type sealPhase struct {
	s     *segment
	phase int
	maps  [2][]byte
	err   error
}

// seal starts sealing s (the owner's side of phase 1).
func (l *Log) seal(s *segment) {
	s.sealing = true
	if s.maxUnindexed && s.tidx.put(uint64(s.planMaxTs), s.planMaxRel) {
		s.tidx.n, s.maxUnindexed = s.tidx.planned, false
	}
	fd, size, logPath := s.file.fd, s.size, s.path(logExt)
	paths := [2]string{s.idx.path, s.tidx.path}
	lens := [2]int64{int64(s.idx.n * s.idx.esize), int64(s.tidx.n * s.tidx.esize)}
	fsys := l.fs
	l.runSealJob(func() sealPhase {
		p := sealPhase{s: s, phase: 1}
		if err := resize(fsys, fd, size, size); err != nil {
			p.err = fmt.Errorf("seal %s: %w", logPath, err)
			return p
		}
		for i, path := range paths {
			fd, err := openFile(fsys, path, unix.O_RDWR)
			if err == nil {
				p.maps[i], err = mapFile(fsys, fd, lens[i], true)
				closeFd(fsys, fd)
			}
			if err != nil {
				p.err = fmt.Errorf("seal %s: %w", path, err)
				p.release(fsys)
				return p
			}
		}
		return p
	})
}

// release unmaps what a failed or discarded phase 1 mapped.
func (p *sealPhase) release(fsys vfs.FS) {
	for i := range p.maps {
		unmap(fsys, p.maps[i])
		p.maps[i] = nil
	}
}

// runSealJob runs job on the worker and queues its result for the owner
// (inline without a Store: tests).
func (l *Log) runSealJob(job func() sealPhase) {
	if l.store == nil {
		l.applySeal(job())
		return
	}
	l.seals.wg.Add(1)
	l.store.worker.post(func() {
		defer l.seals.wg.Done()
		l.seals.post(job())
	})
}

// applySeals applies the seal phases the worker finished.
func (l *Log) applySeals() {
	for _, p := range l.seals.take() {
		l.applySeal(p)
	}
}

func (l *Log) applySeal(p sealPhase) {
	s := p.s
	if p.err != nil {
		l.stats.sealErrors++
		l.logger.Warn("storage: sealing segment failed; recovery will trim it", "err", p.err)
		return
	}
	if l.closed || s.file == nil {
		p.release(l.fs)
		return
	}
	if p.phase == 2 {
		s.trimmed = true
		if s.state == SegmentSealed && s.flushedSize >= s.size {
			s.state = SegmentFlushed
		}
		return
	}
	s.fileSize = s.size
	old := [2][]byte{s.idx.m, s.tidx.m}
	lens := [2]int64{int64(len(p.maps[0])), int64(len(p.maps[1]))}
	paths := [2]string{s.idx.path, s.tidx.path}
	fsys := l.fs
	for i, x := range []*index{&s.idx, &s.tidx} {
		x.dropFd()
		x.m, x.planned = p.maps[i], x.n
		x.avail.Store(int64(x.n))
	}
	l.runSealJob(func() sealPhase {
		// Cut both, then sync both: one journal commit covers the two.
		var errs []error
		fds := [2]int{-1, -1}
		for i, path := range paths {
			unmap(fsys, old[i])
			fd, err := openFile(fsys, path, unix.O_RDWR)
			if err == nil {
				fds[i] = fd
				err = resize(fsys, fd, lens[i], lens[i])
			}
			errs = append(errs, err)
		}
		for _, fd := range fds {
			if fd >= 0 {
				errs = append(errs, fsys.Fdatasync(fd))
				closeFd(fsys, fd)
			}
		}
		if err := errors.Join(errs...); err != nil {
			return sealPhase{s: s, phase: 2, err: fmt.Errorf("seal: %w", err)}
		}
		return sealPhase{s: s, phase: 2}
	})
	return
}

// finishSeals waits for the seals in progress and applies them (Close).
func (l *Log) finishSeals() {
	for range 2 { // phase 1, then the phase 2 its application posts
		l.seals.wg.Wait()
		l.applySeals()
	}
}

// ApplyBackground applies the background work of this log that finished
// (seal phases, roll-lane results; PrepareFlush, EnforceRetention and
// PrepareAppend apply it too). It does
// no I/O.
func (l *Log) ApplyBackground() {
	if !l.closed {
		l.applySeals()
		l.applyRolls()
	}
}
