package storage

import (
	"errors"
	"io"

	"golang.org/x/sys/unix"
)

// SyncDriver executes a Log's planned I/O with plain blocking system calls
// (pwrite, fdatasync). It runs logs in tests, fuzzing, crash tests and
// offline tools; the server uses a ring driver instead. The zero value is
// ready; WriteAt and Sync replace the system calls when set (fault
// injection). It does not allocate.
type SyncDriver struct {
	WriteAt func(fd int, b []byte, off int64) (int, error)
	Sync    func(fd int) error
}

// Append prepares, writes and completes one append (several batches back
// to back are one append). When the next segment is not ready it waits for
// the roll lane (Log.WaitBackground) and tries again.
func (d *SyncDriver) Append(l *Log, batches []byte) (AppendOp, error) {
	return d.append(l, l.PrepareAppend, batches)
}

// append runs one append planned by prepare (PrepareAppend or
// AppendReplicated) to completion.
func (d *SyncDriver) append(l *Log, prepare func([]byte) (AppendOp, error), batches []byte) (AppendOp, error) {
	op, err := prepare(batches)
	for errors.Is(err, ErrRollPending) {
		l.WaitBackground()
		op, err = prepare(batches)
	}
	if err != nil {
		return op, err
	}
	if err := d.write(op.Fd, op.Buf, op.Pos); err != nil {
		l.Failed(op, err)
		return op, l.Err()
	}
	return op, l.Appended(op)
}

func (d *SyncDriver) write(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		var n int
		var err error
		if d.WriteAt != nil {
			n, err = d.WriteAt(fd, b, off)
		} else {
			n, err = unix.Pwrite(fd, b, off)
		}
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return err
		case n == 0:
			return io.ErrShortWrite
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

// Flush waits for the renames and seals in progress, then fsyncs everything visible
// (nothing when there is nothing to do), and waits for the seals of the
// rolled segments it made durable.
func (d *SyncDriver) Flush(l *Log) error {
	if !l.closed {
		l.rolls.wg.Wait() // rolled segments get their names, then seal
		l.applyRolls()
		l.finishSeals()
	}
	op, ok := l.PrepareFlush()
	if !ok && l.FlushWaiting() {
		l.WaitBackground()
		op, ok = l.PrepareFlush()
	}
	if !ok {
		return l.Err()
	}
	for _, fd := range op.Fds {
		var err error
		if d.Sync != nil {
			err = d.Sync(fd)
		} else {
			err = unix.Fdatasync(fd)
		}
		if err != nil {
			l.FlushFailed(op, err)
			return l.Err()
		}
	}
	l.Flushed(op)
	l.finishSeals() // the segments the flush made durable are cut
	return nil
}
