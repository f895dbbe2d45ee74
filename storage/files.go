package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"unsafe"

	"github.com/ringmq/ringmq/storage/vfs"
	"golang.org/x/sys/unix"
)

// File names inside a partition directory. Never change them: they are the
// on-disk layout (see doc.go).
const (
	logExt         = ".log"
	indexExt       = ".index"
	timeIndexExt   = ".timeindex"
	deletedSuffix  = ".deleted"
	tmpSuffix      = ".tmp"
	checkpointName = "recovery-point"
	nextPrefix     = ".next" // preallocated files: .next.log, .next.index, .next.timeindex
	lockName       = ".lock"
	cleanName      = ".clean-shutdown"
	topicsDir      = "topics"
	baseNameDigits = 20
)

var segmentExts = [3]string{logExt, indexExt, timeIndexExt}

// segmentName is the 20-digit, zero-padded base offset Kafka tools expect.
func segmentName(base uint64) string {
	var b [baseNameDigits]byte
	s := strconv.AppendUint(b[:0], base, 10)
	out := make([]byte, baseNameDigits)
	for i := range out {
		out[i] = '0'
	}
	copy(out[baseNameDigits-len(s):], s)
	return string(out)
}

// parseSegmentName returns the base offset of a "<20 digits>.log" name.
func parseSegmentName(name string) (uint64, bool) {
	if len(name) != baseNameDigits+len(logExt) || name[baseNameDigits:] != logExt {
		return 0, false
	}
	v, err := strconv.ParseUint(name[:baseNameDigits], 10, 64)
	return v, err == nil
}

func segmentPath(dir string, base uint64, ext string) string {
	return filepath.Join(dir, segmentName(base)+ext)
}

// The helpers below take the file system (vfs.FS) their descriptors and
// paths belong to: vfs.OS in the server, a vfs.Mem in crash tests.

func openFile(fsys vfs.FS, path string, flags int) (int, error) {
	return fsys.Open(path, flags)
}

func fileSize(fsys vfs.FS, fd int) (int64, error) { return fsys.Size(fd) }

// zeroChunk is the size of the writes that zero-fill a preallocated file.
const zeroChunk = 1 << 20

// createSized creates (truncating) path with size bytes. With zeroFill the
// bytes are written and fdatasync'd, so later writes overwrite allocated,
// written blocks; otherwise the file is sparse. cancel (may be nil) stops a
// long zero-fill early with an error.
func createSized(fsys vfs.FS, path string, size int64, zeroFill bool, cancel *atomic.Bool) (int, error) {
	fd, err := openFile(fsys, path, unix.O_RDWR|unix.O_CREAT|unix.O_TRUNC)
	if err != nil {
		return -1, err
	}
	if err := fillFile(fsys, fd, size, zeroFill, cancel); err != nil {
		fsys.Close(fd)
		fsys.Remove(path)
		return -1, fmt.Errorf("create %s: %w", path, err)
	}
	return fd, nil
}

func fillFile(fsys vfs.FS, fd int, size int64, zeroFill bool, cancel *atomic.Bool) error {
	if !zeroFill {
		return fsys.Ftruncate(fd, size)
	}
	zeros := make([]byte, min(size, zeroChunk))
	for off := int64(0); off < size; {
		if cancel != nil && cancel.Load() {
			return ErrClosed
		}
		n, err := fsys.Pwrite(fd, zeros[:min(int64(len(zeros)), size-off)], off)
		if err != nil {
			return err
		}
		off += int64(n)
	}
	return fsys.Fdatasync(fd)
}

// resize sets a file's size: down to keep (dropping everything after it,
// which also turns stale bytes into holes), then up to size.
func resize(fsys vfs.FS, fd int, keep, size int64) error {
	if err := fsys.Ftruncate(fd, keep); err != nil {
		return err
	}
	if size > keep {
		return fsys.Ftruncate(fd, size)
	}
	return nil
}

// allocate makes the file system allocate blocks for [off, off+n) without
// changing the file's size or contents (fallocate), so later writes there,
// through a mapping too, cannot fail for lack of space. A file system
// without fallocate gets the range written with zeros where it is a hole.
func allocate(fsys vfs.FS, fd int, off, n int64) error {
	if n <= 0 {
		return nil
	}
	err := fsys.Fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, off, n)
	if err != unix.EOPNOTSUPP {
		return err
	}
	size, err := fileSize(fsys, fd)
	if err != nil {
		return err
	}
	return fillHoles(fsys, fd, off, min(off+n, size))
}

// fillHoles writes zeros over the holes of [off, end).
func fillHoles(fsys vfs.FS, fd int, off, end int64) error {
	zeros := make([]byte, min(end-off, zeroChunk))
	for off < end {
		hole, err := fsys.SeekHole(fd, off)
		if err != nil || hole >= end {
			return err
		}
		data, err := fsys.SeekData(fd, hole)
		if err != nil || data > end {
			data = end
		}
		for p := hole; p < data; {
			w, err := fsys.Pwrite(fd, zeros[:min(int64(len(zeros)), data-p)], p)
			if err != nil {
				return err
			}
			p += int64(w)
		}
		off = data
	}
	return nil
}

// dataEnd is where a file's first hole starts (its size when it has
// none): the bytes that can be read through a mapping without the file
// system allocating anything.
func dataEnd(fsys vfs.FS, fd int, size int64) int64 {
	hole, err := fsys.SeekHole(fd, 0)
	if err != nil {
		return size
	}
	return min(hole, size)
}

// allocatedPrefix is how many leading bytes of a file of size bytes lie on
// allocated blocks, rounded down to whole pages (what a mapping faults in).
func allocatedPrefix(fsys vfs.FS, fd int, size int64) int64 {
	hole, err := fsys.SeekHole(fd, 0)
	if err != nil {
		return 0
	}
	if hole >= size {
		return size
	}
	page := int64(os.Getpagesize())
	return hole / page * page
}

// mapFile maps size bytes of fd shared; nil for size 0.
func mapFile(fsys vfs.FS, fd int, size int64, writable bool) ([]byte, error) {
	if size == 0 {
		return nil, nil
	}
	b, err := fsys.Mmap(fd, int(size), writable)
	if err != nil {
		return nil, fmt.Errorf("mmap %d bytes: %w", size, err)
	}
	return b, nil
}

func unmap(fsys vfs.FS, b []byte) {
	if b != nil {
		if err := fsys.Munmap(b); err != nil {
			panic("BUG: storage: munmap of a mapping we own failed: " + err.Error())
		}
	}
}

func closeFd(fsys vfs.FS, fd int) {
	if fd >= 0 {
		fsys.Close(fd)
	}
}

// syncDir makes the names in a directory durable.
func syncDir(fsys vfs.FS, dir string) error {
	fd, err := openFile(fsys, dir, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer fsys.Close(fd)
	return fsys.Fsync(fd)
}

// residentPages is how many pages one mincore call checks (a stack array).
const residentPages = 256

// resident reports whether every page of b (a slice of a mapping) is in the
// page cache. It does not allocate.
func resident(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	page := uintptr(os.Getpagesize())
	start := uintptr(unsafe.Pointer(&b[0])) &^ (page - 1)
	end := uintptr(unsafe.Pointer(&b[0])) + uintptr(len(b))
	var vec [residentPages]byte
	for start < end {
		n := min((end-start+page-1)/page, residentPages)
		_, _, errno := unix.Syscall(unix.SYS_MINCORE, start, n*page, uintptr(unsafe.Pointer(&vec[0])))
		if errno != 0 {
			return false
		}
		for _, v := range vec[:n] {
			if v&1 == 0 {
				return false
			}
		}
		start += n * page
	}
	return true
}
