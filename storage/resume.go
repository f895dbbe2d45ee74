package storage

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"

	"github.com/ringmq/ringmq/storage/vfs"
	"golang.org/x/sys/unix"
)

// Resuming a fenced log. A write or flush that failed (a full disk, most
// often) fences the log; once every append in flight has completed, the
// owner may ask the Store's background worker to check that the files take
// writes again (StartResume). The worker cuts whatever failed appends left
// past the visible end (so stale bytes can never line up as batches
// later), removes segments rolled for appends that never became visible,
// and reserves room for the next appends: resumeProbeBytes of the active
// segment's .log (its indexes get their next chunk as appends need it). Only when all of that succeeded does
// the owner rewind the planned state to the visible end and lift the fence
// (FinishResume). Nothing visible is touched, and nothing in flight is lost
// that was acknowledged: appends past the fence never were.
//
//	fenced ──Resumable──▶ StartResume ──worker: cut, reserve──▶ FinishResume
//	   ▲                                      │ error (still no space)
//	   └──────────── retry later ─────────────┘

// resumeProbeBytes is how much of the active segment a resume reserves: a
// full disk fails it, so a log does not resume only to fence again at once.
const resumeProbeBytes = 64 << 10

// ResumeResult is the outcome of a resume job, handed back to the owner.
type ResumeResult struct {
	gen      uint64
	base     uint64 // segment the log resumes in
	err      error
	finished bool
	dirFd    int // the partition directory, to sync the dropped names (-1: none)
	dir      string
}

// Err is the job's error: nil when the log can resume.
func (r ResumeResult) Err() error { return r.err }

// resumeJob is the file work of a resume, planned by the owner and run by
// the worker. It holds descriptors the log keeps open until the job is done
// (Close waits for it).
type resumeJob struct {
	res      ResumeResult
	fs       vfs.FS
	fd       int   // the resuming segment's .log
	size     int64 // its visible bytes
	capacity int64
	drop     []string // files of segments past the visible end
}

// Resumable reports whether StartResume may run now: the log is fenced,
// not closed, and has no append, flush or resume in flight.
func (l *Log) Resumable() bool {
	l.applyRolls()
	if l.err == nil || l.closed || l.flushing || l.resuming || l.renaming > 0 {
		return false
	}
	for seq := l.pend.head; seq < l.pend.tail; seq++ {
		if !l.pend.at(seq).done {
			return false
		}
	}
	return true
}

// resumeSegment is the index of the segment holding the visible end: the
// last one whose base is ≤ LogEnd (later ones were rolled for appends that
// never became visible).
func (l *Log) resumeSegment() int { return l.segmentFor(l.end) }

func (l *Log) planResume() *resumeJob {
	k := l.resumeSegment()
	s := l.segs[k]
	l.resumeGen++
	j := &resumeJob{res: ResumeResult{gen: l.resumeGen, base: s.base, dirFd: -1, dir: l.dir}, fs: l.fs, fd: s.file.fd,
		size: s.size, capacity: s.fileSize}
	if s.trimmed || s.sealing {
		j.capacity = s.size // sealed: the next append rolls
	}
	for _, later := range l.segs[k+1:] {
		for _, ext := range segmentExts {
			j.drop = append(j.drop, later.path(ext))
		}
	}
	return j
}

// run does the job's file work; it is safe on any goroutine while the
// owner waits for the result.
func (j *resumeJob) run() ResumeResult {
	res := j.res
	res.finished = true
	for _, p := range j.drop {
		if err := j.fs.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			res.err = fmt.Errorf("storage: resume: %w", err)
			return res
		}
	}
	if len(j.drop) > 0 {
		fd, err := openFile(j.fs, res.dir, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			res.err = fmt.Errorf("storage: resume: %w", err)
			return res
		}
		res.dirFd = fd
	}
	if j.capacity > j.size {
		if err := cutTail(j.fs, j.fd, j.size, j.capacity); err != nil {
			res.err = fmt.Errorf("storage: resume: cut the tail: %w", err)
			return res
		}
		if err := allocate(j.fs, j.fd, j.size, min(resumeProbeBytes, j.capacity-j.size)); err != nil {
			res.err = fmt.Errorf("storage: resume: reserve room for appends: %w", err)
			return res
		}
	}
	return res
}

// cutTail turns [from, size) of a file into zeros (a hole).
func cutTail(fsys vfs.FS, fd int, from, size int64) error {
	err := fsys.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, from, size-from)
	if err == unix.EOPNOTSUPP {
		err = resize(fsys, fd, from, size)
	}
	return err
}

// StartResume posts a resume job to the Store's background worker and
// returns true, or returns false when the log is not Resumable. done is
// called on the worker's goroutine with the result; the owner must then
// call FinishResume with it, on its own goroutine.
func (l *Log) StartResume(done func(ResumeResult)) bool {
	if !l.Resumable() {
		return false
	}
	j := l.planResume()
	l.resuming = true
	if l.store == nil {
		done(j.run())
		return true
	}
	l.bg.Add(1)
	l.store.worker.post(func() {
		defer l.bg.Done()
		done(j.run())
	})
	return true
}

// FinishResume applies a resume job's result: on success the fence is
// lifted and appends are accepted again from LogEnd; otherwise the log
// stays fenced and the job's error is returned (try again later). A stale
// result (the log closed, or resumed another way) is ignored.
func (l *Log) FinishResume(res ResumeResult) error {
	if l.closed {
		return ErrClosed
	}
	if !res.finished || res.gen != l.resumeGen || !l.resuming {
		closeFd(l.fs, res.dirFd)
		return nil
	}
	l.resuming = false
	if res.err != nil {
		closeFd(l.fs, res.dirFd)
		return res.err
	}
	k := l.resumeSegment()
	if l.segs[k].base != res.base {
		panic("BUG: storage: resuming log's visible end moved while fenced")
	}
	l.rewind(k, res.dirFd)
	l.logger.Info("storage: partition resumed", "topic", l.topic, "partition", l.partition, "log_end", l.end)
	return nil
}

// ResumeNow runs a resume on the caller's goroutine (tools and tests; the
// server uses StartResume so that its reactors make no file system calls).
func (l *Log) ResumeNow() error {
	if !l.closed {
		l.rolls.wg.Wait() // renames of the roll lane in flight
	}
	if !l.Resumable() {
		if l.err == nil {
			return nil
		}
		return fmt.Errorf("storage: resume: appends or a flush still in flight: %w", l.err)
	}
	l.resuming = true
	return l.FinishResume(l.planResume().run())
}

// rewind drops everything planned past the visible end: segments rolled
// after it (their files are gone; their mappings are released on the
// worker, with dirFd to sync the names), the planned index entries and
// the pending appends, and makes segment k the active one again.
func (l *Log) rewind(k int, dirFd int) {
	if dropped := slices.Clone(l.segs[k+1:]); len(dropped) > 0 {
		l.dirGen++
		if l.dirFd < 0 {
			l.dirFd, dirFd = dirFd, -1
		}
		l.bg.Add(1)
		l.store.worker.post(func() {
			defer l.bg.Done()
			for _, s := range dropped {
				s.close()
			}
		})
	}
	closeFd(l.fs, dirFd)
	clear(l.segs[k+1:])
	l.segs = l.segs[:k+1]
	s := l.segs[k]
	for _, x := range []*index{&s.idx, &s.tidx} {
		clear(x.m[x.n*x.esize : x.planned*x.esize])
		x.planned = x.n
	}
	if !s.trimmed && !s.sealing {
		s.state = SegmentActive
	}
	s.reserved = s.size
	s.planMaxTs, s.planMaxRel = s.maxTs, s.maxTsRel
	s.maxUnindexed = s.size > 0
	s.lastIdxPos, s.lastTimePos = 0, 0
	if s.size == 0 {
		s.planMaxTs = math.MinInt64
	}
	if s.idx.n > 0 {
		_, pos := s.idx.offsetEntry(s.idx.n - 1)
		s.lastIdxPos = int64(pos)
	}
	if s.tidx.n > 0 {
		ts, rel := s.tidx.timeEntry(s.tidx.n - 1)
		s.lastTimePos = s.idx.lookupOffset(rel)
		s.maxUnindexed = ts != s.maxTs
	}
	for l.pend.len() > 0 {
		l.pend.pop()
	}
	l.next = l.end
	l.truncateEpochs(l.end)
	l.err, l.fence = nil, math.MaxUint64
	l.requestPrealloc()
}
