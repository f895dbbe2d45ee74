package metalog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/storage/vfs"
)

// Record framing. These values are persisted: never change them (a new
// layout needs a new recordVersion, and readers must keep reading version 1).
const (
	recordHeaderSize = 8 // u32 length | u32 crc32c
	recordVersion    = 1

	opPut    = 1
	opDelete = 2
	opEnd    = 3 // snapshot trailer only

	// minBodySize is the smallest possible body: version, op, and two
	// one-byte varint lengths.
	minBodySize = 4
)

// Size limits. A length field above maxBodySize is treated as a bad frame by
// recovery, so these limits may be raised later but never lowered.
const (
	MaxKeySize   = 64 << 10
	MaxValueSize = 16 << 20
	maxBodySize  = 2 + 2*binary.MaxVarintLen64 + MaxKeySize + MaxValueSize
)

// Frame errors: the frame itself is incomplete or damaged, which is what a
// write cut short by a crash looks like. Recovery decides from the bytes
// after such a frame whether it is a torn tail or corruption.
var (
	errShortFrame = errors.New("record runs past the end of the file")
	errBadLength  = errors.New("record length out of range")
	errBadCRC     = errors.New("record crc mismatch")
)

// record is one decoded log or snapshot record. key and value alias the
// bytes it was parsed from.
type record struct {
	op    byte
	key   []byte
	value []byte
}

// appendRecord appends one framed record to dst.
func appendRecord(dst []byte, op byte, key string, value []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, recordVersion, op)
	dst = binary.AppendVarint(dst, int64(len(key)))
	dst = append(dst, key...)
	dst = binary.AppendVarint(dst, int64(len(value)))
	dst = append(dst, value...)
	body := dst[start+recordHeaderSize:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(dst[start+4:], proto.CRC32C(body))
	return dst
}

// recordSize is len(appendRecord(nil, op, key, value)) without encoding.
func recordSize(key string, value []byte) int64 {
	return int64(recordHeaderSize + 2 + varintLen(len(key)) + len(key) + varintLen(len(value)) + len(value))
}

func varintLen(n int) int {
	var tmp [binary.MaxVarintLen64]byte
	return binary.PutVarint(tmp[:], int64(n))
}

// frameLength reads the length field of the frame at the start of src and
// reports whether it is in range. ok is false if src is shorter than a
// frame header.
func frameLength(src []byte) (n int, inRange, ok bool) {
	if len(src) < recordHeaderSize {
		return 0, false, false
	}
	l := binary.LittleEndian.Uint32(src)
	return int(l), l >= minBodySize && l <= maxBodySize, true
}

// parseRecord decodes the record at the start of src and returns it with
// the bytes that follow it. Frame problems are reported as errShortFrame,
// errBadLength or errBadCRC; a frame whose CRC matches but whose body does
// not decode is ErrCorrupt, and an unknown version is ErrVersion.
func parseRecord(src []byte) (r record, rest []byte, err error) {
	n, inRange, ok := frameLength(src)
	switch {
	case !ok:
		return r, src, errShortFrame
	case !inRange:
		return r, src, errBadLength
	case len(src)-recordHeaderSize < n:
		return r, src, errShortFrame
	}
	body := src[recordHeaderSize : recordHeaderSize+n]
	if proto.CRC32C(body) != binary.LittleEndian.Uint32(src[4:]) {
		return r, src, errBadCRC
	}
	r, err = parseBody(body)
	return r, src[recordHeaderSize+n:], err
}

// parseBody decodes a record body whose CRC has been checked.
func parseBody(body []byte) (r record, err error) {
	d := proto.NewDecoder(body)
	version := d.U8()
	r.op = d.U8()
	if version != recordVersion {
		return r, fmt.Errorf("%w: record version %d", ErrVersion, version)
	}
	keyLen := d.Varint()
	if keyLen < 0 || keyLen > MaxKeySize {
		return r, fmt.Errorf("%w: key length %d", ErrCorrupt, keyLen)
	}
	r.key = d.Bytes(int(keyLen))
	valueLen := d.Varint()
	if valueLen < 0 || valueLen > MaxValueSize {
		return r, fmt.Errorf("%w: value length %d", ErrCorrupt, valueLen)
	}
	r.value = d.Bytes(int(valueLen))
	switch {
	case d.Err() != nil:
		return r, fmt.Errorf("%w: record body: %v", ErrCorrupt, d.Err())
	case d.Len() != 0:
		return r, fmt.Errorf("%w: %d trailing bytes in record body", ErrCorrupt, d.Len())
	case r.op < opPut || r.op > opEnd:
		return r, fmt.Errorf("%w: op %d", ErrCorrupt, r.op)
	case r.op == opDelete && len(r.value) != 0:
		return r, fmt.Errorf("%w: delete record with a value", ErrCorrupt)
	}
	return r, nil
}

// isFrameError reports whether err says the frame is incomplete or damaged
// (as opposed to a well-framed record with bad contents).
func isFrameError(err error) bool {
	return err == errShortFrame || err == errBadLength || err == errBadCRC
}

// tornTail reports whether the bad frame at b[off:] is a torn tail: a frame
// that runs past the end of b, or whose end (the end of its header when the
// length is out of range) is followed by nothing but zero bytes, or one
// followed by a sector lost to a power cut (vfs.LostSector: the disk kept
// a later sector of the unsynced tail and lost an earlier one), or whose
// header straddles a sector boundary and lost its part before it
// (lostHeaderStart).
func tornTail(b []byte, off int) bool {
	if vfs.LostSector(b, off) || lostHeaderStart(b, off) {
		return true
	}
	n, inRange, ok := frameLength(b[off:])
	if !ok {
		return true
	}
	end := off + recordHeaderSize
	if inRange {
		end += n
	}
	if end >= len(b) {
		return true
	}
	for _, c := range b[end:] {
		if c != 0 {
			return false
		}
	}
	return true
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// lostHeaderStart reports whether the bad frame at b[off:] is a record
// whose header straddles a sector boundary and whose earlier sector's write
// a power cut lost while the later one was kept: the header's bytes before
// the boundary read as zeros (fewer than vfs.LostSector needs) and filling
// them in gives a length whose body matches the frame's CRC. Only lost
// bytes inside the length field are filled in (the CRC must be whole), and
// the candidate lengths form one range of at most 2^32 values bounded by
// the bytes left in b, which one running CRC covers.
func lostHeaderStart(b []byte, off int) bool {
	boundary := (off/vfs.SectorSize + 1) * vfs.SectorSize
	lost := boundary - off
	if lost > 4 || off+recordHeaderSize > len(b) {
		return false
	}
	for _, c := range b[off:boundary] {
		if c != 0 {
			return false
		}
	}
	var kept [4]byte
	copy(kept[lost:], b[boundary:off+4])
	lo := int(binary.LittleEndian.Uint32(kept[:])) // lost bytes zero
	hi := lo + 1<<(8*lost) - 1                     // lost bytes all ones
	body := b[off+recordHeaderSize:]
	lo, hi = max(lo, minBodySize), min(hi, maxBodySize, len(body))
	if lo > hi {
		return false
	}
	want := binary.LittleEndian.Uint32(b[off+4:])
	crc := crc32.Update(0, castagnoli, body[:lo])
	for n := lo; ; n++ {
		if crc == want {
			return true
		}
		if n == hi {
			return false
		}
		crc = crc32.Update(crc, castagnoli, body[n:n+1])
	}
}
