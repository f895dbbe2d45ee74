package metalog

import (
	"io"

	"github.com/ringmq/ringmq/storage/vfs"
	"golang.org/x/sys/unix"
)

// file is one open file of the store on its file system (vfs.OS in the
// server, a vfs.Mem in crash tests). Write appends at off; a closed file
// has fd -1, so a late call fails (EBADF) instead of reaching whatever
// file reused the number.
type file struct {
	fs   vfs.FS
	fd   int
	name string
	off  int64 // where Write writes next
}

func openFile(fsys vfs.FS, name string, flags int) (*file, error) {
	fd, err := fsys.Open(name, flags)
	if err != nil {
		return nil, err
	}
	return &file{fs: fsys, fd: fd, name: name}, nil
}

func (f *file) Name() string { return f.name }

// WriteAt writes all of b at off.
func (f *file) WriteAt(b []byte, off int64) (int, error) {
	done := 0
	for done < len(b) {
		n, err := f.fs.Pwrite(f.fd, b[done:], off+int64(done))
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return done, err
		case n == 0:
			return done, io.ErrShortWrite
		}
		done += n
	}
	return done, nil
}

// Write appends b at the file's write position (snapshots).
func (f *file) Write(b []byte) (int, error) {
	n, err := f.WriteAt(b, f.off)
	f.off += int64(n)
	return n, err
}

func (f *file) Truncate(size int64) error { return f.fs.Ftruncate(f.fd, size) }
func (f *file) Sync() error               { return f.fs.Fsync(f.fd) }
func (f *file) Datasync() error           { return f.fs.Fdatasync(f.fd) }
func (f *file) Lock() error               { return f.fs.Lock(f.fd) }

func (f *file) Close() error {
	if f.fd < 0 {
		return unix.EBADF
	}
	err := f.fs.Close(f.fd)
	f.fd = -1
	return err
}

// readAll reads the whole file.
func (f *file) readAll() ([]byte, error) {
	size, err := f.fs.Size(f.fd)
	if err != nil {
		return nil, err
	}
	b := make([]byte, size)
	for done := 0; done < len(b); {
		n, err := f.fs.Pread(f.fd, b[done:], int64(done))
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, io.ErrUnexpectedEOF
		}
		done += n
	}
	return b, nil
}
