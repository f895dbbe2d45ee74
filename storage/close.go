package storage

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// Close closes the log. A clean close needs no append in flight and no
// fence: it fsyncs everything, records the log end as the recovery point
// (marked clean) and lets the Store write its clean-shutdown marker. Any
// other close releases the files without touching them and returns why,
// and the next open recovers the partition. Views stay valid until
// released.
func (l *Log) Close() error {
	if l.closed {
		return nil
	}
	l.ckpt.Wait() // an older checkpoint must not land after the final one
	l.rolls.wg.Wait()
	l.applyRolls() // rolled segments get their names before the final sync
	l.finishSeals()
	err := l.closeClean()
	l.releaseAll()
	l.closed = true
	if l.store != nil {
		l.store.logClosed(l, err == nil)
	}
	return err
}

func (l *Log) closeClean() error {
	switch {
	case l.err != nil:
		return l.err
	case l.pend.len() > 0:
		return fmt.Errorf("storage: close %s with %d appends in flight", l.dir, l.pend.len())
	}
	s := l.active()
	if s.maxUnindexed && s.tidx.put(uint64(s.planMaxTs), s.planMaxRel) {
		s.tidx.n, s.maxUnindexed = s.tidx.planned, false
	}
	var errs []error
	if l.dirGen != l.dirSynced {
		errs = append(errs, syncDir(l.fs, l.dir))
	}
	for _, s := range l.segs {
		if s.size > s.flushedSize || s.state == SegmentSealed {
			errs = append(errs, l.fs.Fdatasync(s.file.fd), s.idx.sync(), s.tidx.sync())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("storage: close %s: %w", l.dir, err)
	}
	// Every segment's data is durable now: cut the rolled ones no flush
	// covered yet, so that a restart finds them sealed (an uncut one is
	// told from a torn one by its shape only, §7 of DESIGN.md).
	for _, s := range l.segs {
		s.flushedSize = max(s.flushedSize, s.size)
		l.maybeSeal(s)
	}
	l.finishSeals()
	l.flushed = l.end
	c := l.checkpointAt()
	c.Clean = true
	if err := writeCheckpoint(l.fs, l.dir, &c); err != nil {
		return err
	}
	return nil
}

// releaseAll stops this log's background jobs and releases its files and
// mappings without writing anything (also the crash path of tests).
func (l *Log) releaseAll() {
	l.cancel.Store(true)
	l.bg.Wait()
	l.ckpt.Wait()
	l.seals.wg.Wait()
	for _, p := range l.seals.take() {
		p.release(l.fs) // a phase 1 never applied
	}
	for _, r := range l.rolls.take() {
		closeFd(l.fs, r.dirFd)
	}
	for _, slot := range []*atomic.Pointer[preparedSegment]{&l.prepared, &l.spare} {
		if p := slot.Swap(nil); p != nil {
			p.discard()
		}
	}
	for _, s := range l.segs {
		s.close()
	}
	l.segs = nil
	l.drainArchived()
	closeFd(l.fs, l.dirFd)
	l.dirFd = -1
	l.pend = pendingRing{}
}
