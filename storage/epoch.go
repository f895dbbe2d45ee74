package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/storage/vfs"
	"golang.org/x/sys/unix"
)

// The leader-epoch cache of a partition (Kafka's leader-epoch-checkpoint):
// for each leader epoch that wrote to the log, the offset of its first
// batch. It is derived data: every batch carries its epoch
// (partition_leader_epoch), so the cache is rebuilt from batch headers
// whenever the file is missing or damaged, and the file only bounds that
// walk. The log keeps it up to date as batches are planned (PrepareAppend
// stamps the leader epoch, AppendReplicated takes the leader's), cuts it
// with TruncateTo, and persists it:
//
//   - WriteEpochsAsync (beside each recovery checkpoint): written by the
//     background worker, describing the log below the log end when asked;
//   - TruncateTo: written durably before the log is cut, describing the
//     log below the truncation offset;
//   - at open, when the file describes more than the recovered log (a
//     power cut lost the tail it covered): rewritten durably before any
//     append can reuse those offsets.
//
// So the file's entries are always right for the log below its end
// offset: open keeps them, walks batch headers from that end to the log
// end, and never needs the file to be current.
//
// File layout (little-endian), <partition>/leader-epoch-checkpoint,
// written whole to leader-epoch-checkpoint.tmp, fdatasync'd, renamed over
// the old one and the directory fsync'd. The magic, version 1 and these
// offsets are persisted: never change them; a new layout needs a new
// version.
//
//	offset size field
//	     0    4 magic          "RMQE"
//	     4    1 version        1
//	     5    3 reserved       0
//	     8    8 end_offset     the entries describe every batch below it
//	    16    4 entry_count    n (at most maxEpochEntries)
//	    20 12*n entries        epoch i32 | start_offset u64, epochs and
//	                           starts growing, starts below end_offset
//	20+12n    4 crc32c         Castagnoli over bytes [0, 20+12n)
const (
	epochsMagic      = "RMQE"
	epochsVersion    = 1
	epochsHeaderSize = 20
	epochEntrySize   = 12
	epochsName       = "leader-epoch-checkpoint"
	// maxEpochEntries bounds what a damaged count can make a parser take.
	maxEpochEntries = 1 << 20
)

// v1LeaderEpoch is the leader epoch of batches converted from record batch
// version 1, which had none: 0, the one epoch of a partition before
// replication.
const v1LeaderEpoch int32 = 0

// EpochEntry says that the batches from Start on carry leader epoch Epoch,
// up to the next entry's Start (the same fields as replica.EpochEntry, so
// a driver converts with replica.EpochEntry(e)).
type EpochEntry struct {
	Epoch int32
	Start uint64
}

// EpochCheckpoint is the content of a leader-epoch-checkpoint file.
type EpochCheckpoint struct {
	End     uint64 // the entries describe every batch below End
	Entries []EpochEntry
}

// errBadEpochs is wrapped with ErrCorrupt by ParseEpochCheckpoint.
var errBadEpochs = errors.New("bad leader-epoch checkpoint")

// AppendEpochCheckpoint appends the encoding of c to dst.
func AppendEpochCheckpoint(dst []byte, c *EpochCheckpoint) []byte {
	start := len(dst)
	le := binary.LittleEndian
	dst = append(dst, epochsMagic...)
	dst = append(dst, epochsVersion, 0, 0, 0)
	dst = le.AppendUint64(dst, c.End)
	dst = le.AppendUint32(dst, uint32(len(c.Entries)))
	for _, e := range c.Entries {
		dst = le.AppendUint32(dst, uint32(e.Epoch))
		dst = le.AppendUint64(dst, e.Start)
	}
	return le.AppendUint32(dst, proto.CRC32C(dst[start:]))
}

// ParseEpochCheckpoint decodes a leader-epoch checkpoint from the start of
// src and returns the bytes after it. Any damage (a short file, a bad
// magic or CRC, entries not growing, an unknown version) is an error
// wrapping ErrCorrupt.
func ParseEpochCheckpoint(src []byte) (EpochCheckpoint, []byte, error) {
	var c EpochCheckpoint
	bad := func(format string, args ...any) (EpochCheckpoint, []byte, error) {
		return EpochCheckpoint{}, src, fmt.Errorf("%w: %w: %s", ErrCorrupt, errBadEpochs, fmt.Sprintf(format, args...))
	}
	if len(src) < epochsHeaderSize+4 {
		return bad("%d bytes", len(src))
	}
	d := proto.NewDecoder(src)
	magic := d.Bytes(4)
	version := d.U8()
	d.Bytes(3)
	c.End = d.U64()
	n := d.U32()
	switch {
	case string(magic) != epochsMagic || version != epochsVersion:
		return bad("magic %q version %d", magic, version)
	case n > maxEpochEntries || int(n)*epochEntrySize+epochsHeaderSize+4 > len(src):
		return bad("%d entries in %d bytes", n, len(src))
	}
	size := epochsHeaderSize + int(n)*epochEntrySize
	if crc := binary.LittleEndian.Uint32(src[size:]); crc != proto.CRC32C(src[:size]) {
		return bad("crc mismatch")
	}
	c.Entries = make([]EpochEntry, n)
	for i := range c.Entries {
		c.Entries[i] = EpochEntry{Epoch: int32(d.U32()), Start: d.U64()}
	}
	if d.Err() != nil {
		return bad("%v", d.Err())
	}
	for i, e := range c.Entries {
		if e.Epoch < 0 || e.Start >= c.End || (i > 0 && (e.Epoch <= c.Entries[i-1].Epoch || e.Start < c.Entries[i-1].Start)) {
			return bad("entry %d (epoch %d at %d) out of order, end %d", i, e.Epoch, e.Start, c.End)
		}
	}
	return c, src[size+4:], nil
}

// writeEpochs replaces dir's leader-epoch checkpoint durably (tmp,
// fdatasync, rename, directory fsync).
func writeEpochs(fsys vfs.FS, dir string, c *EpochCheckpoint) error {
	b := AppendEpochCheckpoint(nil, c)
	path := filepath.Join(dir, epochsName)
	tmp := path + tmpSuffix
	fd, err := openFile(fsys, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC)
	if err != nil {
		return fmt.Errorf("write leader epochs: %w", err)
	}
	_, err = fsys.Pwrite(fd, b, 0)
	if err == nil {
		blocking("fdatasync")
		err = fsys.Fdatasync(fd)
	}
	fsys.Close(fd)
	if err == nil {
		blocking("rename")
		err = fsys.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(fsys, dir)
	}
	if err != nil {
		return fmt.Errorf("write leader epochs %s: %w", path, err)
	}
	return nil
}

// readEpochs returns dir's leader-epoch checkpoint; found is false when
// there is none. A damaged one is an error wrapping ErrCorrupt.
func readEpochs(fsys vfs.FS, dir string) (c EpochCheckpoint, found bool, err error) {
	path := filepath.Join(dir, epochsName)
	b, err := fsys.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, false, nil
	}
	if err != nil {
		return c, false, err
	}
	c, _, err = ParseEpochCheckpoint(b)
	if err != nil {
		return c, true, fmt.Errorf("%s: %w", path, err)
	}
	return c, true, nil
}

// LeaderEpochs appends the log's leader-epoch entries to dst: one per
// epoch that wrote a batch, including batches still in flight.
func (l *Log) LeaderEpochs(dst []EpochEntry) []EpochEntry { return append(dst, l.epochs...) }

// LeaderEpoch is the epoch PrepareAppend stamps into batches.
func (l *Log) LeaderEpoch() int32 { return l.epoch }

// SetLeaderEpoch sets the partition_leader_epoch PrepareAppend stamps
// into the batches it appends from now on (the replica's leader epoch;
// 0 until replication assigns one). An epoch older than the log's latest
// is refused: a log's epochs only grow.
func (l *Log) SetLeaderEpoch(epoch int32) error {
	if epoch < 0 || (len(l.epochs) > 0 && epoch < l.epochs[len(l.epochs)-1].Epoch) {
		return fmt.Errorf("%w: leader epoch %d, the log holds epoch %d", ErrInvalidConfig, epoch, l.latestEpoch())
	}
	l.epoch = epoch
	return nil
}

func (l *Log) latestEpoch() int32 {
	if len(l.epochs) == 0 {
		return -1
	}
	return l.epochs[len(l.epochs)-1].Epoch
}

// assignEpoch records a planned batch of epoch at start: a new entry when
// the epoch is newer than the latest. It does not allocate unless it adds
// one.
func (l *Log) assignEpoch(epoch int32, start uint64) {
	n := len(l.epochs)
	switch {
	case epoch < 0 || (n > 0 && epoch <= l.epochs[n-1].Epoch):
	case n > 0 && l.epochs[n-1].Start == start:
		l.epochs[n-1].Epoch = epoch // an entry with no batch (the log start moved past it)
	default:
		l.epochs = append(l.epochs, EpochEntry{Epoch: epoch, Start: start})
	}
}

// truncateEpochs forgets the epochs of offsets at or after end.
func (l *Log) truncateEpochs(end uint64) {
	n := len(l.epochs)
	for n > 0 && l.epochs[n-1].Start >= end {
		n--
	}
	l.epochs = l.epochs[:n]
}

// epochCheckpoint describes the log below end.
func (l *Log) epochCheckpoint(end uint64) EpochCheckpoint {
	c := EpochCheckpoint{End: end}
	for _, e := range l.epochs {
		if e.Start < end {
			c.Entries = append(c.Entries, e)
		}
	}
	return c
}

// WriteEpochsAsync persists the leader-epoch cache of the visible log on
// the Store's background worker (the driver calls it beside each recovery
// checkpoint; it only shortens the header walk of the next open). Writes
// of one log happen in the order asked; a failure is logged.
func (l *Log) WriteEpochsAsync() {
	if l.closed || l.end == l.epochsWritten {
		return
	}
	c, dir, fsys := l.epochCheckpoint(l.end), l.dir, l.fs
	l.epochsWritten = l.end
	if l.store == nil {
		if err := writeEpochs(fsys, dir, &c); err != nil {
			l.logger.Warn("storage: write leader epochs failed", "dir", dir, "err", err)
		}
		return
	}
	l.ckpt.Add(1)
	l.store.worker.post(func() {
		defer l.ckpt.Done()
		if err := writeEpochs(fsys, dir, &c); err != nil {
			l.logger.Warn("storage: write leader epochs failed", "dir", dir, "err", err)
		}
	})
}

// loadEpochs builds the cache at open: the file's entries below its end
// (and the log end), then the epochs of the batch headers from there to
// the log end. A missing or damaged file means a walk of the whole log. A
// file describing more than the recovered log (a power cut took the tail)
// is rewritten at once, before an append can reuse those offsets.
func (l *Log) loadEpochs() error {
	c, have, err := readEpochs(l.fs, l.dir)
	if err != nil {
		l.logger.Warn("storage: rebuilding the leader-epoch cache from the log", "err", err)
		have = false
	}
	start := l.LogStart()
	from := start
	l.epochs = l.epochs[:0]
	if have {
		from = max(min(c.End, l.end), start)
		for _, e := range c.Entries {
			if e.Start < from {
				l.epochs = append(l.epochs, e)
			}
		}
		// epochs wholly before the log start: keep the last, from the start
		for len(l.epochs) > 1 && l.epochs[1].Start <= start {
			l.epochs = l.epochs[1:]
		}
		if len(l.epochs) > 0 && l.epochs[0].Start < start {
			l.epochs[0].Start = start
		}
	}
	if !l.walkEpochs(from) && from != start {
		l.epochs = l.epochs[:0] // the file's end is no batch boundary here: rebuild
		l.walkEpochs(start)
	}
	l.truncateEpochs(l.end) // an epoch left with no batch by the log start
	if have && c.End > l.end {
		cp := l.epochCheckpoint(l.end)
		if err := writeEpochs(l.fs, l.dir, &cp); err != nil {
			return fmt.Errorf("storage: %w", err)
		}
	}
	l.epochsWritten = min(c.End, l.end)
	return nil
}

// walkEpochs assigns the epochs of the visible batches from offset from
// (a batch boundary) to the log end, reading headers only and stepping
// over damaged ranges. It reports false when from is not a batch start.
func (l *Log) walkEpochs(from uint64) bool {
	if from >= l.end {
		return from == l.end
	}
	i := l.segmentFor(from)
	if i < 0 {
		return false
	}
	pos, _, err := l.segs[i].find(from)
	if err != nil {
		return false
	}
	if h, err := l.segs[i].header(pos, l.segs[i].size); err != nil || h.BaseOffset != from {
		return false
	}
	for ; i < len(l.segs); i, pos = i+1, 0 {
		s := l.segs[i]
		for pos < s.size {
			if d, ok := s.damagedAt(pos); ok {
				pos = d.end
				continue
			}
			h, err := s.header(pos, s.size)
			if err != nil {
				break
			}
			l.assignEpoch(h.LeaderEpoch, h.BaseOffset)
			pos += int64(h.Size())
		}
	}
	return true
}
