package metalog

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/ringmq/ringmq/storage/vfs"
	"golang.org/x/sys/unix"
)

// write appends the mutations to the log in one write, syncs if the options
// say so, applies them to the map and then compacts if the log has grown
// enough. Deletes of missing keys are dropped.
func (s *Store) write(ms ...mutation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeLocked(ms)
}

func (s *Store) writeLocked(ms []mutation) error {
	if err := s.usable(); err != nil {
		return err
	}
	buf := s.scratch[:0]
	for _, m := range ms {
		if m.op == opDelete {
			if _, ok := s.t.m[m.key]; !ok {
				continue
			}
		}
		buf = appendRecord(buf, m.op, m.key, m.value)
	}
	if cap(buf) <= maxScratch {
		s.scratch = buf
	}
	if len(buf) == 0 {
		return nil
	}
	if err := s.appendLog(buf); err != nil {
		return err
	}
	for _, m := range ms {
		if m.op == opPut {
			s.t.put(m.key, bytes.Clone(m.value))
		} else {
			s.t.delete(m.key)
		}
	}
	s.maybeCompact()
	return nil
}

func (s *Store) usable() error {
	switch {
	case s.closed:
		return ErrClosed
	case s.err != nil:
		return s.err
	}
	return nil
}

// fence makes every later write fail with ErrFenced and cause.
func (s *Store) fence(cause error) error {
	if s.err == nil {
		s.err = fmt.Errorf("%w: %w", ErrFenced, cause)
	}
	return s.err
}

// appendLog writes buf at the end of the log. If the write fails, it cuts
// whatever part of it landed so the log stays a clean prefix; if even that
// fails, the store is fenced (a later append would follow garbage).
func (s *Store) appendLog(buf []byte) error {
	if _, err := s.log.WriteAt(buf, s.logSize); err != nil {
		if terr := s.log.Truncate(s.logSize); terr != nil {
			return s.fence(fmt.Errorf("append: %w; truncate: %w", err, terr))
		}
		return fmt.Errorf("metalog: append: %w", err)
	}
	s.logSize += int64(len(buf))
	if s.opts.SyncEveryWrite {
		if err := s.log.Datasync(); err != nil {
			return s.fence(fmt.Errorf("fdatasync: %w", err))
		}
	}
	return nil
}

// Sync makes every change written so far durable (fdatasync of the log).
// A failed sync fences the store: after fsync fails, the kernel may have
// dropped the dirty pages, so what is on disk is unknown.
func (s *Store) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return err
	}
	if err := s.log.Datasync(); err != nil {
		return s.fence(fmt.Errorf("fdatasync: %w", err))
	}
	return nil
}

// Compact writes a snapshot of the live map (tmp file, fsync, rename,
// directory fsync) and then empties the log. It also makes every earlier
// change durable.
func (s *Store) Compact() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return err
	}
	return s.compactLocked()
}

func (s *Store) compactLocked() error {
	// The log must be durable through every write the snapshot covers: a
	// power cut after the snapshot's rename but before the log reset
	// leaves both, and replaying a log that lost its unsynced tail over
	// the snapshot would take the keys written there back to older values.
	if err := s.log.Datasync(); err != nil {
		return s.fence(fmt.Errorf("fdatasync before compaction: %w", err))
	}
	if err := writeSnapshot(s.fs, s.dir, &s.t); err != nil {
		return err // the log is untouched: old or new snapshot + log is whole
	}
	if err := s.log.Truncate(0); err != nil {
		return fmt.Errorf("metalog: reset log: %w", err)
	}
	s.logSize = 0
	if err := s.log.Sync(); err != nil {
		// New appends at offset 0 over a reset that may not be durable could
		// leave new records followed by old ones: refuse further writes.
		return s.fence(fmt.Errorf("fsync log reset: %w", err))
	}
	s.nextCompactAt = 0
	return nil
}

// maybeCompact runs automatic compaction: the log is above CompactBytes
// and more than twice the live size. A failure is logged, not returned
// (the write that triggered it did succeed), and the next attempt waits
// until the log has grown by another CompactBytes.
func (s *Store) maybeCompact() {
	limit := s.opts.CompactBytes
	if limit < 0 || s.logSize <= limit || s.logSize <= 2*s.t.liveBytes || s.logSize < s.nextCompactAt {
		return
	}
	if err := s.compactLocked(); err != nil {
		s.nextCompactAt = s.logSize + limit
		s.opts.Logger.Error("metalog: automatic compaction failed", "dir", s.dir, "err", err)
	}
}

// Close syncs the log (unless every write already did, or the store is
// fenced), releases the directory lock and closes the file. After Close,
// writes return ErrClosed and reads find nothing.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	s.t = newTable()
	s.t.finishLoad()
	var serr error
	if s.err == nil && !s.opts.SyncEveryWrite {
		serr = s.log.Datasync()
	}
	return errors.Join(serr, s.log.Close())
}

// lockFile takes an exclusive, non-blocking flock on f (released when f is
// closed), so two Stores never share a directory.
func lockFile(f *file) error {
	lerr := f.Lock()
	if errors.Is(lerr, unix.EWOULDBLOCK) {
		return fmt.Errorf("%w: %s", ErrLocked, f.Name())
	}
	if lerr != nil {
		return fmt.Errorf("metalog: lock: %w", lerr)
	}
	return nil
}

// syncDir fsyncs a directory so that creations and renames in it are durable.
func syncDir(fsys vfs.FS, dir string) error {
	d, err := openFile(fsys, dir, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("metalog: open dir: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("metalog: fsync dir: %w", err)
	}
	return nil
}
