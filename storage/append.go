package storage

import (
	"errors"
	"fmt"
	"math"

	"github.com/ringmq/ringmq/proto"
)

// AppendOp is one planned write: the driver writes all of Buf at Pos of Fd
// and then calls Log.Appended or Log.Failed with the op. Buf is the
// caller's buffer, with each batch's base_offset patched in place; it must
// stay untouched until the write completes.
type AppendOp struct {
	Fd   int
	Pos  int64
	Buf  []byte
	Base uint64 // first offset assigned
	Last uint64 // last offset assigned
	seq  uint64
}

// Records is the number of offsets the append was assigned.
func (op *AppendOp) Records() uint64 { return op.Last - op.Base + 1 }

// pendingOp is a prepared append waiting for its completion and for every
// append before it.
type pendingOp struct {
	seg  *segment
	pos  int64
	mark segMark
	done bool
}

// pendingRing is a FIFO of pendingOps indexed by sequence number. It grows
// by doubling and is reused, so steady-state appends do not allocate.
type pendingRing struct {
	buf  []pendingOp // len is a power of two
	head uint64      // seq of the oldest op
	tail uint64      // seq the next op gets
}

func (r *pendingRing) len() int { return int(r.tail - r.head) }

func (r *pendingRing) push(p pendingOp) uint64 {
	if r.len() == len(r.buf) {
		nb := make([]pendingOp, max(2*len(r.buf), 64))
		for s := r.head; s < r.tail; s++ {
			nb[s&uint64(len(nb)-1)] = r.buf[s&uint64(len(r.buf)-1)]
		}
		r.buf = nb
	}
	r.buf[r.tail&uint64(len(r.buf)-1)] = p
	r.tail++
	return r.tail - 1
}

func (r *pendingRing) at(seq uint64) *pendingOp {
	if seq < r.head || seq >= r.tail {
		panic(fmt.Sprintf("BUG: storage: completion of unknown append %d (pending %d-%d)", seq, r.head, r.tail))
	}
	return &r.buf[seq&uint64(len(r.buf)-1)]
}

func (r *pendingRing) pop() {
	r.buf[r.head&uint64(len(r.buf)-1)] = pendingOp{}
	r.head++
}

// appendSummary describes the batches of one append.
type appendSummary struct {
	base, next uint64
	maxTs      int64
}

// validateAppend checks every batch of b (header, length, CRC, and the
// records against the header: proto.ValidateRecords) and patches their base
// offsets consecutively from next and their leader epochs (the log's
// SetLeaderEpoch; 0 until replication assigns one). It does not allocate
// unless b is invalid or compressed.
func validateAppend(b []byte, next uint64, leaderEpoch int32) (appendSummary, error) {
	sum := appendSummary{base: next, maxTs: math.MinInt64}
	if len(b) == 0 {
		return sum, fmt.Errorf("%w: empty append", ErrBadBatch)
	}
	for rest := b; len(rest) > 0; {
		h, r, err := proto.ValidateBatch(rest)
		if err != nil {
			return sum, fmt.Errorf("%w at byte %d: %w", ErrBadBatch, len(b)-len(rest), err)
		}
		if err := proto.ValidateRecords(rest[:h.Size()]); err != nil {
			return sum, fmt.Errorf("%w at byte %d: %w", ErrBadBatch, len(b)-len(rest), err)
		}
		proto.SetBaseOffset(rest, next)
		proto.SetLeaderEpoch(rest, leaderEpoch)
		next += uint64(h.LastOffsetDelta) + 1
		sum.maxTs = max(sum.maxTs, h.MaxTimestamp)
		rest = r
	}
	sum.next = next
	if next-1-sum.base > maxRelOffset {
		return sum, fmt.Errorf("%w: one append spans %d offsets", ErrBadBatch, next-sum.base)
	}
	return sum, nil
}

// PrepareAppend validates batches (one record batch, or several back to
// back as a produce request carries them: header, length and CRC of each),
// assigns their offsets by patching base_offset in place, reserves their
// file position (rolling the segment first when they do not fit or it is
// too old) and returns the write to perform. Several appends may be in
// flight; they become visible in the order they were prepared. It does not
// allocate in steady state.
func (l *Log) PrepareAppend(batches []byte) (AppendOp, error) {
	switch {
	case l.closed:
		return AppendOp{}, ErrClosed
	case l.err != nil:
		return AppendOp{}, l.err
	}
	l.applyRolls()
	sum, err := validateAppend(batches, l.next, l.epoch)
	if err != nil {
		return AppendOp{}, err
	}
	return l.planAppend(batches, sum)
}

// planAppend reserves the file position of validated batches (rolling
// first when needed), plans their index entries and epochs, and returns
// the write.
func (l *Log) planAppend(batches []byte, sum appendSummary) (AppendOp, error) {
	n := int64(len(batches))
	if err := l.makeRoom(n, &sum); err != nil {
		if !errors.Is(err, ErrBatchTooLarge) && !errors.Is(err, ErrRollPending) {
			// The next segment could not be made (a full disk):
			// fence, so that the log reports it and resumes by itself.
			l.fenceAt(l.pend.tail, fmt.Errorf("%w: %w", ErrFenced, err))
			return AppendOp{}, l.err
		}
		return AppendOp{}, err
	}
	s := l.active()
	l.allocateActive(s)
	pos := s.reserved
	interval := int64(l.cfg.IndexIntervalBytes)
	for p := int64(0); p < n; {
		h, err := proto.ParseBatchHeader(batches[p:])
		if err != nil {
			panic("BUG: storage: validated batch does not parse: " + err.Error())
		}
		s.plan(pos+p, &h, interval)
		l.assignEpoch(h.LeaderEpoch, h.BaseOffset)
		p += int64(h.Size())
	}
	s.reserved = pos + n
	l.extendIndexes(s)
	l.prepareAhead(s, sum.maxTs)
	seq := l.pend.push(pendingOp{seg: s, pos: pos, mark: s.mark(pos+n, sum.next)})
	l.next = sum.next
	return AppendOp{Fd: s.file.fd, Pos: pos, Buf: batches, Base: sum.base, Last: sum.next - 1, seq: seq}, nil
}

// makeRoom rolls the active segment when an append of n bytes does not fit
// it, would overflow its relative offsets, or is SegmentMs newer than its
// first batch. An empty active segment is never rolled.
func (l *Log) makeRoom(n int64, sum *appendSummary) error {
	if n > l.cfg.SegmentBytes {
		return fmt.Errorf("%w: %d bytes, segment_bytes is %d", ErrBatchTooLarge, n, l.cfg.SegmentBytes)
	}
	s := l.active()
	if s.reserved == 0 {
		if n > s.capacity() {
			if !l.reconfigured {
				panic("BUG: storage: active segment smaller than segment_bytes")
			}
			// segment_bytes grew after this (empty) segment was made.
			return fmt.Errorf("%w: %d bytes, the active segment holds %d until it rolls (segment_bytes was raised)", ErrBatchTooLarge, n, s.capacity())
		}
		return nil
	}
	fits := s.reserved+n <= s.capacity() && sum.next-1-s.base <= maxRelOffset
	aged := l.cfg.SegmentMs > 0 && sum.maxTs-s.firstTs >= l.cfg.SegmentMs
	if fits && !aged {
		return nil
	}
	return l.roll()
}

// Appended records that op's write completed. Visibility advances over the
// contiguous prefix of completed appends. It returns the fence error when
// op can never become visible (an earlier write failed); the caller fails
// the request. It does not allocate.
func (l *Log) Appended(op AppendOp) error {
	if l.closed {
		return ErrClosed
	}
	p := l.pend.at(op.seq)
	if p.done {
		panic(fmt.Sprintf("BUG: storage: append %d completed twice", op.seq))
	}
	p.done = true
	if op.seq >= l.fence {
		return l.err
	}
	l.advance()
	return nil
}

// Failed records that op's write failed: the log is fenced. Appends
// prepared after op never become visible and new ones are refused; those
// before it may still complete. StartResume lifts the fence (resume.go).
func (l *Log) Failed(op AppendOp, err error) {
	if l.closed {
		return
	}
	l.pend.at(op.seq).done = true
	l.fenceAt(op.seq, fmt.Errorf("%w: write of offsets %d-%d at %s position %d: %w",
		ErrFenced, op.Base, op.Last, l.dir, op.Pos, err))
}

func (l *Log) fenceAt(seq uint64, err error) {
	if seq < l.fence {
		l.fence = seq
	}
	if l.err == nil {
		l.err = err
		l.logger.Error("storage: partition fenced", "topic", l.topic, "partition", l.partition, "err", err)
	}
}

// advance publishes completed appends in order.
func (l *Log) advance() {
	for l.pend.len() > 0 && l.pend.head < l.fence {
		p := l.pend.at(l.pend.head)
		if !p.done {
			return
		}
		s := p.seg
		if p.pos != s.size {
			panic(fmt.Sprintf("BUG: storage: append at %d published after visible size %d", p.pos, s.size))
		}
		s.publish(&p.mark)
		l.end = p.mark.next
		l.pend.pop()
		l.maybeSeal(s)
	}
}
