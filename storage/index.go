package storage

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/ringmq/ringmq/storage/vfs"
	"golang.org/x/sys/unix"
)

// Sparse index entries, little-endian. Never change these layouts.
//
//	.index      rel_offset u32 | position u32        (8 bytes)
//	.timeindex  max_timestamp i64 | rel_offset u32    (12 bytes)
//
// rel_offset is an offset minus the segment's base offset; position is the
// file position of the batch whose base offset is base+rel_offset. A time
// entry (T, R) says: the largest max_timestamp of the batches up to and
// including the one at R is T, and the batch at R is the one that raised it
// to T. Both files are append-only: entries strictly increase in every
// field, and the first entry of each (when the segment has data) is the
// first batch's (rel_offset 0). Golden files: testdata/index-v1.hex and
// testdata/timeindex-v1.hex (index_golden_test.go).
const (
	offsetEntrySize = 8
	timeEntrySize   = 12
)

// index is one mmap'd sparse index file. Entries [0, n) are visible to
// lookups; entries [n, planned) are written for appends still in flight.
// Entries [0, avail) lie on blocks the file system has allocated
// (fallocate), so writing them through the mapping cannot fault: a write
// to a hole on a full disk raises SIGBUS instead of returning ENOSPC.
// Blocks are allocated one indexChunk at a time, ahead of use, by the
// Store's background worker (Log.extendIndexes): an idle partition costs a
// chunk per index, not the index's full size.
// The file is written through its mapping, so its descriptor is normally
// closed (fd -1): it is opened by path only to resize the file and while a
// sealed segment waits for the fdatasync of its indexes.
type index struct {
	fs        vfs.FS
	path      string
	fd        int
	m         []byte // MAP_SHARED, read-write; len is the file size
	esize     int
	n         int
	planned   int
	avail     atomic.Int64 // raised by the background worker
	extending atomic.Bool  // an extension job is queued
}

// indexChunk is how many bytes of an index file are allocated at a time.
const indexChunk = 16 << 10

func (x *index) capacity() int { return len(x.m) / x.esize }

func (x *index) close() {
	if x.fs != nil {
		unmap(x.fs, x.m)
		x.dropFd()
	}
	x.m = nil
}

// takeFrom moves y's file, mapping and entries into x (a closed index),
// closing the descriptor: the mapping is all x needs.
func (x *index) takeFrom(y *index) {
	x.fs, x.path, x.fd, x.m, x.esize, x.n, x.planned = y.fs, y.path, y.fd, y.m, y.esize, y.n, y.planned
	x.avail.Store(y.avail.Load())
	y.fd, y.m = -1, nil
	x.dropFd()
}

// dropFd closes the descriptor (the mapping stays).
func (x *index) dropFd() {
	closeFd(x.fs, x.fd)
	x.fd = -1
}

// openFd opens the file's descriptor if it is closed.
func (x *index) openFd() error {
	if x.fd >= 0 {
		return nil
	}
	fd, err := openFile(x.fs, x.path, unix.O_RDWR)
	if err != nil {
		return err
	}
	x.fd = fd
	return nil
}

// sync makes the entries durable: fdatasync when the descriptor is open,
// msync of the mapping otherwise.
func (x *index) sync() error {
	if x.fd >= 0 {
		return x.fs.Fdatasync(x.fd)
	}
	if len(x.m) == 0 {
		return nil
	}
	return x.fs.Msync(x.m)
}

// put writes the next planned entry. A full index, or one the disk had no
// room to reserve, drops it: the index stays correct, only sparser
// (capacity is sized so that the first does not happen).
func (x *index) put(a uint64, b uint32) bool {
	if x.planned >= min(int(x.avail.Load()), x.capacity()) {
		return false
	}
	e := x.m[x.planned*x.esize:]
	if x.esize == offsetEntrySize {
		binary.LittleEndian.PutUint32(e, uint32(a))
		binary.LittleEndian.PutUint32(e[4:], b)
	} else {
		binary.LittleEndian.PutUint64(e, a)
		binary.LittleEndian.PutUint32(e[8:], b)
	}
	x.planned++
	return true
}

// offsetEntry returns entry i of an offset index: (rel, pos).
func (x *index) offsetEntry(i int) (uint32, uint32) {
	e := x.m[i*offsetEntrySize:]
	return binary.LittleEndian.Uint32(e), binary.LittleEndian.Uint32(e[4:])
}

// timeEntry returns entry i of a time index: (max timestamp, rel).
func (x *index) timeEntry(i int) (int64, uint32) {
	e := x.m[i*timeEntrySize:]
	return int64(binary.LittleEndian.Uint64(e)), binary.LittleEndian.Uint32(e[8:])
}

// lookupOffset returns the position of the last visible entry whose
// relative offset is ≤ rel, or 0 when there is none.
func (x *index) lookupOffset(rel uint32) int64 {
	lo, hi := 0, x.n // find the first entry with entry.rel > rel
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if r, _ := x.offsetEntry(mid); r <= rel {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return 0
	}
	_, pos := x.offsetEntry(lo - 1)
	return int64(pos)
}

// lookupTimeBelow returns the relative offset of the last visible time
// entry whose timestamp is < ts (every batch up to it is older than ts).
func (x *index) lookupTimeBelow(ts int64) (uint32, bool) {
	lo, hi := 0, x.n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if t, _ := x.timeEntry(mid); t < ts {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return 0, false
	}
	_, rel := x.timeEntry(lo - 1)
	return rel, true
}

// validOffsetPrefix counts the leading entries that form a well-formed
// offset index for a segment whose trusted bytes end at limit: entry 0 is
// (0, 0) and later ones increase strictly with positions below limit.
func (x *index) validOffsetPrefix(limit int64) int {
	n := 0
	var prevRel, prevPos uint32
	for i := 0; i < x.capacity(); i++ {
		rel, pos := x.offsetEntry(i)
		if int64(pos) >= limit || (i == 0 && (rel != 0 || pos != 0)) ||
			(i > 0 && (rel <= prevRel || pos <= prevPos)) {
			break
		}
		prevRel, prevPos = rel, pos
		n++
	}
	return n
}

// validTimePrefix counts the leading well-formed time entries whose
// relative offsets are below relLimit: entry 0 has rel 0 and later ones
// increase strictly in both fields.
func (x *index) validTimePrefix(relLimit uint64) int {
	n := 0
	var prevTs int64
	var prevRel uint32
	for i := 0; i < x.capacity(); i++ {
		ts, rel := x.timeEntry(i)
		if uint64(rel) >= relLimit || (i == 0 && rel != 0) ||
			(i > 0 && (rel <= prevRel || ts <= prevTs)) {
			break
		}
		prevTs, prevRel = ts, rel
		n++
	}
	return n
}

// openIndex opens (creating if missing) an index file and maps it as it is,
// grown to at least minEntries entries. Callers validate the entries and
// then reshape it.
func openIndex(fsys vfs.FS, x *index, path string, esize int, minEntries int64) error {
	x.fs, x.path, x.fd, x.esize = fsys, path, -1, esize
	fd, err := openFile(fsys, path, unix.O_RDWR|unix.O_CREAT)
	if err != nil {
		return err
	}
	x.fd = fd
	size, err := fileSize(fsys, fd)
	if err == nil && size < minEntries*int64(esize) {
		size = minEntries * int64(esize)
		err = resize(fsys, fd, size, size)
	}
	if err == nil {
		x.m, err = mapFile(fsys, fd, size, true)
	}
	if err != nil {
		x.close()
		return fmt.Errorf("open index %s: %w", path, err)
	}
	// Entries already written lie on allocated blocks.
	x.avail.Store(allocatedPrefix(fsys, x.fd, int64(len(x.m))) / int64(esize))
	return nil
}

// reserve allocates blocks for a chunk of entries from entry from on and
// sets avail. When the disk is full it keeps what is already allocated:
// the entries before the file's first hole.
func (x *index) reserve(from int) error {
	start := int64(from * x.esize)
	end := min(int64(len(x.m)), start+indexChunk)
	err := allocate(x.fs, x.fd, start, end-start)
	if err != nil {
		end = allocatedPrefix(x.fs, x.fd, int64(len(x.m)))
	}
	x.avail.Store(end / int64(x.esize))
	return err
}

// wantsChunk reports whether the entries planned come within half a chunk
// of the allocated ones, and the next chunk can be asked for.
func (x *index) wantsChunk() bool {
	avail := int(x.avail.Load())
	return avail < x.capacity() && x.planned+indexChunk/2/x.esize >= avail && !x.extending.Load()
}

// reshape keeps the first keep entries, zeroes everything after them (as
// holes) and sizes the file for entries entries, remapping it. A closed
// descriptor is opened for it and closed again.
func (x *index) reshape(keep int, entries int64) error {
	if x.fd < 0 {
		if err := x.openFd(); err != nil {
			return err
		}
		defer x.dropFd()
	}
	unmap(x.fs, x.m)
	x.m = nil
	size := entries * int64(x.esize)
	if err := resize(x.fs, x.fd, int64(keep*x.esize), size); err != nil {
		return err
	}
	m, err := mapFile(x.fs, x.fd, size, true)
	if err != nil {
		return err
	}
	x.m, x.n, x.planned = m, keep, keep
	x.reserve(keep)
	return nil
}
