package storage

import (
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"

	"github.com/ringmq/ringmq/storage/vfs"
)

// Log is one partition's log: an ordered list of segments, the last of
// which is active. It is owned by one goroutine (the reactor that owns the
// partition) and is not safe for concurrent use; only View.Release and the
// background worker's hand-offs (preallocated segments, finished archive
// copies) cross goroutines, through atomics and a mutex of their own.
type Log struct {
	store      *Store
	fs         vfs.FS // the store's file system
	topic      string
	partition  uint32
	cfg        LogConfig
	dir        string // <data>/topics/<topic>/<partition>
	archiveDir string // same under the archive root, or ""
	dirFd      int
	logger     *slog.Logger

	segs    []*segment // by base offset; the last is active
	next    uint64     // next offset PrepareAppend assigns
	end     uint64     // visible end: readers see [Start, end)
	flushed uint64     // offsets below are fsync'd
	err     error      // fence: set by the first failed write or flush
	fence   uint64     // appends with seq ≥ fence never become visible
	closed  bool
	pend    pendingRing
	// reconfigured: Reconfigure changed cfg after the segments were made.
	reconfigured bool

	// Leader epochs (epoch.go): the epoch PrepareAppend stamps, the
	// cache of planned batches' epochs, and the end offset the last
	// leader-epoch checkpoint asked for describes.
	epoch         int32
	epochs        []EpochEntry
	epochsWritten uint64

	corrupt   []Corruption // damage found at recovery or by reads (damage.go)
	resuming  bool         // a resume job is in flight (resume.go)
	resumeGen uint64       // numbers resume jobs, so a stale result is ignored

	// A writeback is in the kernel (writeback.go).
	writingBack bool

	flushing  bool
	flushFds  []int
	flushSegs []flushTarget
	flushRP   Checkpoint
	flushGen  uint64
	rp        Checkpoint // recovery point of the last completed flush
	written   Checkpoint // last checkpoint written to disk
	dirGen    uint64     // bumped when a segment name is created
	dirSynced uint64

	bg           sync.WaitGroup // background jobs of this log
	ckpt         sync.WaitGroup // checkpoint writes queued by WriteCheckpointAsync
	cancel       atomic.Bool    // tells background jobs to stop
	prepared     atomic.Pointer[preparedSegment]
	spare        atomic.Pointer[preparedSegment] // a second one, mapped (roll.go)
	preallocBusy atomic.Bool
	preallocSeq  uint64
	spareSeq     uint64
	waiting      atomic.Bool // an append waits for the prepared segment: notify
	notify       atomic.Pointer[func()]
	rolls        doneQueue[rollResult] // roll-lane results (roll.go)
	rollWait     bool                  // the owner returned ErrRollPending and waits
	renaming     int                   // rolled segments not yet renamed into place
	archMu       sync.Mutex
	archDone     []archiveResult
	seals        doneQueue[sealPhase] // seal phases the worker finished (seal.go)

	stats logCounters
}

type logCounters struct {
	preallocHits, preallocMisses uint64
	deleted, archived            uint64
	sealErrors                   uint64
	recoveryScanned              int64
	recoveryTruncated            bool
}

// Topic and Partition name the log.
func (l *Log) Topic() string     { return l.topic }
func (l *Log) Partition() uint32 { return l.partition }

// Dir is the partition's directory.
func (l *Log) Dir() string { return l.dir }

// LogStart is the log start offset: the first offset still stored.
func (l *Log) LogStart() uint64 {
	if len(l.segs) == 0 { // closed
		return l.end
	}
	return l.segs[0].base
}

// LogEnd is the visible log end: the offset after the last batch whose
// write, and every write before it, completed. Appends whose LastOffset <
// LogEnd are on the log (acks=1).
func (l *Log) LogEnd() uint64 { return l.end }

// FlushedOffset is the offset below which the log is fsync'd (acks with
// flush = sync wait for it).
func (l *Log) FlushedOffset() uint64 { return l.flushed }

// Err is the fence error, or nil while appends are accepted.
func (l *Log) Err() error { return l.err }

// InFlight is the number of prepared appends not yet visible.
func (l *Log) InFlight() int { return l.pend.len() }

func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

// segmentFor returns the index of the segment holding off: the last one
// whose base is ≤ off.
func (l *Log) segmentFor(off uint64) int {
	lo, hi := 0, len(l.segs)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if l.segs[mid].base <= off {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo - 1
}

// Read appends to dst Views of the whole batches starting with the one that
// contains off, up to maxBytes in total but always at least one batch when
// off < End (so a consumer makes progress past a batch larger than its
// limit). A read may span segments (one View each). off == End returns dst
// unchanged; off outside [Start, End] is ErrOffsetOutOfRange. Reads see only
// the visible prefix and keep working after a fence. With room in dst it
// does not allocate.
func (l *Log) Read(off uint64, maxBytes int, dst []View) ([]View, error) {
	if l.closed {
		return dst, ErrClosed
	}
	if off == l.end {
		return dst, nil
	}
	if off < l.LogStart() || off > l.end {
		return dst, fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, off, l.LogStart(), l.end)
	}
	budget := int64(maxBytes)
	i := l.segmentFor(off)
	pos, faulted, err := l.segs[i].find(off)
	if faulted {
		l.indexFault(l.segs[i], off, err)
	}
	if err != nil {
		l.readFailed(l.segs[i], off, err)
		return dst, err
	}
	for first := true; i < len(l.segs); i, pos, first = i+1, 0, false {
		s := l.segs[i]
		end, err := s.cut(pos, budget, first)
		if err != nil || end == pos {
			l.readFailed(s, off, err)
			return dst, err
		}
		dst = append(dst, s.view(pos, end))
		budget -= end - pos
		if end < s.size || budget <= 0 {
			break
		}
	}
	return dst, nil
}

// indexFault reports an offset index entry that did not lead to the batch
// holding off: an ERROR log line the first time for the segment, and the
// store's OnIndexFault hook every time.
func (l *Log) indexFault(s *segment, off uint64, err error) {
	if s.indexFaults++; s.indexFaults == 1 {
		l.logger.Error("storage: offset index does not match the log; reading by scanning the segment",
			"index", s.path(indexExt), "offset", off, "scan_err", err)
	}
	if fn := l.store.opts.OnIndexFault; fn != nil {
		fn()
	}
}

// SeekTime returns the first offset whose record timestamp is ≥ ts, or End
// when no stored record is that recent. Compressed batches answer at batch
// granularity (the base offset of the first batch whose max timestamp is ≥
// ts).
func (l *Log) SeekTime(ts int64) (uint64, error) {
	if l.closed {
		return 0, ErrClosed
	}
	for _, s := range l.segs {
		if s.size == 0 || s.maxTs < ts {
			continue
		}
		off, ok, err := s.seekTime(ts)
		if err != nil || ok {
			return off, err
		}
	}
	return l.end, nil
}

// SegmentInfo describes one segment (for tools, tests and metrics).
type SegmentInfo struct {
	Base         uint64
	Next         uint64 // offset after its last visible batch
	Bytes        int64  // visible bytes
	MaxTimestamp int64  // math.MinInt64 when empty
	State        SegmentState
	Path         string
}

// Segments appends a description of every segment to dst.
func (l *Log) Segments(dst []SegmentInfo) []SegmentInfo {
	for _, s := range l.segs {
		ts := s.maxTs
		if s.size == 0 {
			ts = math.MinInt64
		}
		dst = append(dst, SegmentInfo{Base: s.base, Next: s.next, Bytes: s.size, MaxTimestamp: ts,
			State: s.state, Path: s.path(logExt)})
	}
	return dst
}

// Stats is a snapshot of a log's counters for metrics.
type Stats struct {
	Segments     [numSegmentStates]int   // segments by SegmentState
	SegmentBytes [numSegmentStates]int64 // visible bytes by SegmentState
	Bytes        int64                   // visible bytes in all segments
	Start        uint64
	End          uint64
	Flushed      uint64
	InFlight     int
	Fenced       bool
	// PreallocHits and PreallocMisses count rolls that found the next
	// segment ready and rolls that had to wait for it (ErrRollPending).
	PreallocHits, PreallocMisses uint64
	// DeletedSegments and ArchivedSegments count retention since open.
	DeletedSegments, ArchivedSegments uint64
	// SealErrors counts segments whose trimming failed (they stay full
	// size; recovery handles them).
	SealErrors uint64
	// RecoveryScannedBytes is how many bytes open verified batch by batch
	// (magic, length, CRC, offsets) past the recovery point.
	RecoveryScannedBytes int64
	// RecoveryTruncated says open cut a torn tail (bytes after the last
	// valid batch that were not zero) or dropped segments after it.
	RecoveryTruncated bool
	// CorruptRanges counts the damaged ranges found by recovery or reads
	// (Corruptions describes them).
	CorruptRanges int
}

// Stats returns the log's counters. It does not allocate.
func (l *Log) Stats() Stats {
	st := Stats{Start: l.LogStart(), End: l.end, Flushed: l.flushed, InFlight: l.pend.len(), Fenced: l.err != nil,
		PreallocHits: l.stats.preallocHits, PreallocMisses: l.stats.preallocMisses,
		DeletedSegments: l.stats.deleted, ArchivedSegments: l.stats.archived, SealErrors: l.stats.sealErrors,
		RecoveryScannedBytes: l.stats.recoveryScanned, RecoveryTruncated: l.stats.recoveryTruncated,
		CorruptRanges: len(l.corrupt)}
	for _, s := range l.segs {
		st.Segments[s.state]++
		st.SegmentBytes[s.state] += s.size
		st.Bytes += s.size
	}
	return st
}
