// Package vfs is the file-system seam of storage and storage/metalog: every
// file operation they make goes through an FS, so the same code runs on
// the operating system (OS, the server) and on Mem, an in-memory file
// system that can crash (tests).
//
// The seam speaks descriptors, not file objects: the server's ring driver
// writes and fdatasyncs a segment through its descriptor (storage's
// AppendOp.Fd, FlushOp.Fds), so storage keeps descriptors and asks the FS
// to act on them. OS passes them to the kernel unchanged (same system
// calls, no allocation: the server's behaviour and cost are those of the
// direct calls). Mem numbers its own descriptors (from MemFdBase up); only
// its own methods understand them, and a test drives a Log on Mem with a
// SyncDriver whose WriteAt and Sync are Mem's Pwrite and Fdatasync.
//
// Mappings: Mmap returns a byte slice that shares the file's bytes both
// ways (MAP_SHARED on OS; the file's own buffer on Mem), so data written
// by Pwrite is visible through it and index entries written through it are
// file contents that a crash may keep or lose like any unsynced write.
//
// Concurrency: OS is stateless. Mem is safe for concurrent use (one
// mutex); bytes behind a mapping are the caller's to synchronize, as with
// a real mapping, and taking a crash image reads them: no goroutine may
// write through a mapping while Crash runs or while a sync call that
// CrashAtSync picked runs on another goroutine.
package vfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// FS is a file system as storage uses it. Descriptor arguments are those
// Open returned on the same FS. Errors are those of the system calls (for
// Open and path operations, *os.PathError wrapping the errno).
type FS interface {
	// Open opens path with unix.O_* flags (O_CLOEXEC is implied) and
	// mode 0o644 for a file it creates. O_DIRECTORY opens a directory,
	// whose descriptor serves Fsync (the names in it) and Close.
	Open(path string, flags int) (int, error)
	Close(fd int) error
	Pread(fd int, b []byte, off int64) (int, error)
	Pwrite(fd int, b []byte, off int64) (int, error)
	// Fdatasync makes the file's data and size durable; Fsync too, and
	// on a directory descriptor the names in the directory.
	Fdatasync(fd int) error
	Fsync(fd int) error
	Ftruncate(fd int, size int64) error
	// Fallocate is fallocate(2): unix.FALLOC_FL_KEEP_SIZE allocates,
	// with unix.FALLOC_FL_PUNCH_HOLE it deallocates (reads give zeros).
	Fallocate(fd int, mode uint32, off, n int64) error
	// SeekHole and SeekData are lseek(2) with SEEK_HOLE and SEEK_DATA.
	SeekHole(fd int, off int64) (int64, error)
	SeekData(fd int, off int64) (int64, error)
	Size(fd int) (int64, error)
	// Lock takes an exclusive non-blocking lock (flock): unix.EWOULDBLOCK
	// when another holder has it.
	Lock(fd int) error
	// Mmap maps the first size bytes of fd, shared; Munmap releases a
	// mapping; Msync makes what was written through it durable.
	Mmap(fd int, size int, writable bool) ([]byte, error)
	Munmap(b []byte) error
	Msync(b []byte) error

	Rename(from, to string) error
	Remove(path string) error
	RemoveAll(path string) error
	Mkdir(path string) error
	MkdirAll(path string) error
	ReadDir(path string) ([]fs.DirEntry, error)
	Stat(path string) (fs.FileInfo, error)
	ReadFile(path string) ([]byte, error)
}

// OS is the operating system's file system: each method is the system
// call (or os function) of the same name.
var OS FS = osFS{}

// Or returns fsys, or OS when fsys is nil.
func Or(fsys FS) FS {
	if fsys == nil {
		return OS
	}
	return fsys
}

type osFS struct{}

func (osFS) Open(path string, flags int) (int, error) {
	fd, err := unix.Open(path, flags|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return fd, nil
}

func (osFS) Close(fd int) error                              { return unix.Close(fd) }
func (osFS) Pread(fd int, b []byte, off int64) (int, error)  { return unix.Pread(fd, b, off) }
func (osFS) Pwrite(fd int, b []byte, off int64) (int, error) { return unix.Pwrite(fd, b, off) }
func (osFS) Fdatasync(fd int) error                          { return unix.Fdatasync(fd) }
func (osFS) Fsync(fd int) error                              { return unix.Fsync(fd) }
func (osFS) Ftruncate(fd int, size int64) error              { return unix.Ftruncate(fd, size) }
func (osFS) Fallocate(fd int, mode uint32, off, n int64) error {
	return unix.Fallocate(fd, mode, off, n)
}
func (osFS) SeekHole(fd int, off int64) (int64, error) { return unix.Seek(fd, off, unix.SEEK_HOLE) }
func (osFS) SeekData(fd int, off int64) (int64, error) { return unix.Seek(fd, off, unix.SEEK_DATA) }

func (osFS) Size(fd int) (int64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, err
	}
	return st.Size, nil
}

func (osFS) Lock(fd int) error { return unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) }

func (osFS) Mmap(fd int, size int, writable bool) ([]byte, error) {
	prot := unix.PROT_READ
	if writable {
		prot |= unix.PROT_WRITE
	}
	return unix.Mmap(fd, 0, size, prot, unix.MAP_SHARED)
}

func (osFS) Munmap(b []byte) error { return unix.Munmap(b) }
func (osFS) Msync(b []byte) error  { return unix.Msync(b, unix.MS_SYNC) }

func (osFS) Rename(from, to string) error               { return os.Rename(from, to) }
func (osFS) Remove(path string) error                   { return os.Remove(path) }
func (osFS) RemoveAll(path string) error                { return os.RemoveAll(path) }
func (osFS) Mkdir(path string) error                    { return os.Mkdir(path, 0o755) }
func (osFS) MkdirAll(path string) error                 { return os.MkdirAll(path, 0o755) }
func (osFS) ReadDir(path string) ([]fs.DirEntry, error) { return os.ReadDir(path) }
func (osFS) Stat(path string) (fs.FileInfo, error)      { return os.Stat(path) }
func (osFS) ReadFile(path string) ([]byte, error)       { return os.ReadFile(path) }

// MkdirAllDurable is MkdirAll whose new directories survive a power cut:
// the parent of each directory it creates is fsync'd (a directory's own
// name lives in its parent). Directories that existed are left alone.
func MkdirAllDurable(fsys FS, path string) error {
	var missing []string
	for p := filepath.Clean(path); ; p = filepath.Dir(p) {
		if _, err := fsys.Stat(p); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, p)
		if p == filepath.Dir(p) {
			break
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := fsys.MkdirAll(path); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := SyncDir(fsys, filepath.Dir(missing[i])); err != nil {
			return err
		}
	}
	return nil
}

// SyncDir fsyncs a directory, making the names in it durable.
func SyncDir(fsys FS, dir string) error {
	fd, err := fsys.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	err = fsys.Fsync(fd)
	return errors.Join(err, fsys.Close(fd))
}

// SectorSize is the unit a disk writes atomically: a power cut keeps or
// loses each sector of an unsynced write whole (Mem tears at it too).
const SectorSize = 512

// LostSector reports whether the bytes b of a file (from its offset 0)
// show, at or after position from, a write lost to a power cut: the part
// of some sector from there on (at least 8 bytes, reaching the sector's end
// or the end of b) is all zeros, which is what an unwritten sector of a new
// or truncated file reads as. A flipped byte leaves no such thing; data
// that is zero for a whole sector's part is taken for a lost write too.
// The last sector of b, when it holds fewer than 8 bytes, counts if it is
// all zeros from its start: a write lost there leaves nothing longer.
func LostSector(b []byte, from int) bool {
	for k := max(from, 0); k < len(b); {
		e := min((k/SectorSize+1)*SectorSize, len(b))
		whole := k%SectorSize == 0 && e == len(b) // the short last sector
		if (e-k >= 8 || whole) && isZero(b[k:e]) {
			return true
		}
		k = e
	}
	return false
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
