package proto

import (
	"fmt"
	"sync"
)

// ValidateRecords checks that the records section of batch (one whole
// batch, already checked with ValidateBatch) holds exactly what its header
// says, so that every reader can decode what the broker stores: record_count
// records, back to back to the end of the section, each one's varint lengths
// inside the record, its offset delta its index (0, 1, 2…, as Kafka requires
// of produced batches), header keys not null, and nothing left over inside
// a record or after the last one. A compressed section must decompress
// (within MaxDecompressedSize) and is then checked the same way; the
// decompression goes into a pooled buffer that is kept for the next call.
// Errors match ErrInvalidRecords. It does not allocate for a valid
// uncompressed batch.
func ValidateRecords(batch []byte) error {
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return err
	}
	if len(batch) < h.Size() {
		return ErrShortBatch
	}
	if h.Codec() == CodecNone {
		return validateSection(BatchRecords(batch, &h), h.RecordCount)
	}
	scratch := validateScratch.Get().(*[]byte)
	defer validateScratch.Put(scratch)
	records, err := DecompressRecords((*scratch)[:0], batch)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRecords, err)
	}
	if cap(records) <= maxPooledScratch {
		*scratch = records[:0]
	}
	return validateSection(records, h.RecordCount)
}

// validateScratch holds decompression buffers for ValidateRecords; one
// larger than maxPooledScratch is not kept.
var validateScratch = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledScratch = 8 << 20

// validateSection walks count records of section (see record.go for their
// layout) without decoding them into anything.
func validateSection(s []byte, count uint32) error {
	w := varintWalker{b: s}
	for r := uint32(0); r < count; r++ {
		w.b = s
		n := w.varint()
		if w.bad || n < 1 || n > int64(len(s)-w.i) {
			return invalidRecord(r, "length", n, !w.bad)
		}
		w.b = s[:w.i+int(n)]
		w.i++ // attributes
		if err := validateRecord(&w, r); err != nil {
			return err
		}
	}
	if w.i != len(s) {
		return fmt.Errorf("%w: %d bytes after record %d of %d", ErrInvalidRecords, len(s)-w.i, count-1, count)
	}
	return nil
}

// validateRecord checks record r, which is w.b, from w.i (the byte after
// its attributes) on, leaving w.i at its end. It runs once per produced
// record: the common case is inlined varint reads and compares.
func validateRecord(w *varintWalker, r uint32) error {
	w.varint() // timestamp delta
	if v := w.varint(); w.bad || v != int64(r) {
		return invalidRecord(r, "offset delta", v, !w.bad)
	}
	if v := w.skipBytes(); w.bad {
		return invalidRecord(r, "key length", v, w.short)
	}
	if v := w.skipBytes(); w.bad {
		return invalidRecord(r, "value length", v, w.short)
	}
	headers := w.varint()
	if w.bad || headers < 0 || headers > int64(len(w.b)-w.i) {
		return invalidRecord(r, "header count", headers, !w.bad)
	}
	for range headers {
		if v := w.skipBytes(); w.bad || v < 0 {
			return invalidRecord(r, "header key length", v, w.short || v < 0)
		}
		if v := w.skipBytes(); w.bad {
			return invalidRecord(r, "header value length", v, w.short)
		}
	}
	if w.i != len(w.b) {
		return fmt.Errorf("%w: record %d: %d bytes after its headers", ErrInvalidRecords, r, len(w.b)-w.i)
	}
	return nil
}

func invalidRecord(r uint32, field string, v int64, decoded bool) error {
	if !decoded {
		return fmt.Errorf("%w: record %d: %s runs past the record", ErrInvalidRecords, r, field)
	}
	return fmt.Errorf("%w: record %d: %s %d out of range", ErrInvalidRecords, r, field, v)
}

// varintWalker reads zig-zag varints from b at i, never past len(b); after
// a read that does not fit, bad is set and every read returns 0.
type varintWalker struct {
	b     []byte
	i     int
	bad   bool
	short bool // the last skipBytes decoded its length, which was out of range
}

// varint reads one varint, accepting exactly what encoding/binary.Varint
// (the record decoder) accepts: at most 10 bytes, no overflow. It calls
// nothing, so the walk costs a few nanoseconds a field.
func (w *varintWalker) varint() int64 {
	var u uint64
	for shift := uint(0); w.i < len(w.b); shift += 7 {
		c := w.b[w.i]
		w.i++
		if shift == 63 && c > 1 {
			break // overflows 64 bits
		}
		u |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return int64(u>>1) ^ -int64(u&1)
		}
	}
	w.bad = true
	return 0
}

// skipBytes reads a varint length (-1: null) and skips that many bytes;
// a length outside [-1, bytes left] sets bad and short.
func (w *varintWalker) skipBytes() int64 {
	n := w.varint()
	if w.bad {
		w.short = false
		return n
	}
	if n < -1 || n > int64(len(w.b)-w.i) {
		w.bad, w.short = true, true
		return n
	}
	w.i += int(max(n, 0))
	return n
}
