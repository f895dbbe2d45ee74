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
// layout) without decoding them into anything. It runs for every produced
// record, so its varints are read inline (uv2) when they take one or two
// bytes, which every length below 8 KiB does, and through a call to
// uvarintSlow otherwise.
func validateSection(s []byte, count uint32) error {
	i := 0
	for r := uint32(0); r < count; r++ {
		u, k := uv2(s, i)
		if k < 0 {
			if u, k = uvarintSlow(s, i); k < 0 {
				return invalidRecord(r, "length", 0, false)
			}
		}
		n := zigzag(u)
		if n < 2 || n > int64(len(s)-k) { // attributes and at least one field
			return invalidRecord(r, "length", n, true)
		}
		i = k + int(n)
		if err := validateRecord(s[:i], k+1, r); err != nil { // k: attributes
			return err
		}
	}
	if i != len(s) {
		return fmt.Errorf("%w: %d bytes after record %d of %d", ErrInvalidRecords, len(s)-i, count-1, count)
	}
	return nil
}

// validateRecord checks the fields of record r, which ends at len(b), from
// position j (after its attributes) on.
func validateRecord(b []byte, j int, r uint32) error {
	_, k := uv2(b, j) // timestamp delta
	if k < 0 {
		if _, k = uvarintSlow(b, j); k < 0 {
			return invalidRecord(r, "timestamp delta", 0, false)
		}
	}
	u, j := uv2(b, k)
	if j < 0 {
		if u, j = uvarintSlow(b, k); j < 0 {
			return invalidRecord(r, "offset delta", 0, false)
		}
	}
	if v := zigzag(u); v != int64(r) {
		return invalidRecord(r, "offset delta", v, true)
	}
	for _, field := range [...]string{"key", "value"} {
		u, k = uv2(b, j)
		if k < 0 {
			if u, k = uvarintSlow(b, j); k < 0 {
				return invalidRecord(r, field, 0, false)
			}
		}
		n := zigzag(u)
		if n < -1 || n > int64(len(b)-k) {
			return invalidRecord(r, field, badLength, true)
		}
		j = k + int(max(n, 0))
	}
	u, k = uv2(b, j)
	if k < 0 {
		if u, k = uvarintSlow(b, j); k < 0 {
			return invalidRecord(r, "header count", 0, false)
		}
	}
	j = k
	if headers := zigzag(u); headers != 0 {
		return validateHeaders(b, j, r, headers)
	}
	if j != len(b) {
		return fmt.Errorf("%w: record %d: %d bytes after its headers", ErrInvalidRecords, r, len(b)-j)
	}
	return nil
}

// validateHeaders checks the headers of record r from position j on: keys
// not null, lengths inside the record, nothing after them.
func validateHeaders(b []byte, j int, r uint32, headers int64) error {
	if headers < 0 || headers > int64(len(b)-j) {
		return invalidRecord(r, "header count", headers, true)
	}
	for range headers {
		if j = skipVarBytes(b, j, 0); j < 0 {
			return invalidRecord(r, "header key", int64(j), j == badLength)
		}
		if j = skipVarBytes(b, j, -1); j < 0 {
			return invalidRecord(r, "header value", int64(j), j == badLength)
		}
	}
	if j != len(b) {
		return fmt.Errorf("%w: record %d: %d bytes after its headers", ErrInvalidRecords, r, len(b)-j)
	}
	return nil
}

// Negative results of skipVarBytes.
const (
	badVarint = -1 // the length varint runs past the record
	badLength = -2 // the length is out of range
)

// skipVarBytes skips the varint length at b[j:] (at least minLen; -1 is
// null) and the bytes it counts, returning the position after them, or
// badVarint or badLength.
func skipVarBytes(b []byte, j int, minLen int64) int {
	u, k := uv2(b, j)
	if k < 0 {
		if u, k = uvarintSlow(b, j); k < 0 {
			return badVarint
		}
	}
	n := zigzag(u)
	if n < minLen || n > int64(len(b)-k) {
		return badLength
	}
	return k + int(max(n, 0))
}

// uv2 reads the unsigned varint at b[j:] when it takes one or two bytes,
// and returns it with the position after it; otherwise it returns j = -1
// and the caller calls uvarintSlow. It is small enough to inline.
func uv2(b []byte, j int) (uint64, int) {
	if j < len(b) {
		c := b[j]
		if c < 0x80 {
			return uint64(c), j + 1
		}
		if j+1 < len(b) && b[j+1] < 0x80 {
			return uint64(c&0x7f) | uint64(b[j+1])<<7, j + 2
		}
	}
	return 0, -1
}

func invalidRecord(r uint32, field string, v int64, decoded bool) error {
	switch {
	case !decoded:
		return fmt.Errorf("%w: record %d: %s runs past the record", ErrInvalidRecords, r, field)
	case v == badLength:
		return fmt.Errorf("%w: record %d: %s length out of range", ErrInvalidRecords, r, field)
	}
	return fmt.Errorf("%w: record %d: %s %d out of range", ErrInvalidRecords, r, field, v)
}

func zigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// uvarintSlow reads the unsigned varint at b[j:] as encoding/binary.Uvarint
// does (at most 10 bytes, no overflow: what the record decoder accepts) and
// returns it with the position after it, or j = -1 when it does not fit.
func uvarintSlow(b []byte, j int) (uint64, int) {
	if j < 0 || j >= len(b) {
		return 0, -1
	}
	u, n := binary.Uvarint(b[j:])
	if n <= 0 {
		return 0, -1
	}
	return u, j + n
}
