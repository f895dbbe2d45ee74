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
// record, so its varints are read inline: a one-byte varint costs a
// compare, longer ones a call to uvarintSlow.
func validateSection(s []byte, count uint32) error {
	i := 0
	for r := uint32(0); r < count; r++ {
		var u uint64
		if i < len(s) && s[i] < 0x80 {
			u, i = uint64(s[i]), i+1
		} else if u, i = uvarintSlow(s, i); i < 0 {
			return invalidRecord(r, "length", 0, false)
		}
		n := zigzag(u)
		if n < 2 || n > int64(len(s)-i) { // attributes and at least one field
			return invalidRecord(r, "length", n, true)
		}
		end := i + int(n)
		if err := validateRecord(s[i+1:end], r); err != nil { // i: attributes
			return err
		}
		i = end
	}
	if i != len(s) {
		return fmt.Errorf("%w: %d bytes after record %d of %d", ErrInvalidRecords, len(s)-i, count-1, count)
	}
	return nil
}

// validateRecord checks the fields of record r after its attributes, b.
func validateRecord(b []byte, r uint32) error {
	var u uint64
	j := 0
	if j < len(b) && b[j] < 0x80 { // timestamp delta
		j++
	} else if _, j = uvarintSlow(b, j); j < 0 {
		return invalidRecord(r, "timestamp delta", 0, false)
	}
	if j < len(b) && b[j] < 0x80 {
		u, j = uint64(b[j]), j+1
	} else if u, j = uvarintSlow(b, j); j < 0 {
		return invalidRecord(r, "offset delta", 0, false)
	}
	if v := zigzag(u); v != int64(r) {
		return invalidRecord(r, "offset delta", v, true)
	}
	if j = skipVarBytes(b, j, -1); j < 0 {
		return invalidRecord(r, "key", int64(j), j == badLength)
	}
	if j = skipVarBytes(b, j, -1); j < 0 {
		return invalidRecord(r, "value", int64(j), j == badLength)
	}
	if j < len(b) && b[j] < 0x80 {
		u, j = uint64(b[j]), j+1
	} else if u, j = uvarintSlow(b, j); j < 0 {
		return invalidRecord(r, "header count", 0, false)
	}
	headers := zigzag(u)
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
	var u uint64
	if j < len(b) && b[j] < 0x80 {
		u, j = uint64(b[j]), j+1
	} else if u, j = uvarintSlow(b, j); j < 0 {
		return badVarint
	}
	n := zigzag(u)
	if n < minLen || n > int64(len(b)-j) {
		return badLength
	}
	return j + int(max(n, 0))
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

// uvarintSlow reads the unsigned varint at b[j:], which is not a one-byte
// one, as encoding/binary.Uvarint does (at most 10 bytes, no overflow: what
// the record decoder accepts) and returns it with the position after it,
// or j = -1 when it does not fit. Two-byte varints (lengths up to 8 KiB)
// take a short path.
func uvarintSlow(b []byte, j int) (uint64, int) {
	if j < 0 || j >= len(b) {
		return 0, -1
	}
	if j+1 < len(b) && b[j+1] < 0x80 {
		return uint64(b[j]&0x7f) | uint64(b[j+1])<<7, j + 2
	}
	u, n := binary.Uvarint(b[j:])
	if n <= 0 {
		return 0, -1
	}
	return u, j + n
}
