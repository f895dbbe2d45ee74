package controller

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/ringmq/ringmq/proto"
)

// Frame layout shared by commands and snapshots (see doc.go). Persisted in
// the Raft log and in snapshots: never change these values.
const (
	frameHeaderSize = 8 // length u32 | crc32c u32
	recordVersion   = 1
	// MaxCommandSize bounds one encoded command (a topic with many configs
	// stays far below it).
	MaxCommandSize = 1 << 20
	// MaxSnapshotSize bounds one encoded snapshot.
	MaxSnapshotSize = 1 << 30
)

// appendFrame reserves the frame header, lets body append version, type
// and fields, then fills in length and CRC.
func appendFrame(dst []byte, typ byte, body func([]byte) []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, recordVersion, typ)
	dst = body(dst)
	payload := dst[start+frameHeaderSize:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[start+4:], proto.CRC32C(payload))
	return dst
}

// parseFrame checks a frame's length, CRC and version and returns its type,
// its fields (after version and type) and what follows it.
func parseFrame(src []byte, maxSize int) (typ byte, fields, rest []byte, err error) {
	if len(src) < frameHeaderSize {
		return 0, nil, src, fmt.Errorf("%w: %d bytes, want a %d-byte header", ErrCorrupt, len(src), frameHeaderSize)
	}
	n := binary.LittleEndian.Uint32(src)
	if n < 2 || uint64(n) > uint64(maxSize) || uint64(n) > uint64(len(src)-frameHeaderSize) {
		return 0, nil, src, fmt.Errorf("%w: length %d with %d bytes left", ErrCorrupt, n, len(src)-frameHeaderSize)
	}
	payload := src[frameHeaderSize : frameHeaderSize+int(n)]
	if got, want := proto.CRC32C(payload), binary.LittleEndian.Uint32(src[4:]); got != want {
		return 0, nil, src, fmt.Errorf("%w: crc32c %08x, header says %08x", ErrCorrupt, got, want)
	}
	if payload[0] != recordVersion {
		return 0, nil, src, fmt.Errorf("%w: version %d", ErrVersion, payload[0])
	}
	return payload[1], payload[2:], src[frameHeaderSize+int(n):], nil
}

func appendUvarint(dst []byte, v uint64) []byte { return binary.AppendUvarint(dst, v) }

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, 1)
	}
	return append(dst, 0)
}

func appendIDs(dst []byte, ids []int32) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ids)))
	for _, id := range ids {
		dst = binary.AppendUvarint(dst, uint64(id))
	}
	return dst
}

// reader decodes fields and keeps its first error (a short or hostile input
// never panics); callers check err once at the end.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
	}
	r.b = nil
}

func (r *reader) uvarint(max uint64, what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || n > 1 && r.b[n-1] == 0 {
		r.fail("%s: bad or non-minimal varint", what)
		return 0
	}
	r.b = r.b[n:]
	if v > max {
		r.fail("%s %d > %d", what, v, max)
		return 0
	}
	return v
}

func (r *reader) int32(what string) int32 {
	return int32(r.uvarint(math.MaxInt32, what))
}

func (r *reader) bool(what string) bool {
	switch v := r.uvarint(1, what); v {
	case 1:
		return true
	default:
		return false
	}
}

func (r *reader) string(max int, what string) string {
	n := r.uvarint(uint64(max), what+" length")
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.fail("%s: %d bytes, %d left", what, n, len(r.b))
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// count reads a list length, bounded by max and by the bytes left (every
// element takes at least one byte), so a hostile count cannot make the
// decoder allocate much.
func (r *reader) count(max int, what string) int {
	n := r.uvarint(uint64(max), what)
	if n > uint64(len(r.b)) {
		r.fail("%s %d with %d bytes left", what, n, len(r.b))
		return 0
	}
	return int(n)
}

func (r *reader) ids(max int, what string) []int32 {
	n := r.count(max, what)
	if n == 0 {
		return nil
	}
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = r.int32(what)
	}
	return ids
}

// done reports the first error, or trailing bytes.
func (r *reader) done(what string) error {
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes after %s", len(r.b), what)
	}
	return r.err
}
