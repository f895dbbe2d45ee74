package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"

	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/storage/vfs"
	"golang.org/x/sys/unix"
)

// openLog creates or opens (recovering) one partition log.
func openLog(st *Store, topic string, partition uint32, cfg LogConfig, create bool) (*Log, error) {
	l := &Log{store: st, fs: st.fs, topic: topic, partition: partition, cfg: cfg, logger: st.logger,
		dir: st.partitionDir(st.dir, topic, partition), dirFd: -1, fence: math.MaxUint64}
	if st.opts.ArchiveDir != "" {
		l.archiveDir = st.partitionDir(st.opts.ArchiveDir, topic, partition)
	}
	var err error
	if create {
		err = l.create()
	} else {
		err = l.recover()
	}
	if err == nil {
		err = l.loadEpochs()
	}
	if err != nil {
		l.releaseAll()
		if create && !errors.Is(err, ErrExists) {
			l.fs.RemoveAll(l.dir)
		}
		return nil, err
	}
	l.dropFds()
	l.requestPrealloc()
	return l, nil
}

// dropFds closes the descriptors an open log does not need: the
// directory's and the indexes' (written through their mappings). Each
// segment keeps its .log descriptor (writes, cold reads).
func (l *Log) dropFds() {
	for _, s := range l.segs {
		s.idx.dropFd()
		s.tidx.dropFd()
	}
	closeFd(l.fs, l.dirFd)
	l.dirFd = -1
}

func (l *Log) openDir() error {
	fd, err := openFile(l.fs, l.dir, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	l.dirFd = fd
	return nil
}

// create makes the partition directory, its first (sparse) segment and its
// checkpoint.
func (l *Log) create() error {
	parent := filepath.Dir(l.dir)
	if err := l.fs.MkdirAll(parent); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	if err := l.fs.Mkdir(l.dir); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s", ErrExists, l.dir)
		}
		return fmt.Errorf("storage: %w", err)
	}
	if err := l.openDir(); err != nil {
		return err
	}
	if err := l.createFirst(0); err != nil {
		return err
	}
	for _, d := range []string{l.dir, parent, filepath.Dir(parent)} {
		if err := syncDir(l.fs, d); err != nil {
			return fmt.Errorf("storage: %w", err)
		}
	}
	return nil
}

// createFirst starts a log with no segments at base and checkpoints it.
func (l *Log) createFirst(base uint64) error {
	capacity := l.cfg.SegmentBytes
	f, err := createMappedSegment(l.fs, segmentPaths(l.dir, base), capacity, l.cfg.indexEntries(capacity))
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	l.segs = append(l.segs, newSegment(l.dir, base, f))
	l.next, l.end, l.flushed = base, base, base
	l.rp = l.checkpointAt()
	return l.WriteCheckpoint()
}

type segRef struct {
	base uint64
	dir  string
}

// loader carries the state of one recovery.
type loader struct {
	l     *Log
	refs  []segRef
	ckpt  Checkpoint
	match bool // the checkpoint names a segment that exists
	clean bool // clean stop: trust the checkpoint as the log end
	rpIdx int  // segment holding the recovery point
	rpPos int64
	// lastData is the last segment holding data: a torn tail can only be
	// in it (or in empty segments after it).
	lastData int
	expect   uint64 // offset the next batch must start with
}

// recover opens an existing partition. Segments before the recovery point
// are trusted (headers and indexes checked, no CRC); from it on every batch
// is verified and the log ends at the first bad one (see doc.go).
func (l *Log) recover() error {
	if _, err := l.fs.Stat(l.dir); err != nil {
		return fmt.Errorf("%w: %s", ErrNotFound, l.dir)
	}
	if err := l.openDir(); err != nil {
		return err
	}
	refs, err := l.listSegments()
	if err != nil {
		return err
	}
	if err := convertV1(l.fs, l.dir, refs, syncConvert{l.fs}); err != nil {
		return err
	}
	ld := &loader{l: l, refs: refs}
	ckpt, have, err := readCheckpoint(l.fs, l.dir)
	if err != nil {
		l.logger.Warn("storage: ignoring unreadable checkpoint; verifying the whole log", "err", err)
		have = false
	}
	if len(refs) == 0 {
		if have && ckpt.RecoveryPoint > 0 {
			return fmt.Errorf("%w: %s has no segments but its recovery point is %d", ErrCorrupt, l.dir, ckpt.RecoveryPoint)
		}
		return l.createFirst(0)
	}
	ld.locate(ckpt, have)
	if err := ld.loadAll(); err != nil {
		return err
	}
	return ld.finish()
}

// locate finds the segment and position recovery starts verifying at.
func (ld *loader) locate(c Checkpoint, have bool) {
	if !have {
		return
	}
	ld.ckpt = c
	for i, r := range ld.refs {
		if r.base == c.SegmentBase {
			ld.rpIdx, ld.rpPos, ld.match = i, c.SegmentPos, true
			ld.clean = c.Clean && ld.l.store.clean
			return
		}
	}
	// The checkpoint's segment is gone (retention deleted it after the
	// checkpoint was written): verify from the start of the segment that
	// holds the recovery point.
	for i, r := range ld.refs {
		if r.base <= c.RecoveryPoint {
			ld.rpIdx = i
		}
	}
}

// loadAll loads segments in order. A log can only be torn past the
// recovery point: in a segment whose writes had not all completed (the
// last one holding data, or one never sealed: still at its full
// preallocated size, its valid batches ending before its end), or, after
// a power cut, in any segment there: nothing past the recovery point is
// known to be durable, and the disk keeps unsynced writes and trims in any
// order, so a sealed segment can come back short or with lost sectors
// while a later one kept its data. A lost sector reads as zeros (segment
// files are new files), so a failure past the recovery point followed by
// a zero sector (lostSectors), or offsets missing after a segment past it,
// is a torn tail too: the log ends there and later segments are deleted.
// Anything else wrong is corruption of written data (a flipped byte): it
// is recorded and reported (damage.go), and the data around it, before
// and after, is kept and served.
func (ld *loader) loadAll() error {
	l := ld.l
	ld.expect = ld.refs[0].base
	ld.lastData = len(ld.refs) - 1
	for ld.lastData > 0 && !holdsData(ld.l.fs, ld.refs[ld.lastData]) {
		ld.lastData--
	}
	for i := range ld.refs {
		r := ld.refs[i]
		if r.base < ld.expect {
			return fmt.Errorf("%w: %s starts at offset %d but the log before it ends at %d",
				ErrCorrupt, segmentPath(r.dir, r.base, logExt), r.base, ld.expect)
		}
		if r.base > ld.expect && ld.expect < ld.ckpt.RecoveryPoint && ld.powerCutPossible() {
			return ld.dropStale(i) // retention's deletes before i were not durable
		}
		if r.base > ld.expect && i-1 >= ld.rpIdx && ld.powerCutPossible() {
			return ld.dropFrom(i) // the previous segment's tail was lost (power cut)
		}
		if r.base > ld.expect {
			prev := l.segs[i-1]
			ld.damage(prev, prev.size, prev.size, ld.expect, r.base,
				fmt.Errorf("%w: offsets missing before %s", proto.ErrCorrupt, segmentPath(r.dir, r.base, logExt)))
			ld.expect = r.base
		}
		s, end, err := ld.load(i)
		if err != nil {
			return err
		}
		l.segs = append(l.segs, s)
		if i == len(ld.refs)-1 || end == s.fileSize {
			continue
		}
		// A sealed segment whose valid data stops early: an untrimmed
		// one (zeros, and the next segment continues), a torn tail (no
		// later segment was written), or damage.
		next := ld.refs[i+1].base
		if next == ld.expect && isZero(s.file.data[end:min(s.fileSize, s.readable)]) {
			continue
		}
		if i >= ld.rpIdx && (i >= ld.lastData || !ld.sealed(s) || ld.lostSectors(s, end)) {
			return ld.dropFrom(i + 1)
		}
		if next < ld.expect {
			return s.corruptAt(end, fmt.Sprintf("next segment starts at offset %d, before %d", next, ld.expect), proto.ErrCorrupt)
		}
		ld.damage(s, end, s.fileSize, ld.expect, next,
			fmt.Errorf("%w: valid batches end at position %d of %d in a flushed segment", proto.ErrCorrupt, end, s.fileSize))
		s.publishPlanned(s.fileSize, next)
		ld.expect = next
	}
	return nil
}

// dropStale deletes segments 0..i-1 and loads the log again from segment
// i. They end in a gap that begins below the recovery point: every offset
// below it was durable, so only retention can have removed those after the
// gap's start, and the segments before it are ones retention deleted too,
// brought back by a power cut that lost their unlinks while keeping later
// ones (deletes in different directories, or unsynced ones, reach the disk
// in any order).
func (ld *loader) dropStale(i int) error {
	l := ld.l
	l.logger.Warn("storage: dropping segments retention had deleted before a power cut",
		"dir", l.dir, "first", ld.refs[0].base, "until", ld.refs[i].base)
	for _, s := range l.segs {
		s.close()
	}
	l.segs, l.corrupt = nil, nil
	for _, r := range ld.refs[:i] {
		for _, ext := range segmentExts {
			if err := l.fs.Remove(segmentPath(r.dir, r.base, ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("storage: drop a segment retention had deleted: %w", err)
			}
		}
	}
	ld.refs = ld.refs[i:]
	ld.rpIdx, ld.rpPos, ld.match = 0, 0, false
	ld.locate(ld.ckpt, true)
	return ld.loadAll()
}

// dropFrom deletes segments i and later: they follow a torn tail and
// hold no data.
func (ld *loader) dropFrom(i int) error {
	for _, r := range ld.refs[i:] {
		for _, ext := range segmentExts {
			if err := ld.l.fs.Remove(segmentPath(r.dir, r.base, ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("storage: drop segment after torn tail: %w", err)
			}
		}
	}
	ld.refs = ld.refs[:i]
	ld.l.stats.recoveryTruncated = true
	return nil
}

// load opens segment i, restores its indexes, walks its trusted part and
// verifies the rest. It returns where its valid data ends.
func (ld *loader) load(i int) (*segment, int64, error) {
	s, err := openSegment(ld.l.fs, ld.refs[i])
	if err != nil {
		return nil, 0, err
	}
	var trusted int64
	switch {
	case i < ld.rpIdx:
		trusted = s.fileSize
	case i == ld.rpIdx:
		trusted = ld.rpPos
	}
	if trusted > s.fileSize {
		s.close()
		return nil, 0, fmt.Errorf("%w: %s: recovery point at position %d is past its end (%d bytes)",
			ErrCorrupt, s.path(logExt), trusted, s.fileSize)
	}
	start := ld.restoreIndexes(s, min(trusted, s.readable))
	end, bad := ld.walk(s, start, min(trusted, s.readable), i < ld.rpIdx)
	if bad != nil && i == ld.rpIdx && ld.match {
		// The checkpoint says which offset the trusted part ends with.
		ld.damage(s, end, trusted, ld.expect, ld.ckpt.RecoveryPoint, bad)
		ld.expect, end = ld.ckpt.RecoveryPoint, trusted
		s.lastIdxPos = math.MinInt64 / 2 // index the next batch
	}
	if i == ld.rpIdx && end == trusted {
		if err := ld.applyCheckpoint(s); err != nil {
			s.close()
			return nil, 0, err
		}
	}
	if end == trusted && (!ld.clean || i > ld.rpIdx) {
		end = ld.scan(s, end, i >= ld.lastData)
	}
	s.publishPlanned(end, ld.expect)
	return s, end, nil
}

// applyCheckpoint checks the walk reached the checkpoint's offset and
// restores the running max timestamp it recorded.
func (ld *loader) applyCheckpoint(s *segment) error {
	if !ld.match {
		return nil
	}
	if ld.expect != ld.ckpt.RecoveryPoint {
		return s.corruptAt(ld.rpPos, fmt.Sprintf("offset %d at the recovery point, checkpoint says %d",
			ld.expect, ld.ckpt.RecoveryPoint), proto.ErrCorrupt)
	}
	if ld.rpPos > 0 && ld.ckpt.MaxTimestamp > s.planMaxTs {
		s.planMaxTs, s.planMaxRel, s.maxUnindexed = ld.ckpt.MaxTimestamp, ld.ckpt.MaxTimestampRel, true
	}
	return nil
}

// restoreIndexes keeps the well-formed offset index entries below trusted
// whose last one points at the right batch, minus that last one (the walk
// redoes it), and returns the position the walk starts at. When the walk
// starts at 0 both indexes are rebuilt; otherwise the time index is kept as
// it is (validated after the walk), because re-planning it from the middle
// would start from an unknown running max.
func (ld *loader) restoreIndexes(s *segment, trusted int64) int64 {
	n := s.idx.validOffsetPrefix(trusted)
	for ; n > 0; n-- {
		rel, pos := s.idx.offsetEntry(n - 1)
		if h, err := s.header(int64(pos), trusted); err == nil && h.BaseOffset == s.base+uint64(rel) {
			break
		}
	}
	if s.tidx.validTimePrefix(1) == 0 {
		n = 0 // no usable time index: rebuild both from the start
	}
	var start int64
	var relStart uint32
	keep := max(n-1, 0)
	if n > 0 {
		rel, pos := s.idx.offsetEntry(n - 1)
		start, relStart = int64(pos), rel
	}
	s.idx.n, s.idx.planned = keep, keep
	if keep > 0 {
		_, pos := s.idx.offsetEntry(keep - 1)
		s.lastIdxPos = int64(pos)
	}
	s.tidx.n, s.tidx.planned = 0, 0
	if start > 0 {
		if h, err := s.header(0, trusted); err == nil {
			s.firstTs = h.MaxTimestamp
		}
	}
	ld.expect = s.base + uint64(relStart)
	return start
}

// restoreTimeIndex keeps the well-formed time entries for the batches
// before the trusted end (offset ld.expect) after a walk that did not
// rebuild them, and sets the running max from them and from walkMax.
func (ld *loader) restoreTimeIndex(s *segment, walkMax int64, walkMaxRel uint32) {
	m := s.tidx.validTimePrefix(ld.expect - s.base)
	s.tidx.n, s.tidx.planned = m, m
	if m > 0 {
		s.planMaxTs, s.planMaxRel = s.tidx.timeEntry(m - 1)
		s.lastTimePos = s.idx.lookupOffset(s.planMaxRel)
	}
	if walkMax > s.planMaxTs {
		s.planMaxTs, s.planMaxRel = walkMax, walkMaxRel
		s.maxUnindexed = true
	}
}

// walk re-indexes the trusted batches in [pos, limit), checking each
// header and offset continuity but not CRCs (they were verified when
// written and fsync'd). With whole set, zeros may end the segment early
// (an untrimmed sealed segment; the caller decides). A bad header is
// damage: the walk goes on at the next valid batch, or stops there and
// returns why (bad).
func (ld *loader) walk(s *segment, pos, limit int64, whole bool) (end int64, bad error) {
	interval := int64(ld.l.cfg.IndexIntervalBytes)
	rebuild := pos == 0
	walkMax, walkMaxRel := int64(math.MinInt64), uint32(0)
	for pos < limit {
		h, err := s.header(pos, limit)
		if err == nil && h.BaseOffset != ld.expect {
			err = fmt.Errorf("%w: base offset %d, want %d", proto.ErrCorrupt, h.BaseOffset, ld.expect)
		}
		if err != nil {
			if whole && isZero(s.file.data[pos:min(pos+proto.BatchHeaderSize, limit)]) {
				break
			}
			p, nh, ok := ld.resync(s, pos, limit)
			if !ok {
				bad = fmt.Errorf("batch header before the recovery point: %w", err)
				break
			}
			ld.damage(s, pos, p, ld.expect, nh.BaseOffset, fmt.Errorf("batch header before the recovery point: %w", err))
			ld.resumeAfterDamage(s, p, &nh)
			pos = p
			continue
		}
		s.planOffset(pos, &h, interval)
		if rebuild {
			s.planTime(pos, &h, interval)
		} else if h.MaxTimestamp > walkMax {
			walkMax, walkMaxRel = h.MaxTimestamp, uint32(h.BaseOffset-s.base)
		}
		ld.expect = h.NextOffset()
		pos += int64(h.Size())
	}
	if !rebuild {
		ld.restoreTimeIndex(s, walkMax, walkMaxRel)
	}
	return pos, bad
}

// scan verifies batches from pos on (magic, length, CRC, offset continuity,
// relative offset range), indexing them, and returns where the valid log
// ends. With torn set (the log's last data) the first bad batch ends it;
// otherwise a bad batch is damage and the scan goes on at the next valid
// one. Bytes past the file's first hole are zeros and never read (on
// tmpfs, reading a hole through a mapping on a full disk faults).
func (ld *loader) scan(s *segment, pos int64, torn bool) int64 {
	interval := int64(ld.l.cfg.IndexIntervalBytes)
	lim := min(s.fileSize, s.readable)
	for pos < lim {
		h, _, err := proto.ValidateBatch(s.file.data[pos:lim])
		if err == nil && h.BaseOffset != ld.expect {
			err = fmt.Errorf("%w: base offset %d, want %d", proto.ErrCorrupt, h.BaseOffset, ld.expect)
		}
		if err == nil && h.LastOffset()-s.base > maxRelOffset {
			err = fmt.Errorf("%w: offset %d too far from segment base %d", proto.ErrCorrupt, h.LastOffset(), s.base)
		}
		if err != nil {
			n := min(proto.BatchHeaderSize, lim-pos)
			ld.l.stats.recoveryScanned += n
			zero := isZero(s.file.data[pos : pos+n])
			if torn || !(s.fileSize < ld.l.cfg.SegmentBytes || ld.chainEndsAtFileEnd(s, pos, lim)) || ld.lostSectors(s, pos) {
				if !zero {
					ld.l.stats.recoveryTruncated = true
				}
				return pos
			}
			p, nh, ok := ld.resync(s, pos, lim)
			if !ok {
				return pos
			}
			ld.damage(s, pos, p, ld.expect, nh.BaseOffset, err)
			ld.resumeAfterDamage(s, p, &nh)
			pos = p
			continue
		}
		s.plan(pos, &h, interval)
		ld.expect = h.NextOffset()
		pos += int64(h.Size())
		ld.l.stats.recoveryScanned += int64(h.Size())
	}
	return pos
}

// powerCutPossible reports whether the last stop may have lost unsynced
// writes: not when it was clean (the checkpoint says so, or the store's
// clean-shutdown marker was there: every log was synced and closed).
func (ld *loader) powerCutPossible() bool {
	return !ld.clean && (ld.l.store == nil || !ld.l.store.clean)
}

// lostSectors reports whether, after an unclean stop, the bytes of s from
// pos (where valid batches stop, past the recovery point) show a write
// lost to a power cut (vfs.LostSector).
func (ld *loader) lostSectors(s *segment, pos int64) bool {
	if !ld.powerCutPossible() {
		return false
	}
	lim := min(s.fileSize, s.readable, int64(len(s.file.data)))
	return pos >= lim || vfs.LostSector(s.file.data[:lim], int(pos))
}

// sealed reports whether s looks sealed: trimmed below the segment size
// (an unsealed segment keeps its preallocated size).
func (ld *loader) sealed(s *segment) bool { return s.fileSize < ld.l.cfg.SegmentBytes }

// chainEndsAtFileEnd reports whether, resyncing past bad batches from pos,
// valid batches run exactly to the end of s: the shape of a sealed,
// trimmed segment that was damaged, not of one whose writes were cut.
func (ld *loader) chainEndsAtFileEnd(s *segment, pos, lim int64) bool {
	if lim != s.fileSize {
		return false // a hole: never written there
	}
	expect := ld.expect
	defer func() { ld.expect = expect }()
	for {
		p, h, ok := ld.resync(s, pos, lim)
		if !ok {
			return false
		}
		for p < lim {
			h2, _, err := proto.ValidateBatch(s.file.data[p:lim])
			if err != nil || h2.BaseOffset != h.BaseOffset {
				break
			}
			p += int64(h2.Size())
			h.BaseOffset = h2.NextOffset()
		}
		if p == lim {
			return true
		}
		pos, ld.expect = p, h.BaseOffset
	}
}

func isZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
