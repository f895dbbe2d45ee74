package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ringmq/ringmq/storage/vfs"
	"golang.org/x/sys/unix"
)

// EnforceRetention runs the life cycle past sealing; call it from the
// owner's loop on a timer (storage.retention_check_interval). In order it:
//
//   - installs archive copies the background worker finished (the segment
//     is then read from the archive directory);
//   - deletes the oldest segments while the oldest is older than
//     RetentionMs (its newest record) or the partition without it is still
//     at least RetentionBytes. Only flushed or archived segments are
//     deleted, never the active one. Deleting drops the segment here and
//     leaves its files to the worker, which renames them to *.deleted
//     (metadata only, so a restart never sees them again), unmaps them and
//     unlinks them; Views keep the data mapped;
//   - starts archiving the oldest flushed segments older than ArchiveAfter
//     (a rename when the archive is on the same file system, otherwise a
//     copy, fsync and rename into place, then the original is removed; all
//     on the worker).
func (l *Log) EnforceRetention(now time.Time) error {
	if l.closed {
		return ErrClosed
	}
	l.drainArchived()
	l.applySeals()
	nowMs := now.UnixMilli()
	for n := l.expired(nowMs); n > 0; n-- {
		l.deleteOldest()
	}
	l.startArchiving(nowMs)
	l.requestPrealloc()
	return nil
}

// expired returns how many of the oldest segments retention deletes now.
func (l *Log) expired(nowMs int64) int {
	var total int64
	for _, s := range l.segs {
		total += s.size
	}
	n := 0
	for ; n < len(l.segs)-1; n++ {
		s := l.segs[n]
		if (s.state != SegmentFlushed && s.state != SegmentArchived) || s.archiving {
			break
		}
		old := l.cfg.RetentionMs >= 0 && s.maxTs < nowMs-l.cfg.RetentionMs
		big := l.cfg.RetentionBytes >= 0 && total-s.size >= l.cfg.RetentionBytes
		if !old && !big {
			break
		}
		total -= s.size
	}
	return n
}

// deleteOldest drops the oldest segment from the log at once (reads no
// longer see it) and leaves its files to the background worker: renamed to
// *.deleted, unmapped and closed, then unlinked. Until the rename runs, a
// restart still finds the segment, which is only retention not yet done.
func (l *Log) deleteOldest() {
	s := l.segs[0]
	copy(l.segs, l.segs[1:])
	l.segs[len(l.segs)-1] = nil
	l.segs = l.segs[:len(l.segs)-1]
	l.stats.deleted++
	fsys := l.fs
	job := func() {
		var paths [3]string
		for i, ext := range segmentExts {
			paths[i] = s.path(ext) + deletedSuffix
			if err := fsys.Rename(s.path(ext), paths[i]); err != nil {
				l.logger.Warn("storage: deleting a segment failed; the next start deletes it again", "path", s.path(ext), "err", err)
				s.close()
				return
			}
		}
		// The renames reach the disk before the next segment's: jobs run
		// oldest first, so a power cut keeps a suffix of the log and never
		// an older deleted segment before a gap (DESIGN §10).
		if err := syncDir(fsys, filepath.Dir(paths[0])); err != nil {
			l.logger.Warn("storage: syncing a deleted segment's directory failed", "path", paths[0], "err", err)
		}
		s.close()
		for _, p := range paths {
			fsys.Remove(p)
		}
	}
	if l.store == nil {
		job()
		return
	}
	l.bg.Add(1)
	l.store.worker.post(func() { defer l.bg.Done(); job() })
}

type archiveResult struct {
	seg *segment
	err error
}

// startArchiving moves the oldest flushed segments older than ArchiveAfter
// to the archive directory, keeping the archived segments a prefix.
func (l *Log) startArchiving(nowMs int64) {
	if l.archiveDir == "" || l.cfg.ArchiveAfter <= 0 {
		return
	}
	limit := nowMs - l.cfg.ArchiveAfter.Milliseconds()
	for _, s := range l.segs[:len(l.segs)-1] {
		if s.state == SegmentArchived || s.archiving {
			continue
		}
		if s.state != SegmentFlushed || s.maxTs >= limit {
			return
		}
		s.archiving = true
		src, dst := segmentPaths(s.dir, s.base), segmentPaths(l.archiveDir, s.base)
		l.bg.Add(1)
		l.store.worker.post(func() {
			defer l.bg.Done()
			err := moveSegment(l.fs, src, dst)
			l.archMu.Lock()
			l.archDone = append(l.archDone, archiveResult{seg: s, err: err})
			l.archMu.Unlock()
		})
	}
}

// drainArchived installs finished archive moves: the segment's files are
// reopened from the archive directory; the old mapping lives on until its
// Views are released.
func (l *Log) drainArchived() {
	l.archMu.Lock()
	done := l.archDone
	l.archDone = nil
	l.archMu.Unlock()
	for _, r := range done {
		s := r.seg
		s.archiving = false
		if len(l.segs) == 0 {
			continue
		}
		err := r.err
		if err == nil {
			err = l.swapToArchive(s)
		}
		if err != nil {
			l.logger.Warn("storage: archiving segment failed", "segment", s.path(logExt), "err", err)
			continue
		}
		l.stats.archived++
	}
}

func (l *Log) swapToArchive(s *segment) error {
	a, err := openSegment(l.fs, segRef{base: s.base, dir: l.archiveDir})
	if err != nil {
		return err
	}
	if a.fileSize != s.size {
		a.close()
		return fmt.Errorf("%w: archived %s has %d bytes, want %d", ErrCorrupt, a.path(logExt), a.fileSize, s.size)
	}
	a.idx.n, a.idx.planned = s.idx.n, s.idx.planned
	a.tidx.n, a.tidx.planned = s.tidx.n, s.tidx.planned
	s.file.release()
	s.idx.close()
	s.tidx.close()
	s.idx.takeFrom(&a.idx)
	s.tidx.takeFrom(&a.tidx)
	s.file, s.fileSize = a.file, a.fileSize
	s.dir, s.state = l.archiveDir, SegmentArchived
	return nil
}

// moveSegment moves a sealed segment's files (indexes first, the .log
// last) from src to dst paths: rename when possible, otherwise copy to a
// temporary name, fsync, rename, and remove the original. The .log in the
// partition directory stays authoritative until it is gone.
func moveSegment(fsys vfs.FS, src, dst [3]string) error {
	if err := vfs.MkdirAllDurable(fsys, filepath.Dir(dst[0])); err != nil {
		return err
	}
	for _, i := range []int{1, 2, 0} {
		err := fsys.Rename(src[i], dst[i])
		if errors.Is(err, unix.EXDEV) {
			err = copyFile(fsys, src[i], dst[i])
		}
		if err != nil {
			return fmt.Errorf("archive %s: %w", src[i], err)
		}
	}
	if err := syncDir(fsys, filepath.Dir(dst[0])); err != nil {
		return err
	}
	for _, i := range []int{1, 2, 0} {
		if err := fsys.Remove(src[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return syncDir(fsys, filepath.Dir(src[0]))
}

// copyFile copies src to dst through dst.tmp, fsync'd (across file
// systems, where rename fails with EXDEV).
func copyFile(fsys vfs.FS, src, dst string) error {
	b, err := fsys.ReadFile(src)
	if err != nil {
		return err
	}
	tmp := dst + tmpSuffix
	fd, err := openFile(fsys, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC)
	if err != nil {
		return err
	}
	for off := 0; off < len(b) && err == nil; {
		var n int
		n, err = fsys.Pwrite(fd, b[off:], int64(off))
		off += n
	}
	err = errors.Join(err, fsys.Fsync(fd), fsys.Close(fd))
	if err == nil {
		err = fsys.Rename(tmp, dst)
	}
	if err != nil {
		fsys.Remove(tmp)
	}
	return err
}
