package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Record batch layout (little-endian). The same bytes travel on the wire and
// sit on disk; the broker only ever patches base_offset in place.
//
//	offset size field
//	     0    8 base_offset        assigned by the broker; not covered by the CRC
//	     8    4 batch_length       bytes after this field (total = 12 + batch_length)
//	    12    1 magic              BatchMagic
//	    13    4 crc32c             Castagnoli, over bytes [17, 12+batch_length)
//	    17    2 attributes         codec (bits 0-2), timestamp type (bit 3),
//	                               transactional (bit 4), control (bit 5)
//	    19    4 last_offset_delta  offset of the last record minus base_offset
//	    23    8 first_timestamp    unix milliseconds
//	    31    8 max_timestamp      unix milliseconds
//	    39    8 producer_id        -1 when not idempotent
//	    47    2 producer_epoch
//	    49    4 base_sequence
//	    53    4 record_count
//	    57    … records            possibly compressed as a whole (codec bits)
//
// These offsets and BatchMagic are persisted: never change them.
const (
	BatchMagic      = 1
	BatchHeaderSize = 57

	offBaseOffset      = 0
	offBatchLength     = 8
	offMagic           = 12
	offCRC             = 13
	offAttributes      = 17
	offLastOffsetDelta = 19
	offFirstTimestamp  = 23
	offMaxTimestamp    = 31
	offProducerID      = 39
	offProducerEpoch   = 47
	offBaseSequence    = 49
	offRecordCount     = 53

	// batchLengthOverhead is the number of header bytes batch_length does
	// not count (base_offset and batch_length itself).
	batchLengthOverhead = 12

	// MaxBatchSize bounds a single batch; larger lengths are corruption.
	MaxBatchSize = 64 << 20
)

// Codec is the compression of a batch's records section.
type Codec uint8

// Codecs (attribute bits 0-2); never change their numbers.
const (
	CodecNone   Codec = 0
	CodecLZ4    Codec = 1
	CodecZstd   Codec = 2
	CodecSnappy Codec = 3
)

// Attribute bits; never change them.
const (
	AttrCodecMask        uint16 = 0x7
	AttrLogAppendTime    uint16 = 1 << 3
	AttrTransactional    uint16 = 1 << 4
	AttrControl          uint16 = 1 << 5
	attrKnownMask        uint16 = AttrCodecMask | AttrLogAppendTime | AttrTransactional | AttrControl
	maxKnownCodec               = CodecSnappy
	defaultBatchCapacity        = 16 << 10
)

// Errors returned by batch parsing. ErrCorrupt marks data whose bytes are
// present but wrong (bad CRC, bad magic, impossible lengths); ErrShortBatch
// means the bytes end before the batch does (a torn tail or a partial read).
var (
	ErrCorrupt    = errors.New("proto: corrupt record batch")
	ErrShortBatch = errors.New("proto: short record batch")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRC32C returns the Castagnoli checksum of b.
func CRC32C(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// BatchHeader is the fixed part of a record batch.
type BatchHeader struct {
	BaseOffset      uint64
	BatchLength     uint32
	Magic           uint8
	CRC             uint32
	Attributes      uint16
	LastOffsetDelta uint32
	FirstTimestamp  int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	RecordCount     uint32
}

// Size is the batch's total size in bytes, header included.
func (h *BatchHeader) Size() int { return int(h.BatchLength) + batchLengthOverhead }

// LastOffset is the offset of the batch's last record.
func (h *BatchHeader) LastOffset() uint64 { return h.BaseOffset + uint64(h.LastOffsetDelta) }

// NextOffset is the offset that follows the batch.
func (h *BatchHeader) NextOffset() uint64 { return h.LastOffset() + 1 }

// Codec is the compression codec of the records section.
func (h *BatchHeader) Codec() Codec { return Codec(h.Attributes & AttrCodecMask) }

// ParseBatchHeader decodes the fixed header at the start of b without
// checking the CRC. It fails with ErrShortBatch if b is shorter than the
// header and with ErrCorrupt if the magic or the length is impossible. It
// does not require the whole batch to be present.
func ParseBatchHeader(b []byte) (BatchHeader, error) {
	var h BatchHeader
	if len(b) < BatchHeaderSize {
		return h, ErrShortBatch
	}
	h.BaseOffset = binary.LittleEndian.Uint64(b[offBaseOffset:])
	h.BatchLength = binary.LittleEndian.Uint32(b[offBatchLength:])
	h.Magic = b[offMagic]
	h.CRC = binary.LittleEndian.Uint32(b[offCRC:])
	h.Attributes = binary.LittleEndian.Uint16(b[offAttributes:])
	h.LastOffsetDelta = binary.LittleEndian.Uint32(b[offLastOffsetDelta:])
	h.FirstTimestamp = int64(binary.LittleEndian.Uint64(b[offFirstTimestamp:]))
	h.MaxTimestamp = int64(binary.LittleEndian.Uint64(b[offMaxTimestamp:]))
	h.ProducerID = int64(binary.LittleEndian.Uint64(b[offProducerID:]))
	h.ProducerEpoch = int16(binary.LittleEndian.Uint16(b[offProducerEpoch:]))
	h.BaseSequence = int32(binary.LittleEndian.Uint32(b[offBaseSequence:]))
	h.RecordCount = binary.LittleEndian.Uint32(b[offRecordCount:])
	switch {
	case h.Magic != BatchMagic:
		return h, fmt.Errorf("%w: magic %d", ErrCorrupt, h.Magic)
	case h.BatchLength < BatchHeaderSize-batchLengthOverhead || h.BatchLength > MaxBatchSize:
		return h, fmt.Errorf("%w: batch_length %d", ErrCorrupt, h.BatchLength)
	case h.RecordCount == 0 || h.LastOffsetDelta != h.RecordCount-1:
		return h, fmt.Errorf("%w: record_count %d last_offset_delta %d", ErrCorrupt, h.RecordCount, h.LastOffsetDelta)
	case h.Attributes&^attrKnownMask != 0 || h.Codec() > maxKnownCodec:
		return h, fmt.Errorf("%w: attributes %#x", ErrCorrupt, h.Attributes)
	}
	return h, nil
}

// ValidateBatch checks the batch at the start of b (header, length and CRC)
// and returns its header and the bytes that follow it. It does not decode
// the records and does not allocate on success.
func ValidateBatch(b []byte) (h BatchHeader, rest []byte, err error) {
	h, err = ParseBatchHeader(b)
	if err != nil {
		return h, b, err
	}
	size := h.Size()
	if len(b) < size {
		return h, b, ErrShortBatch
	}
	if CRC32C(b[offAttributes:size]) != h.CRC {
		return h, b, fmt.Errorf("%w: crc mismatch", ErrCorrupt)
	}
	return h, b[size:], nil
}

// SetBaseOffset patches base_offset in place. The CRC does not cover it.
func SetBaseOffset(b []byte, off uint64) {
	binary.LittleEndian.PutUint64(b[offBaseOffset:], off)
}

// BatchRecords returns the records section of a whole batch (still
// compressed if the codec says so).
func BatchRecords(b []byte, h *BatchHeader) []byte { return b[BatchHeaderSize:h.Size()] }
