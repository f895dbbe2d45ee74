package storage

import (
	"fmt"
	"math"
	"regexp"
	"time"

	"github.com/ringmq/ringmq/proto"
)

// Limits on LogConfig values. Segment file positions are u32 in the index, so a
// segment (at most SegmentBytes plus one oversized append) stays below 4 GiB.
const (
	MinSegmentBytes = 1024
	MaxSegmentBytes = 2<<30 - 1
)

// LogConfig is the per-partition storage configuration. Its fields and their
// meanings match the [storage] table of the server configuration; start from
// DefaultLogConfig, the zero LogConfig is invalid.
type LogConfig struct {
	// SegmentBytes: the active segment rolls when the next append would
	// not fit. It is also the size each segment file is preallocated to,
	// and the largest append accepted (ErrBatchTooLarge, as Kafka does).
	SegmentBytes int64
	// SegmentMs: the active segment rolls when an append's max timestamp
	// is this much newer than the segment's first batch (Kafka's rule; 0:
	// never).
	SegmentMs int64
	// IndexIntervalBytes: bytes of log between two sparse index entries;
	// 0 indexes every batch.
	IndexIntervalBytes int
	// RetentionMs: sealed, flushed segments whose newest record is older
	// than this are deleted; -1 keeps them forever.
	RetentionMs int64
	// RetentionBytes: the oldest sealed, flushed segments are deleted while
	// the partition stays at least this large without them; -1: no limit.
	RetentionBytes int64
	// ArchiveAfter: sealed, flushed segments whose newest record is older
	// than this move to the Store's ArchiveDir (0: never).
	ArchiveAfter time.Duration
	// Preallocate zero-fills the next segment file in the background so
	// that fdatasync never converts extents. When false (the default, as
	// storage.preallocate in the server), segment files are created
	// sparse; either way the next one is pre-created in the background,
	// so a roll never waits. The server sets it only for flush=sync topics.
	Preallocate bool
	// WritebackBytes: each time this many more bytes of the active
	// segment are visible, the driver starts their writeback
	// (PrepareWriteback), so an interval fdatasync finds little left to
	// write and allocate; 0: off (the kernel decides when).
	WritebackBytes int64
	// AllocateNext: the roll lane allocates the blocks of the whole next
	// segment (fallocate) when it opens it for use, before any append
	// goes there, so neither the appends nor the flushes of that segment
	// allocate blocks (on ext4 the flush's block allocation held the
	// appends to the same file for hundreds of milliseconds). It costs disk
	// space: a partition being written holds up to two segments' worth
	// allocated ahead of its data (the rest is freed when a segment is
	// sealed). The first segment of a partition is never allocated ahead.
	AllocateNext bool
}

// DefaultWritebackBytes is storage.writeback_bytes' default: off. At a
// moderate rate 4 MiB steps brought p99 down to the no-fsync baseline,
// but at full speed they cost a quarter of the throughput (DESIGN.md §9).
const DefaultWritebackBytes = 0

// DefaultLogConfig returns the defaults of the server configuration
// (config.Default's [storage] table); a test keeps them equal.
func DefaultLogConfig() LogConfig {
	const day = 24 * 60 * 60 * 1000
	return LogConfig{
		SegmentBytes:       256 << 20,
		SegmentMs:          7 * day,
		IndexIntervalBytes: 4096,
		RetentionMs:        7 * day,
		RetentionBytes:     -1,
		Preallocate:        false,
		WritebackBytes:     DefaultWritebackBytes,
		AllocateNext:       true,
	}
}

// Validate reports the first invalid field, wrapping ErrInvalidConfig.
func (c *LogConfig) Validate() error {
	switch {
	case c.SegmentBytes < MinSegmentBytes || c.SegmentBytes > MaxSegmentBytes:
		return fmt.Errorf("%w: segment_bytes %d not in [%d, %d]", ErrInvalidConfig, c.SegmentBytes, MinSegmentBytes, MaxSegmentBytes)
	case c.SegmentMs < 0:
		return fmt.Errorf("%w: segment_ms %d < 0", ErrInvalidConfig, c.SegmentMs)
	case c.IndexIntervalBytes < 0:
		return fmt.Errorf("%w: index_interval_bytes %d < 0", ErrInvalidConfig, c.IndexIntervalBytes)
	case c.RetentionMs < -1:
		return fmt.Errorf("%w: retention_ms %d < -1", ErrInvalidConfig, c.RetentionMs)
	case c.RetentionBytes < -1:
		return fmt.Errorf("%w: retention_bytes %d < -1", ErrInvalidConfig, c.RetentionBytes)
	case c.WritebackBytes < 0:
		return fmt.Errorf("%w: writeback_bytes %d < 0", ErrInvalidConfig, c.WritebackBytes)
	case c.ArchiveAfter < 0:
		return fmt.Errorf("%w: archive_after %v < 0", ErrInvalidConfig, c.ArchiveAfter)
	}
	return nil
}

// indexEntries is how many sparse index entries a segment of capacity bytes
// can need: one per interval (or per smallest batch), the first batch's and
// the final time index entry appended when the segment is sealed.
func (c *LogConfig) indexEntries(capacity int64) int64 {
	step := max(int64(c.IndexIntervalBytes), proto.BatchHeaderSize)
	return capacity/step + 3
}

// maxRelOffset bounds the offsets a segment holds: relative offsets are u32.
const maxRelOffset = math.MaxUint32

var topicNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,249}$`)

func validatePartition(topic string, partition uint32) error {
	if !topicNameRE.MatchString(topic) || topic == "." || topic == ".." {
		return fmt.Errorf("%w: topic name %q (want 1-249 of [A-Za-z0-9._-])", ErrInvalidConfig, topic)
	}
	return nil
}
