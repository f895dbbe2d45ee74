package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/storage/vfs"
	"golang.org/x/sys/unix"
)

// Checkpoint file layout (little-endian), <partition>/recovery-point,
// written whole to recovery-point.tmp, fdatasync'd and renamed over the old
// one. These offsets, the magic and version 1 are persisted: never change
// them; a new layout needs a new version.
//
//	offset size field
//	     0    4 magic            "RMQK"
//	     4    1 version          1
//	     5    1 flags            bit 0: written by a clean close
//	     6    2 body_length      36 for version 1
//	     8    8 recovery_point   every offset below it is fsync'd
//	    16    8 segment_base     base offset of the segment holding it
//	    24    8 segment_pos      its file position in that segment
//	    32    8 max_timestamp    segment's running max timestamp before pos
//	    40    4 max_ts_rel       relative offset of the batch that set it
//	    44    4 crc32c           Castagnoli over bytes [0, 44)
const (
	checkpointMagic   = "RMQK"
	checkpointVersion = 1
	checkpointBodyLen = 36
	checkpointSize    = 8 + checkpointBodyLen + 4
	checkpointClean   = 1
)

// Checkpoint is a partition's recovery point: recovery after an unclean
// stop verifies only the log past it.
type Checkpoint struct {
	RecoveryPoint   uint64
	SegmentBase     uint64
	SegmentPos      int64
	MaxTimestamp    int64
	MaxTimestampRel uint32
	Clean           bool
}

// AppendCheckpoint appends the encoding of c to dst.
func AppendCheckpoint(dst []byte, c *Checkpoint) []byte {
	start := len(dst)
	var flags byte
	if c.Clean {
		flags |= checkpointClean
	}
	le := binary.LittleEndian
	dst = append(dst, checkpointMagic...)
	dst = append(dst, checkpointVersion, flags)
	dst = le.AppendUint16(dst, checkpointBodyLen)
	dst = le.AppendUint64(dst, c.RecoveryPoint)
	dst = le.AppendUint64(dst, c.SegmentBase)
	dst = le.AppendUint64(dst, uint64(c.SegmentPos))
	dst = le.AppendUint64(dst, uint64(c.MaxTimestamp))
	dst = le.AppendUint32(dst, c.MaxTimestampRel)
	return le.AppendUint32(dst, proto.CRC32C(dst[start:]))
}

// errBadCheckpoint is wrapped with ErrCorrupt by ParseCheckpoint.
var errBadCheckpoint = errors.New("bad checkpoint")

// ParseCheckpoint decodes a checkpoint from the start of src and returns the
// bytes after it. Any damage is an error wrapping ErrCorrupt.
func ParseCheckpoint(src []byte) (Checkpoint, []byte, error) {
	var c Checkpoint
	if len(src) < checkpointSize {
		return c, src, fmt.Errorf("%w: %w: %d bytes", ErrCorrupt, errBadCheckpoint, len(src))
	}
	d := proto.NewDecoder(src[:checkpointSize])
	magic := d.Bytes(4)
	version, flags, bodyLen := d.U8(), d.U8(), d.U16()
	c.RecoveryPoint = d.U64()
	c.SegmentBase = d.U64()
	c.SegmentPos = int64(d.U64())
	c.MaxTimestamp = d.I64()
	c.MaxTimestampRel = d.U32()
	crc := d.U32()
	c.Clean = flags&checkpointClean != 0
	switch {
	case d.Err() != nil:
		return c, src, fmt.Errorf("%w: %w: %w", ErrCorrupt, errBadCheckpoint, d.Err())
	case string(magic) != checkpointMagic || version != checkpointVersion || bodyLen != checkpointBodyLen:
		return c, src, fmt.Errorf("%w: %w: magic %q version %d length %d", ErrCorrupt, errBadCheckpoint, magic, version, bodyLen)
	case crc != proto.CRC32C(src[:checkpointSize-4]):
		return c, src, fmt.Errorf("%w: %w: crc mismatch", ErrCorrupt, errBadCheckpoint)
	case c.SegmentPos < 0 || c.RecoveryPoint < c.SegmentBase:
		return c, src, fmt.Errorf("%w: %w: position %d, recovery point %d before segment %d", ErrCorrupt, errBadCheckpoint, c.SegmentPos, c.RecoveryPoint, c.SegmentBase)
	}
	return c, src[checkpointSize:], nil
}

// writeCheckpoint replaces dir's checkpoint atomically (tmp, fdatasync,
// rename).
func writeCheckpoint(fsys vfs.FS, dir string, c *Checkpoint) error {
	var buf [checkpointSize]byte
	b := AppendCheckpoint(buf[:0], c)
	path := filepath.Join(dir, checkpointName)
	tmp := path + tmpSuffix
	fd, err := openFile(fsys, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC)
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	_, err = fsys.Pwrite(fd, b, 0)
	if err == nil {
		err = fsys.Fdatasync(fd)
	}
	fsys.Close(fd)
	if err == nil {
		err = fsys.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("write checkpoint %s: %w", path, err)
	}
	return nil
}

// readCheckpoint returns dir's checkpoint; found is false when there is
// none. A damaged one is an error wrapping ErrCorrupt.
func readCheckpoint(fsys vfs.FS, dir string) (c Checkpoint, found bool, err error) {
	path := filepath.Join(dir, checkpointName)
	b, err := fsys.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, false, nil
	}
	if err != nil {
		return c, false, err
	}
	c, _, err = ParseCheckpoint(b)
	if err != nil {
		return c, true, fmt.Errorf("%s: %w", path, err)
	}
	return c, true, nil
}
