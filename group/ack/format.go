package ack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/RoaringBitmap/roaring/v2"
)

// Wire constants of the record format. Never change them.
const (
	// Version is the format version of every frame this package writes.
	Version = 1
	// frameHeader is len u32 + crc32c u32.
	frameHeader = 8
	// maxFrame bounds a frame's length field (a snapshot of a 2^30 window
	// with random acks is well below it).
	maxFrame = 1 << 30
)

// Kind is the type of a frame. Never renumber.
type Kind uint8

const (
	KindSnapshot   Kind = 1 // the whole durable state
	KindAcquired   Kind = 2 // runs of offsets handed out, with their delivery count
	KindDone       Kind = 3 // runs of offsets marked done
	KindDeadLetter Kind = 4 // one record on its way to the dead-letter topic
)

// Errors of Parse and Restore.
var (
	// ErrTruncated: the input ends inside a frame (a torn tail).
	ErrTruncated = errors.New("ack: truncated frame")
	// ErrCorrupt: a frame that fails its CRC or does not decode. Never
	// serve state from it.
	ErrCorrupt = errors.New("ack: corrupt frame")
	// ErrVersion: a frame of a version this build does not know.
	ErrVersion = errors.New("ack: unknown frame version")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc32Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Run is the offsets [Start, End).
type Run struct {
	Start, End uint64
}

// AcquiredRun is the offsets [Start, End), each handed out for the
// Count-th time.
type AcquiredRun struct {
	Start, End uint64
	Count      int
}

type acqRun = AcquiredRun

// DeadLetter is a record to append to the dead-letter topic, with
// headers naming where it came from; confirm with Tracker.DeadLettered.
type DeadLetter struct {
	Topic      string
	Partition  int32
	Offset     uint64
	Deliveries int
	LastError  string
}

// Entry is one record of a Snapshot that is not done and was handed out.
type Entry struct {
	Offset     uint64
	Deliveries int
	Dead       bool   // waiting for the dead-letter append
	LastError  string // kept only when Dead
}

// Snapshot is the durable state of a tracker.
type Snapshot struct {
	Floor uint64
	// Done holds offset-Floor of the done offsets above the floor.
	Done    *roaring.Bitmap
	Entries []Entry // in offset order
}

// Record is one parsed frame; the fields of its Kind are set.
type Record struct {
	Kind       Kind
	Snapshot   Snapshot      // KindSnapshot
	Acquired   []AcquiredRun // KindAcquired
	Done       []Run         // KindDone
	DeadLetter Entry         // KindDeadLetter (Dead is true)
}

// beginFrame appends a frame header for kind; endFrame fills it in.
func beginFrame(dst []byte, kind Kind) ([]byte, int) {
	at := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, Version, byte(kind))
	return dst, at
}

func endFrame(dst []byte, at int) []byte {
	body := dst[at+frameHeader:]
	binary.LittleEndian.PutUint32(dst[at:], uint32(len(body)))
	binary.LittleEndian.PutUint32(dst[at+4:], crc32.Checksum(body, castagnoli))
	return dst
}

// AppendAcquired appends a KindAcquired frame.
func AppendAcquired(dst []byte, runs []AcquiredRun) []byte {
	dst, at := beginFrame(dst, KindAcquired)
	dst = binary.AppendUvarint(dst, uint64(len(runs)))
	var prev uint64
	for _, r := range runs {
		dst = binary.AppendVarint(dst, int64(r.Start-prev))
		dst = binary.AppendUvarint(dst, r.End-r.Start)
		dst = binary.AppendUvarint(dst, uint64(r.Count))
		prev = r.Start
	}
	return endFrame(dst, at)
}

// AppendDone appends a KindDone frame.
func AppendDone(dst []byte, runs []Run) []byte {
	dst, at := beginFrame(dst, KindDone)
	dst = binary.AppendUvarint(dst, uint64(len(runs)))
	var prev uint64
	for _, r := range runs {
		dst = binary.AppendVarint(dst, int64(r.Start-prev))
		dst = binary.AppendUvarint(dst, r.End-r.Start)
		prev = r.Start
	}
	return endFrame(dst, at)
}

// AppendDeadLetter appends a KindDeadLetter frame.
func AppendDeadLetter(dst []byte, e Entry) []byte {
	dst, at := beginFrame(dst, KindDeadLetter)
	dst = binary.AppendUvarint(dst, e.Offset)
	dst = binary.AppendUvarint(dst, uint64(e.Deliveries))
	dst = appendString(dst, e.LastError)
	return endFrame(dst, at)
}

// AppendSnapshot appends a KindSnapshot frame. s.Done may be nil (none).
func AppendSnapshot(dst []byte, s *Snapshot) []byte {
	dst, at := beginFrame(dst, KindSnapshot)
	dst = binary.AppendUvarint(dst, s.Floor)
	bm := s.Done
	if bm == nil {
		bm = roaring.New()
	}
	bm.RunOptimize()
	dst = binary.AppendUvarint(dst, bm.GetSerializedSizeInBytes())
	w := bytes.NewBuffer(dst)
	if _, err := bm.WriteTo(w); err != nil {
		panic("BUG: ack: roaring WriteTo a bytes.Buffer failed: " + err.Error())
	}
	dst = w.Bytes()
	dst = binary.AppendUvarint(dst, uint64(len(s.Entries)))
	prev := s.Floor
	for _, e := range s.Entries {
		dst = binary.AppendUvarint(dst, e.Offset-prev)
		dst = binary.AppendUvarint(dst, uint64(e.Deliveries))
		if e.Dead {
			dst = append(dst, 1)
			dst = appendString(dst, e.LastError)
		} else {
			dst = append(dst, 0)
		}
		prev = e.Offset
	}
	return endFrame(dst, at)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// Parse decodes the frame at the start of src and returns it with the
// bytes after it. A short src gives ErrTruncated, a bad CRC or body
// ErrCorrupt, an unknown version ErrVersion.
func Parse(src []byte) (Record, []byte, error) {
	if len(src) < frameHeader {
		return Record{}, src, ErrTruncated
	}
	n := binary.LittleEndian.Uint32(src)
	if n < 2 || n > maxFrame {
		return Record{}, src, fmt.Errorf("%w: length %d", ErrCorrupt, n)
	}
	if uint64(len(src)-frameHeader) < uint64(n) {
		return Record{}, src, ErrTruncated
	}
	body := src[frameHeader : frameHeader+int(n)]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(src[4:]) {
		return Record{}, src, fmt.Errorf("%w: crc mismatch", ErrCorrupt)
	}
	if body[0] != Version {
		return Record{}, src, fmt.Errorf("%w: %d", ErrVersion, body[0])
	}
	rec := Record{Kind: Kind(body[1])}
	d := decoder{b: body[2:]}
	switch rec.Kind {
	case KindSnapshot:
		rec.Snapshot = d.snapshot()
	case KindAcquired:
		rec.Acquired = d.acquired()
	case KindDone:
		rec.Done = d.done()
	case KindDeadLetter:
		rec.DeadLetter = Entry{Offset: d.uvarint(), Deliveries: d.count(), LastError: d.string(), Dead: true}
	default:
		return Record{}, src, fmt.Errorf("%w: kind %d", ErrCorrupt, body[1])
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return Record{}, src, fmt.Errorf("%w: kind %d: %v", ErrCorrupt, rec.Kind, d.err)
	}
	return rec, src[frameHeader+int(n):], nil
}

// decoder reads a frame body and keeps its first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = errors.New(what)
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("short")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) bytes(n uint64) []byte {
	if n > uint64(len(d.b)) {
		d.fail("short")
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

// count reads a delivery count (1..65535).
func (d *decoder) count() int {
	v := d.uvarint()
	if v == 0 || v > maxCount {
		d.fail("delivery count out of range")
	}
	return int(v)
}

// length reads an element count, bounded by the bytes left (each element
// takes at least min bytes), so hostile input cannot make us allocate.
func (d *decoder) length(min int) int {
	v := d.uvarint()
	if v > uint64(len(d.b)/min) {
		d.fail("count larger than the frame")
		return 0
	}
	return int(v)
}

func (d *decoder) string() string { return string(d.bytes(d.uvarint())) }

// end reads a run length and returns start+len, failing on overflow or
// an empty run.
func (d *decoder) end(start uint64) uint64 {
	n := d.uvarint()
	if n == 0 || start+n < start {
		d.fail("bad run")
	}
	return start + n
}

func (d *decoder) acquired() []AcquiredRun {
	runs := make([]AcquiredRun, d.length(3))
	var prev uint64
	for i := range runs {
		start := prev + uint64(d.varint())
		runs[i] = AcquiredRun{Start: start, End: d.end(start), Count: d.count()}
		prev = start
	}
	return runs
}

func (d *decoder) done() []Run {
	runs := make([]Run, d.length(2))
	var prev uint64
	for i := range runs {
		start := prev + uint64(d.varint())
		runs[i] = Run{Start: start, End: d.end(start)}
		prev = start
	}
	return runs
}

func (d *decoder) snapshot() Snapshot {
	s := Snapshot{Floor: d.uvarint(), Done: roaring.New()}
	raw := d.bytes(d.uvarint())
	if d.err == nil {
		if _, err := s.Done.ReadFrom(bytes.NewReader(raw)); err != nil {
			d.fail("done bitmap: " + err.Error())
		} else if err := s.Done.Validate(); err != nil {
			d.fail("done bitmap: " + err.Error())
		} else if s.Done.GetSerializedSizeInBytes() != uint64(len(raw)) {
			d.fail("done bitmap: trailing bytes")
		}
	}
	s.Entries = make([]Entry, d.length(3))
	prev := s.Floor
	for i := range s.Entries {
		e := &s.Entries[i]
		e.Offset = prev + d.uvarint()
		if i > 0 && e.Offset <= prev || e.Offset < prev {
			d.fail("entries out of order")
		}
		e.Deliveries = d.count()
		switch d.byte() {
		case 0:
		case 1:
			e.Dead, e.LastError = true, d.string()
		default:
			d.fail("bad entry flags")
		}
		prev = e.Offset
	}
	return s
}
