package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"

	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/storage/vfs"
	"golang.org/x/sys/unix"
)

// Side files: small files other packages keep beside a partition's log
// (the idempotent-producer snapshot) or in the data directory (the
// producer id counter). Storage only writes and reads them whole; their
// formats belong to their owners.

// WriteFileAsync replaces the file name in the log's directory with data
// on the Store's background worker, after the jobs queued before it: data
// goes to name.tmp (removed by the next open if a crash leaves it),
// fdatasync, and then, when prev is not empty, the current file is renamed
// to prev before name.tmp is renamed to name. A failure is logged; Close
// waits for the write. The caller must not change data afterwards.
func (l *Log) WriteFileAsync(name, prev string, data []byte) {
	if l.closed {
		return
	}
	dir, fsys, logger := l.dir, l.fs, l.logger
	job := func() {
		if l.cancel.Load() {
			return
		}
		if err := writeSideFile(fsys, dir, name, prev, data); err != nil {
			logger.Warn("storage: write file failed", "dir", dir, "file", name, "err", err)
		}
	}
	if l.store == nil {
		job()
		return
	}
	l.ckpt.Add(1)
	l.store.worker.post(func() {
		defer l.ckpt.Done()
		job()
	})
}

// ReadFile returns the file name of the log's directory; a missing file is
// an error matching fs.ErrNotExist. It blocks: not on a reactor.
func (l *Log) ReadFile(name string) ([]byte, error) {
	blocking("open")
	return l.fs.ReadFile(filepath.Join(l.dir, name))
}

// WriteFile replaces the file name in the log's directory with data
// (name.tmp, fdatasync, rename, fsync of the directory), at once. It
// blocks: not on a reactor (a goroutine that owns the log meanwhile, such
// as a truncation's).
func (l *Log) WriteFile(name string, data []byte) error {
	if err := writeSideFile(l.fs, l.dir, name, "", data); err != nil {
		return err
	}
	return syncDir(l.fs, l.dir)
}

// WriteFile replaces the file name in the store's directory with data
// (name.tmp, fdatasync, rename, fsync of the directory). It blocks: not on
// a reactor.
func (s *Store) WriteFile(name string, data []byte) error {
	if err := writeSideFile(s.fs, s.dir, name, "", data); err != nil {
		return err
	}
	return syncDir(s.fs, s.dir)
}

// ReadFile returns the file name of the store's directory; a missing file
// is an error matching fs.ErrNotExist. It blocks: not on a reactor.
func (s *Store) ReadFile(name string) ([]byte, error) {
	blocking("open")
	return s.fs.ReadFile(filepath.Join(s.dir, name))
}

func writeSideFile(fsys vfs.FS, dir, name, prev string, data []byte) error {
	path := filepath.Join(dir, name)
	tmp := path + tmpSuffix
	fd, err := openFile(fsys, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = fsys.Pwrite(fd, data, 0)
	if err == nil {
		blocking("fsync")
		err = fsys.Fdatasync(fd)
	}
	fsys.Close(fd)
	if err == nil && prev != "" {
		blocking("rename")
		if err = fsys.Rename(path, filepath.Join(dir, prev)); errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
	}
	if err == nil {
		blocking("rename")
		err = fsys.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// WalkBatchHeaders calls fn with the header of every batch that holds
// offsets at or after from (from below the log start starts at the log
// start), in offset order up to the log end. It reads only headers (a page
// of each batch). fn's error, or a read error (damaged data), ends the
// walk and is returned. It faults pages in: not on a reactor.
func (l *Log) WalkBatchHeaders(from uint64, fn func(h *proto.BatchHeader) error) error {
	off := max(from, l.LogStart())
	var views []View
	for off < l.end {
		var err error
		views, err = l.Read(off, math.MaxInt, views[:0])
		if err != nil {
			return err
		}
		next := off
		for i := range views {
			if err == nil {
				next, err = walkHeaders(views[i].Bytes(), off, next, fn)
			}
			views[i].Release()
		}
		switch {
		case err != nil:
			return err
		case next <= off:
			return fmt.Errorf("storage: walk of batch headers stuck at offset %d", off)
		}
		off = next
	}
	return nil
}

// walkHeaders calls fn for each batch of b that ends at or after from and
// returns the offset after the last batch of b.
func walkHeaders(b []byte, from, next uint64, fn func(h *proto.BatchHeader) error) (uint64, error) {
	for len(b) > 0 {
		h, err := proto.ParseBatchHeader(b)
		if err != nil {
			return next, fmt.Errorf("storage: batch header at offset %d: %w", next, err)
		}
		if h.Size() > len(b) {
			return next, fmt.Errorf("storage: batch at offset %d: %w", h.BaseOffset, proto.ErrShortBatch)
		}
		if h.LastOffset() >= from {
			if err := fn(&h); err != nil {
				return next, err
			}
		}
		next = h.NextOffset()
		b = b[h.Size():]
	}
	return next, nil
}
