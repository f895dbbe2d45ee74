package storage

import "errors"

// Sentinel errors. Errors returned by this package wrap one of them (check
// with errors.Is) and add the file, position or offset concerned.
var (
	// ErrCorrupt marks data that is present but wrong where it must be
	// right. From OpenLog it means the partition must not be served (a
	// checkpoint or segment layout that contradicts itself); from Read it
	// means the offset lies in a damaged range (Log.Corruptions) while the
	// rest of the log is served.
	ErrCorrupt = errors.New("storage: corrupt partition data")
	// ErrBadBatch rejects an append whose bytes are not whole valid record
	// batches (header, length, CRC). The log is unchanged.
	ErrBadBatch = errors.New("storage: invalid record batch")
	// ErrBatchTooLarge rejects an append larger than the segment size.
	ErrBatchTooLarge = errors.New("storage: append larger than a segment")
	// ErrRollPending refuses an append that needs the next segment while
	// the roll lane is still preparing it. Nothing changed; the owner holds
	// the append and retries it once the log's notify function ran
	// (SetNotify) and it applied the background work (ApplyBackground).
	ErrRollPending = errors.New("storage: next segment not ready yet")
	// ErrFenced is returned by every append after a write or flush failed.
	// Reads of the completed prefix still work; StartResume (or ResumeNow)
	// lifts the fence once the cause is gone.
	ErrFenced = errors.New("storage: partition fenced after an I/O failure")
	// ErrOffsetOutOfRange is a read or seek below the log start or past
	// the log end.
	ErrOffsetOutOfRange = errors.New("storage: offset out of range")
	// ErrLocked means another process holds the data directory.
	ErrLocked = errors.New("storage: data directory is locked by another process")
	// ErrClosed is returned by a closed Log or Store.
	ErrClosed = errors.New("storage: closed")
	// ErrExists is returned by CreatePartition for a partition on disk.
	ErrExists = errors.New("storage: partition already exists")
	// ErrNotFound is returned for a partition that is not on disk.
	ErrNotFound = errors.New("storage: partition not found")
	// ErrInvalidConfig rejects a LogConfig or a topic name.
	ErrInvalidConfig = errors.New("storage: invalid configuration")
)
