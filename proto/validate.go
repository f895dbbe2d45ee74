package proto

import (
	"encoding/binary"
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
	i := 0
	for r := uint32(0); r < count; r++ {
		n, next, ok := readVarint(s, i)
		if !ok || n < 1 || n > int64(len(s)-next) {
			return invalidRecord(r, "length", n, ok)
		}
		end := next + int(n)
		if err := validateRecord(s[:end], next+1, r); err != nil {
			return err
		}
		i = end
	}
	if i != len(s) {
		return fmt.Errorf("%w: %d bytes after record %d of %d", ErrInvalidRecords, len(s)-i, count-1, count)
	}
	return nil
}

// validateRecord checks record r, which ends at len(rec), from the byte
// after its attributes at j on.
func validateRecord(rec []byte, j int, r uint32) error {
	var v int64
	var ok bool
	if _, j, ok = readVarint(rec, j); !ok {
		return invalidRecord(r, "timestamp delta", 0, ok)
	}
	if v, j, ok = readVarint(rec, j); !ok || v != int64(r) {
		return invalidRecord(r, "offset delta", v, ok)
	}
	for _, field := range [2]string{"key length", "value length"} {
		if v, j, ok = readVarint(rec, j); !ok || v < -1 || v > int64(len(rec)-j) {
			return invalidRecord(r, field, v, ok)
		}
		j += int(max(v, 0))
	}
	headers, j, ok := readVarint(rec, j)
	if !ok || headers < 0 || headers > int64(len(rec)-j) {
		return invalidRecord(r, "header count", headers, ok)
	}
	for range headers {
		if v, j, ok = readVarint(rec, j); !ok || v < 0 || v > int64(len(rec)-j) {
			return invalidRecord(r, "header key length", v, ok)
		}
		j += int(v)
		if v, j, ok = readVarint(rec, j); !ok || v < -1 || v > int64(len(rec)-j) {
			return invalidRecord(r, "header value length", v, ok)
		}
		j += int(max(v, 0))
	}
	if j != len(rec) {
		return fmt.Errorf("%w: record %d: %d bytes after its headers", ErrInvalidRecords, r, len(rec)-j)
	}
	return nil
}

func invalidRecord(r uint32, field string, v int64, ok bool) error {
	if !ok {
		return fmt.Errorf("%w: record %d: %s runs past the record", ErrInvalidRecords, r, field)
	}
	return fmt.Errorf("%w: record %d: %s %d out of range", ErrInvalidRecords, r, field, v)
}

// readVarint reads the zig-zag varint at b[i:], never past len(b); ok is
// false when it does not fit. One-byte varints take the fast path.
func readVarint(b []byte, i int) (v int64, next int, ok bool) {
	if i >= len(b) {
		return 0, i, false
	}
	if c := b[i]; c < 0x80 {
		return int64(c>>1) ^ -int64(c&1), i + 1, true
	}
	v, n := binary.Varint(b[i:])
	if n <= 0 {
		return 0, i, false
	}
	return v, i + n, true
}
