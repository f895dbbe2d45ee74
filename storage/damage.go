package storage

import (
	"errors"
	"fmt"

	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/storage/vfs"
	"golang.org/x/sys/unix"
)

// Corruption is data of a partition that failed verification: a byte
// range of one segment file and the offsets it held. Recovery finds it
// (a batch whose CRC, header or offsets are wrong in data that was
// flushed, or a flushed segment cut short); reads report it (a header
// that does not parse where the index says a batch is). The log serves
// everything around it: a read of an offset in [FromOffset, ToOffset) is
// ErrCorrupt, and nothing after it is deleted.
type Corruption struct {
	Path       string
	Pos, End   int64  // byte range in Path
	FromOffset uint64 // first offset affected
	ToOffset   uint64 // first offset after the damage (0: unknown)
	Err        string
}

func (c *Corruption) String() string {
	return fmt.Sprintf("%s bytes %d-%d, offsets %d-%d: %s", c.Path, c.Pos, c.End, c.FromOffset, c.ToOffset, c.Err)
}

// errKnownDamage is a read of a range recovery already reported.
var errKnownDamage = fmt.Errorf("%w: damaged range reported at open", proto.ErrCorrupt)

// damage is a byte range of a segment that failed verification at
// recovery; [from, to) are the offsets it held.
type damage struct {
	pos, end int64
	from, to uint64
}

// damagedAt returns the damaged range starting at pos, if any. Index
// entries never point into a damaged range and walks step from batch to
// batch, so a walk reaches a damaged range exactly at its start.
func (s *segment) damagedAt(pos int64) (damage, bool) {
	for _, d := range s.damaged {
		if d.pos == pos {
			return d, true
		}
	}
	return damage{}, false
}

// Corruptions appends the corrupt ranges known to the log to dst.
func (l *Log) Corruptions(dst []Corruption) []Corruption { return append(dst, l.corrupt...) }

// noteCorruption records and logs (at ERROR) damage found in s.
func (l *Log) noteCorruption(s *segment, pos, end int64, from, to uint64, why error) {
	for _, c := range l.corrupt {
		if c.Path == s.path(logExt) && c.Pos == pos {
			return
		}
	}
	c := Corruption{Path: s.path(logExt), Pos: pos, End: end, FromOffset: from, ToOffset: to, Err: why.Error()}
	l.corrupt = append(l.corrupt, c)
	l.logger.Error("storage: corrupt data in partition; serving what is intact around it",
		"topic", l.topic, "partition", l.partition, "file", c.Path, "pos", pos, "end", end,
		"from_offset", from, "to_offset", to, "err", why)
}

// readFailed records a read that found corrupt data (a batch header that
// does not parse where the index or the previous batch says one starts):
// recovery only walks headers after the last index entry it trusts.
func (l *Log) readFailed(s *segment, off uint64, err error) {
	if !errors.Is(err, ErrCorrupt) || errors.Is(err, errKnownDamage) {
		return
	}
	for _, c := range l.corrupt {
		if c.Err == err.Error() {
			return
		}
	}
	l.corrupt = append(l.corrupt, Corruption{Path: s.path(logExt), Pos: -1, End: -1, FromOffset: off, Err: err.Error()})
	l.logger.Error("storage: corrupt data found by a read", "topic", l.topic, "partition", l.partition,
		"offset", off, "err", err)
}

// damage records [pos, end) of s as corrupt, holding offsets [from, to).
func (ld *loader) damage(s *segment, pos, end int64, from, to uint64, why error) {
	s.damaged = append(s.damaged, damage{pos: pos, end: end, from: from, to: to})
	ld.l.noteCorruption(s, pos, end, from, to, why)
}

// resync looks for the first whole valid batch (CRC checked) after a bad
// one at pos, before limit, whose base offset is at least ld.expect. It
// skips runs of zeros quickly: a header overlapping only zeros is invalid.
func (ld *loader) resync(s *segment, pos, limit int64) (int64, proto.BatchHeader, bool) {
	data := s.file.data[:limit]
	for p := pos + 1; p+proto.BatchHeaderSize <= limit; p++ {
		if q := nonZeroFrom(data, p); q > p+proto.BatchHeaderSize {
			p = q - proto.BatchHeaderSize
		}
		h, _, err := proto.ValidateBatch(data[p:])
		if err == nil && h.BaseOffset >= ld.expect && h.LastOffset()-s.base <= maxRelOffset {
			return p, h, true
		}
	}
	return 0, proto.BatchHeader{}, false
}

// nonZeroFrom returns the position of the first non-zero byte of b at or
// after p (len(b) when none).
func nonZeroFrom(b []byte, p int64) int64 {
	for p+8 <= int64(len(b)) && b[p]|b[p+1]|b[p+2]|b[p+3]|b[p+4]|b[p+5]|b[p+6]|b[p+7] == 0 {
		p += 8
	}
	for p < int64(len(b)) && b[p] == 0 {
		p++
	}
	return p
}

// resumeAfterDamage continues indexing at the valid batch h found at pos
// after a damaged range: an offset index entry there, so that lookups of
// later offsets never walk into the damage.
func (ld *loader) resumeAfterDamage(s *segment, pos int64, h *proto.BatchHeader) {
	if s.idx.put(h.BaseOffset-s.base, uint32(pos)) {
		s.lastIdxPos = pos
	}
	ld.expect = h.BaseOffset
}

// holdsData reports whether a segment file starts with a batch header
// that parses with the base offset its name says: whether anything was
// ever written to it. It reads only the header.
func holdsData(fsys vfs.FS, r segRef) bool {
	fd, err := openFile(fsys, segmentPath(r.dir, r.base, logExt), unix.O_RDONLY)
	if err != nil {
		return false
	}
	defer fsys.Close(fd)
	var b [proto.BatchHeaderSize]byte
	if n, err := fsys.Pread(fd, b[:], 0); err != nil || n < len(b) {
		return false
	}
	h, err := proto.ParseBatchHeader(b[:])
	return err == nil && h.BaseOffset == r.base
}
