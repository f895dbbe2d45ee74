package storage

import (
	"fmt"
)

// Writeback pacing. On ext4 (delayed allocation) a segment's blocks are
// allocated when its dirty pages are written back; the periodic fdatasync
// of an interval flush otherwise writes back (and allocates) everything
// appended since the last one at once, holding the inode's locks while
// the appends to the same file wait. Pacing starts the writeback early
// and in small pieces instead: each time WritebackBytes more of the active
// segment became visible, the driver asks the kernel to start writing
// those bytes back (sync_file_range with SYNC_FILE_RANGE_WRITE through
// the ring: it does not wait for the I/O, nor make anything durable), so
// the fdatasync finds little left to do. RocksDB's bytes_per_sync is the
// same idea.
//
// Rules: one writeback of a log in the kernel at a time; it covers whole
// steps of visible data of the active segment only (never a byte whose
// write has not completed, never past the visible end), from where the
// last one ended; a failed one fences the log like a failed write. It
// changes no offset: durability still comes only from flushes.

// WritebackOp is one planned writeback: the driver starts writeback of
// Len bytes at Off of Fd (sync_file_range(SYNC_FILE_RANGE_WRITE)) and then
// calls Log.WrittenBack or Log.WritebackFailed with the op.
type WritebackOp struct {
	Fd  int
	Off int64
	Len int64
	seg *segment
}

// maxWritebackLen bounds one op (the ring's length field is 32 bits).
const maxWritebackLen = 1 << 30

// PrepareWriteback plans the writeback of the active segment's visible
// bytes not yet written back, in whole steps of WritebackBytes. It returns
// false when pacing is off, less than a step is pending, one is in flight,
// or the log is fenced or closed. It makes no system call and does not
// allocate.
func (l *Log) PrepareWriteback() (WritebackOp, bool) {
	step := l.cfg.WritebackBytes
	if step <= 0 || l.closed || l.err != nil || l.writingBack {
		return WritebackOp{}, false
	}
	s := l.active()
	from := max(s.writtenBack, s.flushedSize/step*step)
	n := (s.size - from) / step * step
	if n <= 0 || s.file == nil {
		return WritebackOp{}, false
	}
	n = min(n, maxWritebackLen/step*step)
	l.writingBack = true
	return WritebackOp{Fd: s.file.fd, Off: from, Len: n, seg: s}, true
}

// WrittenBack records that the kernel accepted op: the next writeback of
// its segment starts where op ended.
func (l *Log) WrittenBack(op WritebackOp) {
	if l.closed {
		return
	}
	l.checkWriteback(op)
	l.writingBack = false
	op.seg.writtenBack = max(op.seg.writtenBack, op.Off+op.Len)
}

// WritebackFailed records a failed writeback. The kernel could not start
// writing visible data back (an I/O error, no space for its blocks), so
// whether the data can reach the disk is unknown: the log is fenced as
// after a failed write. Appends already planned still complete (their
// writes are independent of it); new ones are refused, and the next flush
// is refused, which fences the replica and fails the acks waiting for it.
func (l *Log) WritebackFailed(op WritebackOp, err error) {
	if l.closed {
		return
	}
	l.checkWriteback(op)
	l.writingBack = false
	l.fenceAt(l.pend.tail, fmt.Errorf("%w: writeback of %s bytes %d-%d: %w",
		ErrFenced, op.seg.path(logExt), op.Off, op.Off+op.Len, err))
}

func (l *Log) checkWriteback(op WritebackOp) {
	if !l.writingBack || op.seg == nil {
		panic("BUG: storage: writeback completed with none in flight")
	}
}
