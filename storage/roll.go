package storage

import (
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"github.com/ringmq/ringmq/storage/vfs"
	"golang.org/x/sys/unix"
)

// segmentFiles are the three files of a new segment: created and sized
// (createSegmentFiles), then opened and mapped (mapFiles) when the
// segment is put to use. Only the .log keeps a descriptor once mapped
// (the driver writes through it); the indexes are written through their
// mappings.
type segmentFiles struct {
	fs       vfs.FS
	capacity int64 // .log size
	entries  int64 // index capacity in entries
	fds      [3]int
	maps     [3][]byte
	paths    [3]string
}

func (f *segmentFiles) close() {
	for i := range f.fds {
		unmap(f.fs, f.maps[i])
		closeFd(f.fs, f.fds[i])
		f.maps[i], f.fds[i] = nil, -1
	}
}

// createSegmentFiles creates the .log (capacity bytes, zero-filled or
// sparse) and both indexes (entries entries, allocated) at paths and
// closes them: a prepared segment holds no descriptor and no mapping.
func createSegmentFiles(fsys vfs.FS, paths [3]string, capacity, entries int64, zeroFill bool, cancel *atomic.Bool) (*segmentFiles, error) {
	f := &segmentFiles{fs: fsys, capacity: capacity, entries: entries, fds: [3]int{-1, -1, -1}, paths: paths}
	sizes := f.sizes()
	for i := range paths {
		fd, err := createSized(fsys, paths[i], sizes[i], zeroFill && i == 0, cancel)
		if err == nil && i != 0 { // indexes are written through their mapping
			err = allocate(fsys, fd, 0, min(sizes[i], indexChunk))
		}
		closeFd(fsys, fd)
		if err != nil {
			for _, p := range paths {
				fsys.Remove(p)
			}
			return nil, err
		}
	}
	return f, nil
}

func (f *segmentFiles) sizes() [3]int64 {
	return [3]int64{f.capacity, f.entries * offsetEntrySize, f.entries * timeEntrySize}
}

// mapFiles opens and maps created segment files: the .log read-only
// with its descriptor kept for writes, the indexes read-write with their
// descriptors closed.
func (f *segmentFiles) mapFiles() error {
	sizes := f.sizes()
	for i, p := range f.paths {
		fd, err := openFile(f.fs, p, unix.O_RDWR)
		if err == nil {
			f.maps[i], err = mapFile(f.fs, fd, sizes[i], i != 0)
		}
		if i == 0 && err == nil {
			f.fds[0] = fd
			continue
		}
		closeFd(f.fs, fd)
		if err != nil {
			f.close()
			return err
		}
	}
	return nil
}

// createMappedSegment creates a segment's files and maps them.
func createMappedSegment(fsys vfs.FS, paths [3]string, capacity, entries int64) (*segmentFiles, error) {
	f, err := createSegmentFiles(fsys, paths, capacity, entries, false, nil)
	if err == nil {
		if err = f.mapFiles(); err != nil {
			for _, p := range paths {
				fsys.Remove(p)
			}
		}
	}
	return f, err
}

// newSegment wraps freshly created, mapped files as an empty active
// segment.
func newSegment(dir string, base uint64, f *segmentFiles) *segment {
	s := &segment{
		base: base, dir: dir, state: SegmentActive,
		file:     newLogFile(f.fs, f.fds[0], f.maps[0]),
		fileSize: f.capacity,
		idx:      index{fs: f.fs, path: f.paths[1], fd: -1, m: f.maps[1], esize: offsetEntrySize},
		tidx:     index{fs: f.fs, path: f.paths[2], fd: -1, m: f.maps[2], esize: timeEntrySize},
		next:     base, maxTs: math.MinInt64, planMaxTs: math.MinInt64,
	}
	s.idx.avail.Store(min(f.entries, indexChunk/offsetEntrySize))
	s.tidx.avail.Store(min(f.entries, indexChunk/timeEntrySize))
	return s
}

// extendIndexes asks the background worker to allocate the next chunk of
// the active segment's index files when the planned entries come near the
// allocated ones. Until it is done, entries past them are dropped (the
// index is only sparser). It does not allocate unless it posts a job.
func (l *Log) extendIndexes(s *segment) {
	for _, x := range []*index{&s.idx, &s.tidx} {
		if !x.wantsChunk() {
			continue
		}
		x.extending.Store(true)
		fsys, path, esize := x.fs, x.path, int64(x.esize)
		from := x.avail.Load() * esize
		to := min(int64(len(x.m)), from+indexChunk)
		job := func() {
			defer x.extending.Store(false)
			fd, err := openFile(fsys, path, unix.O_RDWR)
			if err == nil {
				err = allocate(fsys, fd, from, to-from)
				closeFd(fsys, fd)
			}
			if err == nil {
				x.avail.Store(to / esize)
			}
		}
		if l.store == nil {
			job()
			continue
		}
		l.bg.Add(1)
		l.store.worker.post(func() { defer l.bg.Done(); job() })
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
		p.fs.Remove(path)
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
		f, err := createSegmentFiles(l.fs, paths, capacity, entries, zero, &l.cancel)
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
	if old.reserved == old.size && !old.sealing {
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
	f, err := createMappedSegment(l.fs, segmentPaths(l.dir, base), capacity, entries)
	if err != nil {
		return nil, fmt.Errorf("roll %s: %w", l.dir, err)
	}
	return newSegment(l.dir, base, f), nil
}

func (l *Log) install(p *preparedSegment, base uint64) (*segment, error) {
	dst := segmentPaths(l.dir, base)
	for i := range dst {
		if err := l.fs.Rename(p.paths[i], dst[i]); err != nil {
			p.discard()
			return nil, fmt.Errorf("rename %s: %w", p.paths[i], err)
		}
		p.paths[i] = dst[i]
	}
	if err := p.mapFiles(); err != nil {
		p.discard()
		return nil, fmt.Errorf("map %s: %w", dst[0], err)
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
