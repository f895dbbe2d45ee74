package storage

import (
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// segmentFiles are the three open, mapped files of a new segment.
type segmentFiles struct {
	capacity int64 // .log size
	entries  int64 // index capacity in entries
	fds      [3]int
	maps     [3][]byte
	paths    [3]string
}

func (f *segmentFiles) close() {
	for i := range f.fds {
		unmap(f.maps[i])
		closeFd(f.fds[i])
		f.maps[i], f.fds[i] = nil, -1
	}
}

// createSegmentFiles creates the .log (capacity bytes, zero-filled or
// sparse) and both indexes (entries entries, sparse) at paths and maps them.
func createSegmentFiles(paths [3]string, capacity, entries int64, zeroFill bool, cancel *atomic.Bool) (*segmentFiles, error) {
	f := &segmentFiles{capacity: capacity, entries: entries, fds: [3]int{-1, -1, -1}, paths: paths}
	sizes := [3]int64{capacity, entries * offsetEntrySize, entries * timeEntrySize}
	for i := range paths {
		fd, err := createSized(paths[i], sizes[i], zeroFill && i == 0, cancel)
		if err == nil {
			f.fds[i] = fd
			if i != 0 { // indexes are written through their mapping
				err = allocate(fd, 0, sizes[i])
			}
		}
		if err == nil {
			f.maps[i], err = mapFile(fd, sizes[i], i != 0)
		}
		if err != nil {
			f.close()
			for _, p := range paths {
				unix.Unlink(p)
			}
			return nil, err
		}
	}
	return f, nil
}

// newSegment wraps freshly created files as an empty active segment.
func newSegment(dir string, base uint64, f *segmentFiles) *segment {
	return &segment{
		base: base, dir: dir, state: SegmentActive,
		file:     newLogFile(f.fds[0], f.maps[0]),
		fileSize: f.capacity,
		idx:      index{fd: f.fds[1], m: f.maps[1], esize: offsetEntrySize, avail: int(f.entries)},
		tidx:     index{fd: f.fds[2], m: f.maps[2], esize: timeEntrySize, avail: int(f.entries)},
		next:     base, maxTs: math.MinInt64, planMaxTs: math.MinInt64,
	}
}

func segmentPaths(dir string, base uint64) [3]string {
	var p [3]string
	for i, ext := range segmentExts {
		p[i] = segmentPath(dir, base, ext)
	}
	return p
}

// preparedSegment is a next segment made by the background worker under
// temporary names (.next-<n>.log, ...), handed to the log through an atomic
// pointer.
type preparedSegment struct{ *segmentFiles }

func preparedPaths(dir string, n uint64) [3]string {
	var p [3]string
	for i, ext := range segmentExts {
		p[i] = filepath.Join(dir, nextPrefix+"-"+strconv.FormatUint(n, 10)+ext)
	}
	return p
}

func (p *preparedSegment) discard() {
	p.close()
	for _, path := range p.paths {
		unix.Unlink(path)
	}
}

// requestPrealloc asks the background worker for the next segment unless
// one is ready or being made.
func (l *Log) requestPrealloc() {
	if l.closed || l.prepared.Load() != nil || l.preallocBusy.Load() {
		return
	}
	l.preallocBusy.Store(true)
	l.preallocSeq++
	paths := preparedPaths(l.dir, l.preallocSeq)
	capacity := l.cfg.SegmentBytes
	entries, zero := l.cfg.indexEntries(capacity), l.cfg.Preallocate
	l.bg.Add(1)
	l.store.worker.post(func() {
		defer l.bg.Done()
		defer l.preallocBusy.Store(false)
		f, err := createSegmentFiles(paths, capacity, entries, zero, &l.cancel)
		if err != nil {
			if !l.cancel.Load() {
				l.logger.Warn("storage: preallocating a segment failed", "dir", l.dir, "err", err)
			}
			return
		}
		p := &preparedSegment{f}
		if l.cancel.Load() {
			p.discard()
			return
		}
		if old := l.prepared.Swap(p); old != nil {
			old.discard()
		}
	})
}

// roll seals the active segment and starts a new one at l.next.
func (l *Log) roll() error {
	s, err := l.createNext(l.next, l.cfg.SegmentBytes)
	if err != nil {
		return err
	}
	old := l.active()
	old.state = SegmentSealed
	l.segs = append(l.segs, s)
	l.dirGen++
	if old.reserved == old.size && !old.trimmed {
		l.seal(old)
	}
	l.requestPrealloc()
	return nil
}

// createNext takes the preallocated segment when it is ready and large
// enough (renaming its files: metadata only), or creates one inline,
// sparse, and counts the miss.
func (l *Log) createNext(base uint64, capacity int64) (*segment, error) {
	entries := l.cfg.indexEntries(capacity)
	if p := l.prepared.Swap(nil); p != nil {
		if p.capacity >= capacity && p.entries >= entries {
			if s, err := l.install(p, base); err == nil {
				l.stats.preallocHits++
				return s, nil
			} else {
				l.logger.Warn("storage: installing a preallocated segment failed", "err", err)
			}
		} else {
			p.discard()
		}
	}
	l.stats.preallocMisses++
	f, err := createSegmentFiles(segmentPaths(l.dir, base), capacity, entries, false, nil)
	if err != nil {
		return nil, fmt.Errorf("roll %s: %w", l.dir, err)
	}
	return newSegment(l.dir, base, f), nil
}

func (l *Log) install(p *preparedSegment, base uint64) (*segment, error) {
	dst := segmentPaths(l.dir, base)
	for i := range dst {
		if err := unix.Rename(p.paths[i], dst[i]); err != nil {
			p.discard()
			return nil, fmt.Errorf("rename %s: %w", p.paths[i], err)
		}
		p.paths[i] = dst[i]
	}
	return newSegment(l.dir, base, p.segmentFiles), nil
}

// Roll seals the active segment now if it holds anything (an admin action
// and a test hook; appends roll by size and age on their own).
func (l *Log) Roll() error {
	switch {
	case l.closed:
		return ErrClosed
	case l.err != nil:
		return l.err
	case l.active().reserved == 0:
		return nil
	}
	return l.roll()
}
