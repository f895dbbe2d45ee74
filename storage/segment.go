package storage

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/storage/vfs"
)

// SegmentState is a segment's place in its life cycle:
// active → sealed → flushed → archived (optional) → deleted.
type SegmentState uint8

// Segment states. A deleted segment is in none.
const (
	// SegmentActive is the one segment appends go to (the last).
	SegmentActive SegmentState = iota
	// SegmentSealed is rolled: read-only once its writes complete, then
	// its .log and indexes trimmed to their used size by the background
	// worker (seal.go), not yet fsync'd.
	SegmentSealed
	// SegmentFlushed is sealed and fsync'd (recovery point past it).
	SegmentFlushed
	// SegmentArchived is flushed and moved to the archive directory.
	SegmentArchived
	numSegmentStates
)

// NumSegmentStates is the number of segment states; Stats.Segments and the
// segment metrics (stats.SegmentEntered) are indexed by SegmentState.
const NumSegmentStates = int(numSegmentStates)

var segmentStateNames = [numSegmentStates]string{"active", "sealed", "flushed", "archived"}

func (s SegmentState) String() string {
	if s < numSegmentStates {
		return segmentStateNames[s]
	}
	return fmt.Sprintf("SegmentState(%d)", uint8(s))
}

// logFile is one mapped .log file. The log holds one reference while the
// segment is in its list and every View holds one; the last release unmaps
// and closes it, so a segment deleted or archived under a reader stays
// readable until the reader is done. Safe for concurrent release.
type logFile struct {
	fs   vfs.FS
	fd   int
	data []byte // MAP_SHARED, PROT_READ; may extend past the file's size
	refs atomic.Int32
}

func newLogFile(fsys vfs.FS, fd int, data []byte) *logFile {
	f := &logFile{fs: fsys, fd: fd, data: data}
	f.refs.Store(1)
	return f
}

func (f *logFile) acquire() { f.refs.Add(1) }

func (f *logFile) release() {
	switch n := f.refs.Add(-1); {
	case n == 0:
		unmap(f.fs, f.data)
		closeFd(f.fs, f.fd)
	case n < 0:
		panic("BUG: storage: segment file released more often than acquired")
	}
}

// segment is one .log file and its two indexes. Fields in the "visible"
// group describe the completed prefix readers see; the "planned" group also
// covers prepared appends still in flight.
type segment struct {
	base     uint64
	dir      string // directory holding the files (partition or archive)
	state    SegmentState
	file     *logFile
	fileSize int64 // size of the .log file now (capacity while active)
	idx      index // offset index
	tidx     index // time index

	// visible
	size     int64
	next     uint64
	maxTs    int64
	maxTsRel uint32

	// planned
	reserved     int64
	firstTs      int64 // max timestamp of the first batch (roll by age)
	planMaxTs    int64
	planMaxRel   uint32
	maxUnindexed bool // planMaxTs has no time index entry yet
	lastIdxPos   int64
	lastTimePos  int64

	flushedSize int64    // bytes known to be fsync'd
	writtenBack int64    // bytes whose writeback was started (writeback.go)
	allocated   bool     // its .log's blocks were allocated ahead (AllocateNext)
	readable    int64    // at recovery: where the .log's first hole starts
	damaged     []damage // corrupt ranges found at recovery (damage.go)
	trimmed     bool     // .log and indexes cut to their used size
	sealing     bool     // sealing started (seal.go); trimmed once it ends
	unnamed     bool     // rolled; its files are not renamed into place yet (roll.go)
	archiving   bool     // an archive job is in flight
	indexFaults int      // reads that found the offset index wrong (find)
}

func (s *segment) path(ext string) string { return segmentPath(s.dir, s.base, ext) }

// capacity is how many bytes the segment's file and mapping can hold.
func (s *segment) capacity() int64 { return min(s.fileSize, int64(len(s.file.data))) }

func (s *segment) close() {
	s.idx.close()
	s.tidx.close()
	if s.file != nil {
		s.file.release()
		s.file = nil
	}
}

// plan adds the index entries for the batch at pos (which the caller has
// validated) and advances the planned running max timestamp.
func (s *segment) plan(pos int64, h *proto.BatchHeader, interval int64) {
	s.planOffset(pos, h, interval)
	s.planTime(pos, h, interval)
}

func (s *segment) planOffset(pos int64, h *proto.BatchHeader, interval int64) {
	if pos == 0 {
		s.firstTs = h.MaxTimestamp
	}
	if (s.idx.planned == 0 || pos >= s.lastIdxPos+interval) && s.idx.put(h.BaseOffset-s.base, uint32(pos)) {
		s.lastIdxPos = pos
	}
}

// planTime needs planMaxTs to be the true running max before pos: a time
// entry claims that nothing before it had a larger timestamp.
func (s *segment) planTime(pos int64, h *proto.BatchHeader, interval int64) {
	rel := uint32(h.BaseOffset - s.base)
	if pos == 0 || h.MaxTimestamp > s.planMaxTs {
		s.planMaxTs, s.planMaxRel, s.maxUnindexed = h.MaxTimestamp, rel, true
		if (s.tidx.planned == 0 || pos >= s.lastTimePos+interval) && s.tidx.put(uint64(h.MaxTimestamp), rel) {
			s.lastTimePos, s.maxUnindexed = pos, false
		}
	}
}

// segMark is a segment's planned state after one prepared append; it
// becomes the visible state when the append is published.
type segMark struct {
	size     int64
	next     uint64
	maxTs    int64
	maxTsRel uint32
	idxN     int32
	tidxN    int32
}

func (s *segment) mark(end int64, next uint64) segMark {
	return segMark{size: end, next: next, maxTs: s.planMaxTs, maxTsRel: s.planMaxRel,
		idxN: int32(s.idx.planned), tidxN: int32(s.tidx.planned)}
}

func (s *segment) publish(m *segMark) {
	s.size, s.next, s.maxTs, s.maxTsRel = m.size, m.next, m.maxTs, m.maxTsRel
	s.idx.n, s.tidx.n = int(m.idxN), int(m.tidxN)
}

// publishPlanned makes everything planned visible (recovery, sealing).
func (s *segment) publishPlanned(end int64, next uint64) {
	m := s.mark(end, next)
	s.publish(&m)
	s.reserved = end
}

// header parses the batch header at pos; the whole batch must end by limit.
func (s *segment) header(pos, limit int64) (proto.BatchHeader, error) {
	if pos+proto.BatchHeaderSize > limit {
		return proto.BatchHeader{}, proto.ErrShortBatch
	}
	h, err := proto.ParseBatchHeader(s.file.data[pos:limit])
	if err == nil && pos+int64(h.Size()) > limit {
		err = proto.ErrShortBatch
	}
	return h, err
}

func (s *segment) corruptAt(pos int64, what string, err error) error {
	return fmt.Errorf("%w: %s at position %d: %s: %w", ErrCorrupt, s.path(logExt), pos, what, err)
}

// find returns the position of the visible batch that contains off. It
// starts at the index entry for off and checks where it leads: an entry
// pointing past that batch, into the middle of a batch or past the data
// (a corrupt index) is reported as faulted, and the segment is scanned
// from its start instead, so a read never starts at the wrong batch.
func (s *segment) find(off uint64) (pos int64, faulted bool, err error) {
	if pos, err = s.scanFor(s.idx.lookupOffset(uint32(off-s.base)), off); err == nil || errors.Is(err, errKnownDamage) {
		return pos, false, err
	}
	pos, err = s.scanFor(0, off)
	return pos, true, err
}

// scanFor walks batch headers from pos to the batch that contains off.
func (s *segment) scanFor(pos int64, off uint64) (int64, error) {
	for pos < s.size {
		if d, ok := s.damagedAt(pos); ok {
			if off < d.to || d.to == 0 {
				return 0, s.corruptAt(pos, fmt.Sprintf("offsets %d-%d damaged, up to position %d", d.from, d.to, d.end), errKnownDamage)
			}
			pos = d.end
			continue
		}
		h, err := s.header(pos, s.size)
		switch {
		case err != nil:
			return 0, s.corruptAt(pos, "read batch header", err)
		case h.BaseOffset > off:
			return 0, s.corruptAt(pos, fmt.Sprintf("offset %d not found", off),
				fmt.Errorf("%w: batch at %d starts past it", proto.ErrCorrupt, h.BaseOffset))
		case h.NextOffset() > off:
			return pos, nil
		}
		pos += int64(h.Size())
	}
	return 0, s.corruptAt(pos, fmt.Sprintf("offset %d not found", off), proto.ErrShortBatch)
}

// cut returns where a read from pos ends: after whole batches totalling at
// most budget bytes, or after the first batch when takeOne is set, and
// before any damaged range.
func (s *segment) cut(pos, budget int64, takeOne bool) (int64, error) {
	if s.size-pos <= budget && len(s.damaged) == 0 {
		return s.size, nil
	}
	end := pos
	for end < s.size {
		if _, ok := s.damagedAt(end); ok {
			break
		}
		h, err := s.header(end, s.size)
		if err != nil {
			return 0, s.corruptAt(end, "read batch header", err)
		}
		n := int64(h.Size())
		if end-pos+n > budget && !(takeOne && end == pos) {
			break
		}
		end += n
	}
	return end, nil
}

// seekTime returns the first offset in the segment whose record timestamp
// is ≥ ts, if any.
func (s *segment) seekTime(ts int64) (uint64, bool, error) {
	var pos int64
	if rel, ok := s.tidx.lookupTimeBelow(ts); ok {
		p, _, err := s.find(s.base + uint64(rel))
		if err != nil {
			return 0, false, err
		}
		pos = p
	}
	for pos < s.size {
		if d, ok := s.damagedAt(pos); ok {
			pos = d.end
			continue
		}
		h, err := s.header(pos, s.size)
		if err != nil {
			return 0, false, s.corruptAt(pos, "read batch header", err)
		}
		if h.MaxTimestamp >= ts {
			if off, ok := firstRecordAtOrAfter(s.file.data[pos:pos+int64(h.Size())], &h, ts); ok {
				return off, true, nil
			}
		}
		pos += int64(h.Size())
	}
	return 0, false, nil
}

// firstRecordAtOrAfter finds the first record of a batch with timestamp ≥
// ts. A compressed batch answers its base offset (its max timestamp said a
// record qualifies); an undecodable one is skipped.
func firstRecordAtOrAfter(batch []byte, h *proto.BatchHeader, ts int64) (uint64, bool) {
	if h.Codec() != proto.CodecNone {
		return h.BaseOffset, true
	}
	it, err := proto.NewRecordIter(batch)
	if err != nil {
		return 0, false
	}
	for it.Next() {
		if r := it.Record(); r.Timestamp >= ts {
			return r.Offset, true
		}
	}
	return 0, false
}

// view returns a referenced View of [pos, end).
func (s *segment) view(pos, end int64) View {
	s.file.acquire()
	return View{b: s.file.data[pos:end:end], f: s.file, pos: pos}
}
