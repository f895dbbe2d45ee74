package storage

import (
	"io/fs"
	"sync/atomic"

	"github.com/ringmq/ringmq/storage/vfs"
)

// blockingHook, when set, is called before each blocking file operation
// storage makes (every vfs.FS method but Close), with the operation's
// name. Tests use it to check that no such operation runs on a thread that
// must not block (a reactor's). Unset, it costs one atomic load.
var blockingHook atomic.Pointer[func(op string)]

// SetBlockingHook installs f as the blocking-operation hook (nil removes
// it) and returns a function that restores the previous one. For tests.
func SetBlockingHook(f func(op string)) (restore func()) {
	var p *func(op string)
	if f != nil {
		p = &f
	}
	old := blockingHook.Swap(p)
	return func() { blockingHook.Store(old) }
}

// blocking reports a blocking file operation to the hook.
func blocking(op string) {
	if h := blockingHook.Load(); h != nil {
		(*h)(op)
	}
}

// hookedFS is the file system a Store hands its logs: every call but
// Close reports itself to the blocking hook first, so that no call site
// can forget to.
type hookedFS struct{ fs vfs.FS }

var _ vfs.FS = hookedFS{}

func (h hookedFS) Open(path string, flags int) (int, error) {
	blocking("open")
	return h.fs.Open(path, flags)
}

func (h hookedFS) Close(fd int) error { return h.fs.Close(fd) }

func (h hookedFS) Pread(fd int, b []byte, off int64) (int, error) {
	blocking("pread")
	return h.fs.Pread(fd, b, off)
}

func (h hookedFS) Pwrite(fd int, b []byte, off int64) (int, error) {
	blocking("pwrite")
	return h.fs.Pwrite(fd, b, off)
}

func (h hookedFS) Fdatasync(fd int) error {
	blocking("fdatasync")
	return h.fs.Fdatasync(fd)
}

func (h hookedFS) Fsync(fd int) error {
	blocking("fsync")
	return h.fs.Fsync(fd)
}

func (h hookedFS) Ftruncate(fd int, size int64) error {
	blocking("ftruncate")
	return h.fs.Ftruncate(fd, size)
}

func (h hookedFS) Fallocate(fd int, mode uint32, off, n int64) error {
	blocking("fallocate")
	return h.fs.Fallocate(fd, mode, off, n)
}

func (h hookedFS) SeekHole(fd int, off int64) (int64, error) {
	blocking("lseek")
	return h.fs.SeekHole(fd, off)
}

func (h hookedFS) SeekData(fd int, off int64) (int64, error) {
	blocking("lseek")
	return h.fs.SeekData(fd, off)
}

func (h hookedFS) Size(fd int) (int64, error) {
	blocking("fstat")
	return h.fs.Size(fd)
}

func (h hookedFS) Lock(fd int) error {
	blocking("flock")
	return h.fs.Lock(fd)
}

func (h hookedFS) Mmap(fd int, size int, writable bool) ([]byte, error) {
	blocking("mmap")
	return h.fs.Mmap(fd, size, writable)
}

func (h hookedFS) Munmap(b []byte) error {
	blocking("munmap")
	return h.fs.Munmap(b)
}

func (h hookedFS) Msync(b []byte) error {
	blocking("msync")
	return h.fs.Msync(b)
}

func (h hookedFS) Rename(from, to string) error {
	blocking("rename")
	return h.fs.Rename(from, to)
}

func (h hookedFS) Remove(path string) error {
	blocking("unlink")
	return h.fs.Remove(path)
}

func (h hookedFS) RemoveAll(path string) error {
	blocking("unlink")
	return h.fs.RemoveAll(path)
}

func (h hookedFS) Mkdir(path string) error {
	blocking("mkdir")
	return h.fs.Mkdir(path)
}

func (h hookedFS) MkdirAll(path string) error {
	blocking("mkdir")
	return h.fs.MkdirAll(path)
}

func (h hookedFS) ReadDir(path string) ([]fs.DirEntry, error) {
	blocking("getdents")
	return h.fs.ReadDir(path)
}

func (h hookedFS) Stat(path string) (fs.FileInfo, error) {
	blocking("stat")
	return h.fs.Stat(path)
}

func (h hookedFS) ReadFile(path string) ([]byte, error) {
	blocking("read")
	return h.fs.ReadFile(path)
}
