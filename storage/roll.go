package storage

import (
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"github.com/ringmq/ringmq/storage/vfs"
	"golang.org/x/sys/unix"
)

// segmentFiles are the three files of a new segment: created and sized
// (createSegmentFiles), then opened and mapped (mapFiles) when the
// segment is put to use. Only the .log keeps a descriptor once mapped
// (the driver writes through it); the indexes are written through their
// mappings.
type segmentFiles struct {
	fs       vfs.FS
	capacity int64 // .log size
	entries  int64 // index capacity in entries
	fds      [3]int
	maps     [3][]byte
	paths    [3]string
}

func (f *segmentFiles) close() {
	for i := range f.fds {
		unmap(f.fs, f.maps[i])
		closeFd(f.fs, f.fds[i])
		f.maps[i], f.fds[i] = nil, -1
	}
}

// createSegmentFiles creates the .log (capacity bytes, zero-filled or
// sparse) and both indexes (entries entries, allocated) at paths and
// closes them: a prepared segment holds no descriptor and no mapping.
func createSegmentFiles(fsys vfs.FS, paths [3]string, capacity, entries int64, zeroFill bool, cancel *atomic.Bool) (*segmentFiles, error) {
	f := &segmentFiles{fs: fsys, capacity: capacity, entries: entries, fds: [3]int{-1, -1, -1}, paths: paths}
	sizes := f.sizes()
	for i := range paths {
		fd, err := createSized(fsys, paths[i], sizes[i], zeroFill && i == 0, cancel)
		if err == nil && i != 0 { // indexes are written through their mapping
			err = allocate(fsys, fd, 0, min(sizes[i], indexChunk))
		}
		closeFd(fsys, fd)
		if err != nil {
			for _, p := range paths {
				fsys.Remove(p)
			}
			return nil, err
		}
	}
	return f, nil
}

func (f *segmentFiles) sizes() [3]int64 {
	return [3]int64{f.capacity, f.entries * offsetEntrySize, f.entries * timeEntrySize}
}

// mapFiles opens and maps created segment files: the .log read-only
// with its descriptor kept for writes, the indexes read-write with their
// descriptors closed.
func (f *segmentFiles) mapFiles() error {
	sizes := f.sizes()
	for i, p := range f.paths {
		fd, err := openFile(f.fs, p, unix.O_RDWR)
		if err == nil {
			f.maps[i], err = mapFile(f.fs, fd, sizes[i], i != 0)
		}
		if i == 0 && err == nil {
			f.fds[0] = fd
			continue
		}
		closeFd(f.fs, fd)
		if err != nil {
			f.close()
			return err
		}
	}
	return nil
}

// createMappedSegment creates a segment's files and maps them.
func createMappedSegment(fsys vfs.FS, paths [3]string, capacity, entries int64) (*segmentFiles, error) {
	f, err := createSegmentFiles(fsys, paths, capacity, entries, false, nil)
	if err == nil {
		if err = f.mapFiles(); err != nil {
			f.discardFiles()
		}
	}
	return f, err
}

// discardFiles removes the files of a segment that was never used.
func (f *segmentFiles) discardFiles() {
	for _, p := range f.paths {
		f.fs.Remove(p)
	}
}

// newSegment wraps freshly created, mapped files as an empty active
// segment.
func newSegment(dir string, base uint64, f *segmentFiles) *segment {
	s := &segment{
		base: base, dir: dir, state: SegmentActive,
		file:     newLogFile(f.fs, f.fds[0], f.maps[0]),
		fileSize: f.capacity,
		idx:      index{fs: f.fs, path: f.paths[1], fd: -1, m: f.maps[1], esize: offsetEntrySize},
		tidx:     index{fs: f.fs, path: f.paths[2], fd: -1, m: f.maps[2], esize: timeEntrySize},
		next:     base, maxTs: math.MinInt64, planMaxTs: math.MinInt64,
	}
	s.idx.avail.Store(min(f.entries, indexChunk/offsetEntrySize))
	s.tidx.avail.Store(min(f.entries, indexChunk/timeEntrySize))
	return s
}

// extendIndexes asks the background worker to allocate the next chunk of
// the active segment's index files when the planned entries come near the
// allocated ones. Until it is done, entries past them are dropped (the
// index is only sparser). It does not allocate unless it posts a job.
func (l *Log) extendIndexes(s *segment) {
	if s.unnamed {
		return // the jobs open the files by their final names
	}
	for _, x := range []*index{&s.idx, &s.tidx} {
		if !x.wantsChunk() {
			continue
		}
		x.extending.Store(true)
		fsys, path, esize := x.fs, x.path, int64(x.esize)
		from := x.avail.Load() * esize
		to := min(int64(len(x.m)), from+indexChunk)
		job := func() {
			defer x.extending.Store(false)
			fd, err := openFile(fsys, path, unix.O_RDWR)
			if err == nil {
				err = allocate(fsys, fd, from, to-from)
				closeFd(fsys, fd)
			}
			if err == nil {
				x.avail.Store(to / esize)
			}
		}
		if l.store == nil {
			job()
			continue
		}
		l.bg.Add(1)
		l.store.worker.post(func() { defer l.bg.Done(); job() })
	}
}

func segmentPaths(dir string, base uint64) [3]string {
	var p [3]string
	for i, ext := range segmentExts {
		p[i] = segmentPath(dir, base, ext)
	}
	return p
}

// Rolling without blocking the owner. The next segment is prepared ahead
// of need on the Store's roll lane (a goroutine of its own, so that seals'
// fdatasyncs and retention on the worker never delay it): its three files
// are created under temporary names (.next-<n>.log, ...), sized, opened
// and mapped. A roll only swaps pointers: the prepared segment becomes the
// active one at once, under its final paths, and the roll lane renames its
// files into place and opens the partition directory for the flush that
// makes the names durable; the owner applies that (applyRolls) when the
// lane's result comes back. Until then the segment is "unnamed":
//
//   - a flush that would cover data in it waits (PrepareFlush refuses,
//     FlushWaiting says why), since the data would be under a name
//     recovery deletes;
//   - it is not sealed, and its indexes are not extended (those jobs open
//     the files by their final names).
//
// When the prepared segment is not ready at a roll (or too small after
// segment_bytes grew), PrepareAppend returns ErrRollPending and changes
// nothing; the owner holds the append until the log's notify function
// runs. A preparation that fails while an append waits fences the log
// (as a failed write does); a failed rename fences it too (the data in
// the segment could never become durable).

// preparedSegment is a next segment the roll lane made under temporary
// names (and, once mapped, opened and mapped), handed to the log through
// an atomic pointer.
type preparedSegment struct {
	*segmentFiles
	mapped    bool
	allocated bool // allocateNext ran (the .log's blocks are allocated)
}

func preparedPaths(dir string, n uint64) [3]string {
	var p [3]string
	for i, ext := range segmentExts {
		p[i] = filepath.Join(dir, nextPrefix+"-"+strconv.FormatUint(n, 10)+ext)
	}
	return p
}

// sparePaths name the n-th spare (numbered apart from the next segments,
// whose numbers tell a stale preparation failure from a current one).
func sparePaths(dir string, n uint64) [3]string {
	var p [3]string
	for i, ext := range segmentExts {
		p[i] = filepath.Join(dir, nextPrefix+"-spare-"+strconv.FormatUint(n, 10)+ext)
	}
	return p
}

func (p *preparedSegment) discard() {
	p.close()
	for _, path := range p.paths {
		p.fs.Remove(path)
	}
}

// rollResult is a finished roll-lane job for the owner: a segment renamed
// into place (seg, with the partition directory's descriptor), or a failed
// preparation (seg nil).
type rollResult struct {
	seg   *segment
	dirFd int
	err   error
	seq   uint64 // the failed preparation's number (Log.preallocSeq)
}

// SetNotify installs fn, called on a background goroutine when work the
// owner waits for finished: the next segment an append needed is ready (or
// could not be made), or a rolled segment got its name. The owner then
// calls ApplyBackground on its own goroutine, retries the appends refused
// with ErrRollPending, and plans the flush that waited. fn must not block.
// Call it before the first append.
func (l *Log) SetNotify(fn func()) { l.notify.Store(&fn) }

func (l *Log) notifyOwner() {
	if fn := l.notify.Load(); fn != nil {
		(*fn)()
	}
}

// requestPrealloc asks the roll lane for the next segment's files unless
// they exist or are being made (after open and after each roll): created
// and sized under temporary names, holding no descriptor, so an idle
// partition costs none.
func (l *Log) requestPrealloc() { l.prepareNext(false) }

// readyNext asks the roll lane to open and map the next segment (creating
// it first if needed) unless that is done or under way: right after a
// roll (the log is being written to), once the active segment of a log
// opened since is half full or half its age limit old, or when a roll
// needs it.
func (l *Log) readyNext() { l.prepareNext(true) }

func (l *Log) prepareNext(mapped bool) {
	if l.closed || l.preallocBusy.Load() {
		return
	}
	p := l.prepared.Load()
	if p != nil && (p.mapped || !mapped) {
		if p.mapped && mapped {
			l.prepareSpare()
		}
		return
	}
	if p != nil && !l.fits(p) {
		l.prepared.Store(nil)
		l.discardOnLane(p)
		p = nil
	}
	l.prepared.Store(nil) // the job holds it (nothing else stores it while busy)
	l.preallocBusy.Store(true)
	seq := l.preallocSeq
	var paths [3]string
	if p == nil {
		l.preallocSeq++
		seq = l.preallocSeq
		paths = preparedPaths(l.dir, seq)
	}
	capacity := l.cfg.SegmentBytes
	entries, zero := l.cfg.indexEntries(capacity), l.cfg.Preallocate
	alloc := l.cfg.AllocateNext && !zero // a zero-filled file is allocated
	spare := mapped && l.wantSpare() && l.spare.Load() == nil
	if spare {
		l.spareSeq++
	}
	spareSeq := l.spareSeq
	l.bg.Add(1)
	l.store.roller.post(func() {
		defer l.bg.Done()
		var err error
		if p == nil {
			var f *segmentFiles
			if f, err = createSegmentFiles(l.fs, paths, capacity, entries, zero, &l.cancel); err == nil {
				p = &preparedSegment{segmentFiles: f}
			}
		}
		if err == nil && mapped {
			if err = p.mapFiles(); err != nil {
				p.discardFiles()
			}
			p.mapped = err == nil
			if p.mapped && alloc {
				l.allocateNext(p)
			}
		}
		if err == nil && l.cancel.Load() {
			p.discard()
			err = ErrClosed
		}
		if err == nil {
			l.prepared.Store(p)
			if l.waiting.Swap(false) { // the owner waits for this one, not the spare
				l.notifyOwner()
			}
			if spare {
				l.makeSpare(spareSeq, capacity, entries, zero, alloc)
			}
		}
		l.preallocBusy.Store(false)
		if err != nil && !l.cancel.Load() {
			l.logger.Warn("storage: preparing the next segment failed", "dir", l.dir, "err", err)
			l.rolls.post(rollResult{err: fmt.Errorf("prepare the next segment of %s: %w", l.dir, err), seq: seq})
		}
		// After prepared (or the failure) is published: an owner that
		// announced its wait either sees it or is notified.
		if l.waiting.Swap(false) {
			l.notifyOwner()
		}
	})
}

// allocateNext allocates the blocks of a prepared segment's whole .log
// (on the roll lane, before it takes appends). It is best effort: a file
// system that cannot (no room for all of it) leaves the rest sparse, as
// without AllocateNext; a write that then finds no room fails as it would
// have.
func (l *Log) allocateNext(p *preparedSegment) {
	p.allocated = true
	if err := l.fs.Fallocate(p.fds[0], unix.FALLOC_FL_KEEP_SIZE, 0, p.capacity); err != nil {
		l.logger.Warn("storage: allocating the next segment failed; it stays sparse", "dir", l.dir, "err", err)
	}
}

// allocateActive allocates the rest of an active segment that was not
// allocated ahead (a partition's first segment, or one recovered at open)
// at its first append, on the roll lane: once, while little is written to
// it, instead of a block at a time by the flushes of the whole segment. A
// partition never written to keeps its segment sparse.
func (l *Log) allocateActive(s *segment) {
	if s.allocated || !l.cfg.AllocateNext || l.cfg.Preallocate || l.store == nil || s.file == nil {
		return
	}
	s.allocated = true
	fsys, fd, from, n, dir := l.fs, s.file.fd, s.reserved, s.capacity()-s.reserved, l.dir
	l.bg.Add(1) // Close waits for it before closing fd
	l.store.roller.post(func() {
		defer l.bg.Done()
		if l.cancel.Load() || n <= 0 {
			return
		}
		if err := fsys.Fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, from, n); err != nil {
			l.logger.Warn("storage: allocating the active segment failed; it stays sparse", "dir", dir, "err", err)
		}
	})
}

// spareSegmentBytes: logs with segments this small keep a second prepared
// segment from the start (a roll every few milliseconds under load leaves
// the roll lane little time to make the next one); others once a roll had
// to wait.
const spareSegmentBytes = 16 << 20

// wantSpare says whether the roll lane keeps a second mapped segment ready
// (the spare) besides the next one, so that a roll finds one ready even
// when the lane is still making the one after.
func (l *Log) wantSpare() bool {
	return l.cfg.SegmentBytes <= spareSegmentBytes || l.stats.preallocMisses > 0
}

// prepareSpare asks the roll lane for the spare when it is wanted and
// missing (on the owner; the lane is not busy with this log).
func (l *Log) prepareSpare() {
	s := l.spare.Load()
	if s != nil && !l.fits(s) {
		l.spare.Store(nil)
		l.discardOnLane(s)
		s = nil
	}
	if s != nil || !l.wantSpare() {
		return
	}
	l.preallocBusy.Store(true)
	l.spareSeq++
	seq, capacity := l.spareSeq, l.cfg.SegmentBytes
	entries, zero := l.cfg.indexEntries(capacity), l.cfg.Preallocate
	alloc := l.cfg.AllocateNext && !zero
	l.bg.Add(1)
	l.store.roller.post(func() {
		defer l.bg.Done()
		l.makeSpare(seq, capacity, entries, zero, alloc)
		l.preallocBusy.Store(false)
		if l.waiting.Swap(false) {
			l.notifyOwner()
		}
	})
}

// makeSpare creates, maps and allocates the spare (on the roll lane, in a
// job that holds preallocBusy). A failure only leaves it missing: the next
// segment is what a roll needs, and its failures fence.
func (l *Log) makeSpare(seq uint64, capacity, entries int64, zero, alloc bool) {
	f, err := createSegmentFiles(l.fs, sparePaths(l.dir, seq), capacity, entries, zero, &l.cancel)
	if err != nil {
		return
	}
	s := &preparedSegment{segmentFiles: f}
	if err := s.mapFiles(); err != nil {
		s.discardFiles()
		return
	}
	s.mapped = true
	if alloc {
		l.allocateNext(s)
	}
	if l.cancel.Load() {
		s.discard()
		return
	}
	// The next one if a roll took it meanwhile (the owner only empties
	// that slot), else the spare.
	if !l.prepared.CompareAndSwap(nil, s) {
		l.spare.Store(s)
	}
}

// fits says whether a prepared segment is large enough for the current
// configuration (segment_bytes may have grown since it was made).
func (l *Log) fits(p *preparedSegment) bool {
	return p.capacity >= l.cfg.SegmentBytes && p.entries >= l.cfg.indexEntries(l.cfg.SegmentBytes)
}

func (l *Log) discardOnLane(p *preparedSegment) {
	l.bg.Add(1)
	l.store.roller.post(func() { defer l.bg.Done(); p.discard() })
}

// prepareAhead readies the next segment once the active one s is half
// full or half its age limit old, so that its roll rarely waits.
func (l *Log) prepareAhead(s *segment, maxTs int64) {
	half := 2*s.reserved >= s.capacity() || l.cfg.SegmentMs > 0 && 2*(maxTs-s.firstTs) >= l.cfg.SegmentMs
	if half {
		l.readyNext()
	}
}

// roll seals the active segment and makes the prepared one active at
// l.next, or returns ErrRollPending (nothing changed) when none is ready.
func (l *Log) roll() error {
	p := l.takePrepared()
	if p == nil {
		if !l.rollWait {
			l.rollWait = true
			l.stats.preallocMisses++
		}
		l.waiting.Store(true) // announce the wait, then look again
		l.readyNext()
		if p = l.takePrepared(); p == nil {
			return ErrRollPending
		}
	}
	if l.rollWait {
		l.rollWait = false
	} else {
		l.stats.preallocHits++
	}
	base := l.next
	from := p.paths
	p.paths = segmentPaths(l.dir, base)
	s := newSegment(l.dir, base, p.segmentFiles)
	s.allocated = p.allocated
	s.unnamed = true
	old := l.active()
	old.state = SegmentSealed
	// Its last time index entry now (the seal, which waits for a flush,
	// may not come before a close or a crash).
	if old.maxUnindexed && old.tidx.put(uint64(old.planMaxTs), old.planMaxRel) {
		old.tidx.n, old.maxUnindexed = old.tidx.planned, false
	}
	l.segs = append(l.segs, s)
	l.maybeSeal(old)
	l.renameSegment(s, from)
	l.readyNext() // the log is written to: have the next one mapped at once
	return nil
}

// takePrepared takes the prepared segment if it is mapped and large
// enough; nil otherwise (it stays for readyNext, or, too small, goes).
func (l *Log) takePrepared() *preparedSegment {
	p := l.prepared.Load()
	if p == nil || !p.mapped || !l.fits(p) {
		// The spare, if the next one is not ready. Only the owner takes
		// from either slot, and the lane fills only an empty one.
		if s := l.spare.Load(); s != nil && l.fits(s) {
			l.spare.Store(nil)
			return s
		}
		return nil
	}
	l.prepared.Store(nil)
	// The spare becomes the next one. No lane job stores the next one
	// now: one that does started with that slot empty and stores it before
	// making the spare, which is empty until it is done.
	if s := l.spare.Load(); s != nil {
		l.spare.Store(nil)
		l.prepared.Store(s)
	}
	return p
}

// renameSegment has the roll lane give s's files (made under the names
// from) their final names and open the partition directory, whose fsync
// makes them durable.
func (l *Log) renameSegment(s *segment, from [3]string) {
	l.renaming++
	to := [3]string{s.path(logExt), s.idx.path, s.tidx.path}
	fsys, dir := l.fs, l.dir
	l.bg.Add(1)
	l.rolls.wg.Add(1)
	l.store.roller.post(func() {
		defer l.bg.Done()
		defer l.rolls.wg.Done()
		res := rollResult{seg: s, dirFd: -1}
		for i := range to {
			if err := fsys.Rename(from[i], to[i]); err != nil {
				res.err = fmt.Errorf("rename %s: %w", from[i], err)
				break
			}
		}
		if res.err == nil {
			res.dirFd, res.err = openFile(fsys, dir, unix.O_RDONLY|unix.O_DIRECTORY)
		}
		l.rolls.post(res)
		l.notifyOwner()
	})
}

// applyRolls applies the roll lane's results (on the owner; no I/O).
func (l *Log) applyRolls() {
	for _, res := range l.rolls.take() {
		l.applyRoll(res)
	}
}

func (l *Log) applyRoll(res rollResult) {
	if l.closed {
		closeFd(l.fs, res.dirFd)
		return
	}
	if res.seg == nil { // a preparation failed
		if l.rollWait && res.seq == l.preallocSeq { // not a stale failure
			l.rollWait = false
			l.fenceAt(l.pend.tail, fmt.Errorf("%w: %w", ErrFenced, res.err))
		}
		return
	}
	l.renaming--
	if res.err != nil {
		l.fenceAt(l.pend.head, fmt.Errorf("%w: roll: %w", ErrFenced, res.err))
		return
	}
	res.seg.unnamed = false
	l.dirGen++
	if l.dirFd < 0 {
		l.dirFd = res.dirFd
	} else {
		closeFd(l.fs, res.dirFd)
	}
	l.maybeSeal(res.seg)
}

// maybeSeal seals s once it was rolled, its last write completed, its
// files carry their names and a flush made its data durable (seal.go says
// why the cut waits for that).
func (l *Log) maybeSeal(s *segment) {
	if s.state != SegmentActive && s.reserved == s.size && !s.sealing && !s.unnamed && s.file != nil &&
		s.flushedSize >= s.size {
		l.seal(s)
	}
}

// FlushWaiting reports whether a flush must wait for a rolled segment's
// names: visible data lies in a segment the roll lane has not renamed yet.
// The log's notify function runs when it has.
func (l *Log) FlushWaiting() bool {
	for i := len(l.segs) - 1; i >= 0 && l.segs[i].unnamed; i-- {
		if l.segs[i].base < l.end {
			return true
		}
	}
	return false
}

// WaitBackground waits for this log's background jobs and applies their
// results: for tools and tests that drive a log synchronously (a server's
// owner is notified instead, SetNotify).
func (l *Log) WaitBackground() {
	if l.closed {
		return
	}
	l.bg.Wait()
	l.ApplyBackground()
}

// Roll seals the active segment now if it holds anything (an admin action
// and a test hook; appends roll by size and age on their own). It returns
// ErrRollPending like PrepareAppend.
func (l *Log) Roll() error {
	switch {
	case l.closed:
		return ErrClosed
	case l.err != nil:
		return l.err
	case l.active().reserved == 0:
		return nil
	}
	return l.roll()
}
