package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ringmq/ringmq/storage/vfs"
	"golang.org/x/sys/unix"
)

// listSegments returns the partition's segments from the partition and
// archive directories, by base offset, after removing leftovers: files
// renamed for deletion, temporary and preallocated files, indexes without a
// .log, and archive copies of segments still in the partition directory (an
// archive move that did not finish).
func (l *Log) listSegments() ([]segRef, error) {
	hot, err := scanSegmentDir(l.fs, l.dir)
	if err != nil {
		return nil, err
	}
	refs := make([]segRef, 0, len(hot))
	seen := make(map[uint64]bool, len(hot))
	for _, b := range hot {
		refs = append(refs, segRef{base: b, dir: l.dir})
		seen[b] = true
	}
	if l.archiveDir != "" {
		cold, err := scanSegmentDir(l.fs, l.archiveDir)
		if err != nil {
			return nil, err
		}
		for _, b := range cold {
			if seen[b] {
				for _, ext := range segmentExts {
					l.fs.Remove(segmentPath(l.archiveDir, b, ext))
				}
				continue
			}
			refs = append(refs, segRef{base: b, dir: l.archiveDir})
		}
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].base < refs[j].base })
	return refs, nil
}

// scanSegmentDir lists the .log base offsets in dir (missing dir: none) and
// removes what is not part of a segment.
func scanSegmentDir(fsys vfs.FS, dir string) ([]uint64, error) {
	entries, err := fsys.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	var bases []uint64
	logs := map[string]bool{}
	var indexes []string
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, deletedSuffix), strings.HasSuffix(name, tmpSuffix), strings.HasPrefix(name, nextPrefix):
			fsys.Remove(filepath.Join(dir, name))
		case strings.HasSuffix(name, indexExt), strings.HasSuffix(name, timeIndexExt):
			indexes = append(indexes, name)
		default:
			if b, ok := parseSegmentName(name); ok {
				bases = append(bases, b)
				logs[name[:baseNameDigits]] = true
			}
		}
	}
	for _, name := range indexes {
		if len(name) < baseNameDigits || !logs[name[:baseNameDigits]] {
			fsys.Remove(filepath.Join(dir, name))
		}
	}
	return bases, nil
}

// openSegment opens a segment's .log (mapped at its size) and its indexes
// (created empty when missing).
func openSegment(fsys vfs.FS, r segRef) (*segment, error) {
	s := &segment{base: r.base, dir: r.dir, state: SegmentSealed, idx: index{fd: -1}, tidx: index{fd: -1},
		next: r.base, maxTs: math.MinInt64, planMaxTs: math.MinInt64}
	fd, err := openFile(fsys, s.path(logExt), unix.O_RDWR)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	size, err := fileSize(fsys, fd)
	var m []byte
	if err == nil {
		m, err = mapFile(fsys, fd, size, false)
	}
	if err != nil {
		fsys.Close(fd)
		return nil, fmt.Errorf("storage: %s: %w", s.path(logExt), err)
	}
	s.file, s.fileSize = newLogFile(fsys, fd, m), size
	s.readable = dataEnd(fsys, fd, size)
	if err = openIndex(fsys, &s.idx, s.path(indexExt), offsetEntrySize, 0); err == nil {
		err = openIndex(fsys, &s.tidx, s.path(timeIndexExt), timeEntrySize, 0)
	}
	if err != nil {
		s.close()
		return nil, fmt.Errorf("storage: %w", err)
	}
	return s, nil
}

// finish makes the last segment active, trims the sealed ones, fsyncs what
// recovery verified and writes a fresh checkpoint.
func (ld *loader) finish() error {
	l := ld.l
	last := l.segs[len(l.segs)-1]
	for _, s := range l.segs[:len(l.segs)-1] {
		if err := ld.sealLoaded(s); err != nil {
			return err
		}
	}
	if last.dir != l.dir {
		f, err := createMappedSegment(l.fs, segmentPaths(l.dir, ld.expect), l.cfg.SegmentBytes, l.cfg.indexEntries(l.cfg.SegmentBytes))
		if err != nil {
			return fmt.Errorf("storage: %w", err)
		}
		if err := ld.sealLoaded(last); err != nil {
			return err
		}
		last = newSegment(l.dir, ld.expect, f)
		l.segs = append(l.segs, last)
	} else if err := ld.activate(last); err != nil {
		return err
	}
	l.next, l.end = ld.expect, ld.expect
	if ld.clean {
		// A clean close fsync'd everything and its checkpoint names the
		// log end: nothing to sync, and the new checkpoint (not marked
		// clean) is left to the background worker at the next flush tick.
		for _, s := range l.segs {
			s.flushedSize = s.size
		}
		l.flushed, l.rp = l.end, l.checkpointAt()
		return nil
	}
	if err := ld.syncRecovered(); err != nil {
		return err
	}
	l.rp = l.checkpointAt()
	if err := l.WriteCheckpoint(); err != nil {
		// A full disk: the old checkpoint still holds (the log only grew
		// past it); the next flush tick writes this one.
		l.logger.Warn("storage: writing the recovery checkpoint failed", "dir", l.dir, "err", err)
	}
	return nil
}

// sealLoaded trims a loaded, non-last segment to its data and indexes,
// appending a final time index entry if one is missing.
func (ld *loader) sealLoaded(s *segment) error {
	s.state, s.trimmed = SegmentFlushed, true
	if s.dir != ld.l.dir {
		s.state = SegmentArchived
	}
	if s.fileSize != s.size {
		if err := resize(ld.l.fs, s.file.fd, s.size, s.size); err != nil {
			return fmt.Errorf("storage: trim %s: %w", s.path(logExt), err)
		}
		s.fileSize = s.size
	}
	if s.maxUnindexed {
		if err := s.tidx.reshape(s.tidx.n, int64(s.tidx.n+1)); err != nil {
			return fmt.Errorf("storage: %s: %w", s.path(timeIndexExt), err)
		}
		s.tidx.put(uint64(s.planMaxTs), s.planMaxRel)
		s.tidx.n, s.maxUnindexed = s.tidx.planned, false
	}
	for _, x := range []*index{&s.idx, &s.tidx} {
		if len(x.m) != x.n*x.esize {
			if err := x.reshape(x.n, int64(x.n)); err != nil {
				return fmt.Errorf("storage: trim index of %s: %w", s.path(logExt), err)
			}
		}
	}
	return nil
}

// activate prepares the last segment for appends: after an unclean stop
// everything past its data is cut off (so stale bytes can never pass for
// batches later), then the files are sized and mapped to capacity.
func (ld *loader) activate(s *segment) error {
	l := ld.l
	capacity := max(l.cfg.SegmentBytes, s.size)
	keep := s.size
	if ld.clean {
		keep = min(s.fileSize, capacity)
	}
	unmap(l.fs, s.file.data)
	s.file.data = nil
	if err := resize(l.fs, s.file.fd, keep, capacity); err != nil {
		return fmt.Errorf("storage: size %s: %w", s.path(logExt), err)
	}
	m, err := mapFile(l.fs, s.file.fd, capacity, false)
	if err != nil {
		return fmt.Errorf("storage: %s: %w", s.path(logExt), err)
	}
	s.file.data, s.fileSize = m, capacity
	entries := l.cfg.indexEntries(capacity)
	if err := s.idx.reshape(s.idx.n, entries); err != nil {
		return fmt.Errorf("storage: %s: %w", s.path(indexExt), err)
	}
	if err := s.tidx.reshape(s.tidx.n, entries); err != nil {
		return fmt.Errorf("storage: %s: %w", s.path(timeIndexExt), err)
	}
	s.state, s.trimmed, s.flushedSize = SegmentActive, false, 0
	if err := allocate(l.fs, s.file.fd, s.size, min(resumeProbeBytes, capacity-s.size)); err != nil {
		// Serve reads; refuse appends until the space is back.
		l.fenceAt(l.pend.tail, fmt.Errorf("%w: no room for appends in %s: %w", ErrFenced, s.path(logExt), err))
	}
	return nil
}

// syncRecovered fsyncs the segments from the recovery point on (and the
// directory), so the new checkpoint can cover everything recovered.
func (ld *loader) syncRecovered() error {
	l := ld.l
	for i, s := range l.segs {
		if i >= ld.rpIdx || ld.rpIdx >= len(l.segs) {
			if err := errors.Join(l.fs.Fdatasync(s.file.fd), s.idx.sync(), s.tidx.sync()); err != nil {
				return fmt.Errorf("storage: sync %s: %w", s.path(logExt), err)
			}
		}
		s.flushedSize = s.size
	}
	if err := l.fs.Fsync(l.dirFd); err != nil {
		return fmt.Errorf("storage: sync %s: %w", l.dir, err)
	}
	l.flushed = l.end
	return nil
}
