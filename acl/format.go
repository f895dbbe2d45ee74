package acl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Wire constants of the entry-list record. Never change them.
const (
	// Magic is the first byte of every body.
	Magic = 0xAC
	// Version is the format version AppendEntries writes.
	Version = 1
	// frameHeader is len u32 + crc32c u32.
	frameHeader = 8
	// maxFrame bounds a frame's length field.
	maxFrame = 64 << 20
	// minEntry is the smallest encoded entry (empty strings, which
	// Validate then refuses); it bounds the count a body can hold.
	minEntry = 1 + 1 + 1 + 1 + 1 + 1
)

// Errors of ParseEntries.
var (
	// ErrTruncated: the input ends inside a frame (a torn tail).
	ErrTruncated = errors.New("acl: truncated frame")
	// ErrCorrupt: a frame that fails its CRC or does not decode. Never
	// authorize from it.
	ErrCorrupt = errors.New("acl: corrupt frame")
	// ErrVersion: a frame of a version this build does not know.
	ErrVersion = errors.New("acl: unknown frame version")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// AppendEntries appends the record of entries to dst. It encodes what it
// is given; New (or Entry.Validate) is where entries are checked.
func AppendEntries(dst []byte, entries []Entry) []byte {
	at := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, Magic, Version)
	dst = binary.AppendUvarint(dst, uint64(len(entries)))
	for _, e := range entries {
		dst = appendString(dst, e.Principal)
		dst = append(dst, byte(e.Resource), byte(e.Pattern))
		dst = appendString(dst, e.Name)
		dst = append(dst, byte(e.Operation), byte(e.Permission))
	}
	body := dst[at+frameHeader:]
	binary.LittleEndian.PutUint32(dst[at:], uint32(len(body)))
	binary.LittleEndian.PutUint32(dst[at+4:], crc32.Checksum(body, castagnoli))
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// ParseEntries parses the record at the start of src and returns its
// entries and the bytes after it. Every entry it returns passes Validate.
func ParseEntries(src []byte) ([]Entry, []byte, error) {
	if len(src) < frameHeader {
		return nil, src, ErrTruncated
	}
	n := binary.LittleEndian.Uint32(src)
	if n > maxFrame {
		return nil, src, fmt.Errorf("%w: length %d over %d", ErrCorrupt, n, maxFrame)
	}
	if uint64(len(src)-frameHeader) < uint64(n) {
		return nil, src, ErrTruncated
	}
	body, rest := src[frameHeader:frameHeader+n], src[frameHeader+n:]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(src[4:]) {
		return nil, src, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	if len(body) < 2 || body[0] != Magic {
		return nil, src, fmt.Errorf("%w: bad magic", ErrCorrupt)
	}
	if body[1] != Version {
		return nil, src, fmt.Errorf("%w: %d", ErrVersion, body[1])
	}
	entries, err := parseBody(body[2:])
	if err != nil {
		return nil, src, err
	}
	return entries, rest, nil
}

func parseBody(b []byte) ([]Entry, error) {
	r := reader{b: b}
	count := r.uvarint()
	if r.err == nil && count > uint64(len(r.b))/minEntry {
		r.fail("%d entries in %d bytes", count, len(r.b))
	}
	var entries []Entry
	if r.err == nil && count > 0 {
		entries = make([]Entry, 0, count)
	}
	for i := uint64(0); i < count && r.err == nil; i++ {
		var e Entry
		e.Principal = r.str()
		e.Resource = ResourceType(r.byte())
		e.Pattern = PatternType(r.byte())
		e.Name = r.str()
		e.Operation = Operation(r.byte())
		e.Permission = Permission(r.byte())
		if r.err == nil {
			if err := e.Validate(); err != nil {
				r.fail("entry %d: %v", i, err)
			}
		}
		entries = append(entries, e)
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d bytes after the entries", len(r.b))
	}
	if r.err != nil {
		return nil, r.err
	}
	return entries, nil
}

// reader decodes a body and keeps its first error; every read after it
// returns a zero value.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad uvarint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail("short body")
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) str() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.fail("string of %d bytes in %d", n, len(r.b))
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}
