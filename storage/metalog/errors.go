package metalog

import (
	"errors"
	"fmt"
)

// Errors returned by the store. Check them with errors.Is: recovery errors
// come wrapped in a *CorruptError that names the file and the offset.
var (
	// ErrCorrupt marks persisted bytes that are present but wrong and are
	// not a torn tail (see the package doc's recovery rule).
	ErrCorrupt = errors.New("metalog: corrupt")
	// ErrVersion marks a well-formed record or snapshot written by a
	// format version this code does not know.
	ErrVersion = errors.New("metalog: unsupported format version")
	// ErrClosed is returned by writes after Close.
	ErrClosed = errors.New("metalog: store closed")
	// ErrLocked means another open Store holds the directory.
	ErrLocked = errors.New("metalog: directory locked by another store")
	// ErrFenced is returned by every write once a write or sync failed in a
	// way that leaves the log's durable contents unknown; reopen the store.
	ErrFenced = errors.New("metalog: store fenced after a failed write or sync")
	// ErrTooLarge means a key or value exceeds MaxKeySize or MaxValueSize.
	ErrTooLarge = errors.New("metalog: key or value too large")
	// ErrInvalidKey means an empty key, or a key under a prefix that only
	// the typed helpers may write (see OffsetKeyPrefix and TopicKeyPrefix).
	ErrInvalidKey = errors.New("metalog: invalid key")
	// ErrInvalidName means an empty group or topic name, or one that
	// contains a NUL byte.
	ErrInvalidName = errors.New("metalog: invalid group or topic name")
)

// CorruptError says where recovery found bytes it refuses to serve.
type CorruptError struct {
	File   string // path of meta.log or meta.snapshot
	Offset int64  // byte offset of the bad record (or header) in File
	Err    error  // wraps ErrCorrupt or ErrVersion, with the reason
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("metalog: %s at offset %d: %v", e.File, e.Offset, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// corruptAt builds a *CorruptError; reason errors that are not already
// classified are marked ErrCorrupt.
func corruptAt(file string, off int, reason error) error {
	if !errors.Is(reason, ErrCorrupt) && !errors.Is(reason, ErrVersion) {
		reason = fmt.Errorf("%w: %v", ErrCorrupt, reason)
	}
	return &CorruptError{File: file, Offset: int64(off), Err: reason}
}
