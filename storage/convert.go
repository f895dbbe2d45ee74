package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/storage/vfs"
	"golang.org/x/sys/unix"
)

// Converting version-1 segments. Data written before record batch version
// 2 (proto/batch_v1.go) is rewritten to version 2 when its partition opens,
// before recovery, so everything past this point — recovery, indexes,
// fetch, replication — sees only version 2. Each batch keeps its offsets,
// timestamps and records section; its header grows by 4 bytes, so file
// positions move: the segment's indexes and the partition's checkpoint,
// which hold positions, are dropped (recovery rebuilds them and, with no
// checkpoint, verifies every batch's CRC).
//
// planConversion decides (no I/O but reading the mapped segments); a
// convertDriver executes the ops in order. Every op is atomic or
// idempotent, so a kill at any point leaves each segment's .log either the
// old version-1 file or the whole version-2 one:
//
//	remove recovery-point; fsync dir       (positions in it are version 1)
//	per version-1 segment:
//	  write <base>.log.tmp, fdatasync      (a torn .tmp is removed at the next open)
//	  remove <base>.index, <base>.timeindex (rebuilt by recovery)
//	  rename <base>.log.tmp -> <base>.log; fsync dir
//
// A later open finds the converted segments in version 2 and converts the
// rest.

// convertOpKind is one step of a conversion.
type convertOpKind uint8

const (
	convRemove  convertOpKind = iota // remove path; a missing file is fine
	convWrite                        // write src converted to path, fdatasync it
	convRename                       // rename path to to
	convSyncDir                      // fsync the directory path
)

// convertOp is one step; src (for convWrite) is the version-1 batches,
// already validated, mapped read-only from the old segment.
type convertOp struct {
	kind     convertOpKind
	path, to string
	src      []byte
}

// convertDriver executes conversion ops. syncConvert does it with plain
// syscalls; crash tests use one that stops part way.
type convertDriver interface {
	do(op convertOp) error
}

// conversion holds a plan and the mappings its writes read from.
type conversion struct {
	fs   vfs.FS
	ops  []convertOp
	maps [][]byte
}

func (c *conversion) release() {
	for _, m := range c.maps {
		unmap(c.fs, m)
	}
	c.maps = nil
}

// convertV1 converts the partition's version-1 segments (refs, by base
// offset) to version 2 through d.
func convertV1(fsys vfs.FS, dir string, refs []segRef, d convertDriver) error {
	c, err := planConversion(fsys, dir, refs)
	defer c.release()
	if err != nil {
		return err
	}
	for _, op := range c.ops {
		if err := d.do(op); err != nil {
			return fmt.Errorf("storage: convert version-1 segments of %s: %w", dir, err)
		}
	}
	return nil
}

// planConversion returns the ops that convert every version-1 segment of
// refs; none when there is none.
func planConversion(fsys vfs.FS, dir string, refs []segRef) (*conversion, error) {
	c := &conversion{fs: fsys}
	ckpt, have, _ := readCheckpoint(fsys, dir) // unreadable: no recovery point, as recovery treats it
	for i, r := range refs {
		// Data below the recovery point was fsync'd: a bad batch there is
		// corruption, never a torn tail.
		flushed := int64(0)
		switch {
		case have && r.base < ckpt.SegmentBase:
			flushed = math.MaxInt64
		case have && r.base == ckpt.SegmentBase:
			flushed = ckpt.SegmentPos
		}
		src, err := v1Batches(r, i == len(refs)-1, flushed, c)
		if err != nil || src == nil {
			if err != nil {
				return c, err
			}
			continue
		}
		if len(c.ops) == 0 {
			c.ops = append(c.ops,
				convertOp{kind: convRemove, path: filepath.Join(dir, checkpointName)},
				convertOp{kind: convSyncDir, path: dir})
		}
		log := segmentPath(r.dir, r.base, logExt)
		c.ops = append(c.ops,
			convertOp{kind: convWrite, path: log + tmpSuffix, src: src},
			convertOp{kind: convRemove, path: segmentPath(r.dir, r.base, indexExt)},
			convertOp{kind: convRemove, path: segmentPath(r.dir, r.base, timeIndexExt)},
			convertOp{kind: convRename, path: log + tmpSuffix, to: log},
			convertOp{kind: convSyncDir, path: r.dir})
	}
	return c, nil
}

// v1Batches maps segment r and returns its version-1 batches, or nil when
// it does not start with one (a version-2 or empty segment). The batches
// must run to the end of the file or to zeros (an unused or untrimmed
// tail); in the last segment, anything else at or past position flushed
// ends the data (a torn tail, which recovery would cut the same way);
// elsewhere it is corruption.
func v1Batches(r segRef, last bool, flushed int64, c *conversion) ([]byte, error) {
	path := segmentPath(r.dir, r.base, logExt)
	fd, err := openFile(c.fs, path, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer c.fs.Close(fd)
	var head [proto.BatchHeaderSizeV1]byte
	if n, err := c.fs.Pread(fd, head[:], 0); err != nil || n < len(head) || head[12] != proto.BatchMagicV1 {
		return nil, nil // the magic of version 1 is not there
	}
	size, err := fileSize(c.fs, fd)
	if err != nil {
		return nil, fmt.Errorf("storage: %s: %w", path, err)
	}
	m, err := mapFile(c.fs, fd, size, false)
	if err != nil {
		return nil, fmt.Errorf("storage: %s: %w", path, err)
	}
	c.maps = append(c.maps, m)
	if _, err := proto.ParseBatchV1(m); err != nil {
		return nil, nil // a version-2 batch whose epoch has 1 in its first byte
	}
	pos, next := 0, r.base
	for pos < len(m) {
		h, err := proto.ParseBatchV1(m[pos:])
		if err == nil && h.BaseOffset != next {
			err = fmt.Errorf("%w: base offset %d, want %d", proto.ErrCorrupt, h.BaseOffset, next)
		}
		if err != nil {
			if (last && int64(pos) >= flushed) || isZero(m[pos:]) {
				break
			}
			return nil, fmt.Errorf("%w: %s: version-1 batch at position %d: %w", ErrCorrupt, path, pos, err)
		}
		pos += h.Size()
		next = h.NextOffset()
	}
	return m[:pos], nil
}

// syncConvert executes conversion ops with plain blocking calls.
type syncConvert struct{ fs vfs.FS }

func (d syncConvert) do(op convertOp) error {
	switch op.kind {
	case convRemove:
		if err := d.fs.Remove(op.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	case convWrite:
		return writeConverted(d.fs, op.path, op.src, -1)
	case convRename:
		return d.fs.Rename(op.path, op.to)
	case convSyncDir:
		return syncDir(d.fs, op.path)
	}
	panic(fmt.Sprintf("BUG: storage: conversion op %d", op.kind))
}

// convertChunk is how many converted bytes writeConverted buffers.
const convertChunk = 1 << 20

// writeConverted creates path with the version-2 form of the version-1
// batches src and fdatasyncs it. With limit >= 0 it stops after writing
// limit bytes, without syncing (a crash test's torn write).
func writeConverted(fsys vfs.FS, path string, src []byte, limit int) error {
	fd, err := openFile(fsys, path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC)
	if err != nil {
		return err
	}
	defer fsys.Close(fd)
	buf := make([]byte, 0, convertChunk+proto.BatchHeaderSize)
	var off int64
	flush := func() error {
		if limit >= 0 && off+int64(len(buf)) > int64(limit) {
			buf = buf[:max(0, int64(limit)-off)]
		}
		for len(buf) > 0 {
			n, err := fsys.Pwrite(fd, buf, off)
			if err != nil {
				return &os.PathError{Op: "write", Path: path, Err: err}
			}
			buf, off = buf[n:], off+int64(n)
		}
		buf = buf[:0]
		return nil
	}
	for pos := 0; pos < len(src) && (limit < 0 || off < int64(limit)); {
		var n int
		if buf, n, err = proto.ConvertBatchV1(buf, src[pos:], v1LeaderEpoch); err != nil {
			panic("BUG: storage: planned version-1 batch does not convert: " + err.Error())
		}
		pos += n
		if len(buf) >= convertChunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil || limit >= 0 {
		return err
	}
	if err := fsys.Fdatasync(fd); err != nil {
		return &os.PathError{Op: "fdatasync", Path: path, Err: err}
	}
	return nil
}
