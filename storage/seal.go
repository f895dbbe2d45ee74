package storage

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Sealing a rolled segment, once its last write completed, trims its
// files to their used size and readies its indexes for one last
// fdatasync. Every file operation of it runs on the Store's background
// worker, in two phases, so that the owner's thread never blocks; the
// owner applies each finished phase (applySeals) from PrepareFlush,
// EnforceRetention and ApplyBackground:
//
//  1. worker: cut the .log to its size (its mapping keeps its length;
//     nothing reads past size), open both index files and map each at its
//     used length (the files are still longer, so no mapped page lies past
//     the end of its file);
//  2. owner: switch the indexes to the new mappings and descriptors;
//  3. worker: unmap the old index mappings and cut the index files to the
//     new mappings' length;
//  4. owner: the segment is trimmed; the next flush fdatasyncs it and its
//     indexes and makes it SegmentFlushed.
//
// A failed phase leaves the segment sealed but untrimmed (counted in
// Stats.SealErrors): recovery trims it. Until phase 4 a flush covers the
// segment's data but not its indexes, and the segment stays
// SegmentSealed, so retention and archiving leave it alone.

// sealQueue holds the seal phases the worker finished, for the owner.
type sealQueue struct {
	mu    sync.Mutex
	done  []sealPhase
	ready atomic.Int32 // len(done), read without the lock
	wg    sync.WaitGroup
}

// sealPhase is one finished worker phase of sealing s: after phase 1,
// fds and maps are the indexes' new descriptors and mappings.
type sealPhase struct {
	s     *segment
	phase int
	fds   [2]int
	maps  [2][]byte
	err   error
}

func (q *sealQueue) post(p sealPhase) {
	q.mu.Lock()
	q.done = append(q.done, p)
	q.ready.Store(int32(len(q.done)))
	q.mu.Unlock()
}

func (q *sealQueue) take() []sealPhase {
	if q.ready.Load() == 0 {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	done := q.done
	q.done = nil
	q.ready.Store(0)
	return done
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
	l.runSealJob(func() sealPhase {
		p := sealPhase{s: s, phase: 1, fds: [2]int{-1, -1}}
		if err := resize(fd, size, size); err != nil {
			p.err = fmt.Errorf("seal %s: %w", logPath, err)
			return p
		}
		for i, path := range paths {
			fd, err := openFile(path, unix.O_RDWR)
			if err == nil {
				p.fds[i] = fd
				p.maps[i], err = mapFile(fd, lens[i], true)
			}
			if err != nil {
				p.err = fmt.Errorf("seal %s: %w", path, err)
				p.release()
				return p
			}
		}
		return p
	})
}

// release closes and unmaps what a failed or discarded phase 1 opened.
func (p *sealPhase) release() {
	for i := range p.fds {
		unmap(p.maps[i])
		closeFd(p.fds[i])
		p.maps[i], p.fds[i] = nil, -1
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
		p.release()
		return
	}
	if p.phase == 2 {
		s.trimmed, l.sealsTrimmed = true, true
		return
	}
	s.fileSize = s.size
	old := [2][]byte{s.idx.m, s.tidx.m}
	lens := [2]int64{int64(len(p.maps[0])), int64(len(p.maps[1]))}
	paths := [2]string{s.idx.path, s.tidx.path}
	for i, x := range []*index{&s.idx, &s.tidx} {
		x.dropFd()
		x.m, x.fd, x.planned = p.maps[i], p.fds[i], x.n
		x.avail.Store(int64(x.n))
	}
	l.runSealJob(func() sealPhase {
		var errs []error
		for i, path := range paths {
			unmap(old[i])
			fd, err := openFile(path, unix.O_RDWR)
			if err == nil {
				err = resize(fd, lens[i], lens[i])
				closeFd(fd)
			}
			errs = append(errs, err)
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
// (seal phases); the owner calls it on its timers. It reports whether a
// flush is now due (a sealed segment is ready for its final fdatasync).
// It does not allocate and does no I/O.
func (l *Log) ApplyBackground() bool {
	if l.closed {
		return false
	}
	l.applySeals()
	due := l.sealsTrimmed
	l.sealsTrimmed = false
	return due
}
