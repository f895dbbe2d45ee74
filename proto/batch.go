package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Record batch layout: version 2, Kafka's RecordBatch v2 field for field
// and byte for byte (big-endian, as every Kafka field). The same bytes
// travel on the wire and sit on disk; the broker only ever patches
// base_offset and partition_leader_epoch in place, which the CRC does not
// cover.
//
//	offset size field
//	     0    8 base_offset            i64, assigned by the broker
//	     8    4 batch_length           i32, bytes after this field (total = 12 + batch_length)
//	    12    4 partition_leader_epoch i32, stamped by the broker (producers send -1)
//	    16    1 magic                  BatchMagic (2)
//	    17    4 crc                    u32 CRC-32C (Castagnoli) over bytes [21, 12+batch_length)
//	    21    2 attributes             i16: codec (bits 0-2), timestamp type (bit 3),
//	                                   transactional (bit 4), control (bit 5)
//	    23    4 last_offset_delta      i32, offset of the last record minus base_offset
//	    27    8 base_timestamp         i64 unix ms (FirstTimestamp)
//	    35    8 max_timestamp          i64 unix ms
//	    43    8 producer_id            i64, -1 when not idempotent
//	    51    2 producer_epoch         i16
//	    53    4 base_sequence          i32
//	    57    4 record_count           i32
//	    61    … records                possibly compressed as a whole (codec bits)
//
// History: version 1 (magic 1 at offset 12) was the same design with a
// little-endian 57-byte header, no partition_leader_epoch and codec numbers
// of its own; its layout is in batch_v1.go, which converts it. These
// offsets and BatchMagic are persisted and shared with Kafka: never change
// them.
const (
	BatchMagic      = 2
	BatchHeaderSize = 61

	offBaseOffset      = 0
	offBatchLength     = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offFirstTimestamp  = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offRecordCount     = 57

	// batchLengthOverhead is the number of header bytes batch_length does
	// not count (base_offset and batch_length itself).
	batchLengthOverhead = 12

	// MaxBatchSize bounds a single batch; larger lengths are corruption.
	MaxBatchSize = 64 << 20

	// NoLeaderEpoch is the partition_leader_epoch a producer sends (Kafka's
	// NO_PARTITION_LEADER_EPOCH); the broker overwrites it.
	NoLeaderEpoch int32 = -1
)

// Codec is the compression of a batch's records section.
type Codec uint8

// Codecs (attribute bits 0-2), Kafka's numbers; never change them.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

// Attribute bits; never change them.
const (
	AttrCodecMask        uint16 = 0x7
	AttrLogAppendTime    uint16 = 1 << 3
	AttrTransactional    uint16 = 1 << 4
	AttrControl          uint16 = 1 << 5
	attrKnownMask        uint16 = AttrCodecMask | AttrLogAppendTime | AttrTransactional | AttrControl
	maxKnownCodec               = CodecZstd
	defaultBatchCapacity        = 16 << 10
)

// Errors returned by batch parsing. ErrCorrupt marks data whose bytes are
// present but wrong (bad CRC, bad magic, impossible lengths); ErrShortBatch
// means the bytes end before the batch does (a torn tail or a partial read).
// ErrBatchVersion (which also matches ErrCorrupt) marks a version-1 batch,
// which producers may no longer send. ErrInvalidRecords marks a batch whose
// header and CRC are valid but whose records do not match them (see
// ValidateRecords).
var (
	ErrCorrupt        = errors.New("proto: corrupt record batch")
	ErrShortBatch     = errors.New("proto: short record batch")
	ErrBatchVersion   = errors.New("proto: record batch version 1 is no longer accepted (version 2 is Kafka's RecordBatch v2); upgrade the producer")
	ErrInvalidRecords = errors.New("proto: records do not match their batch header")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRC32C returns the Castagnoli checksum of b.
func CRC32C(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// BatchHeader is the fixed part of a record batch.
type BatchHeader struct {
	BaseOffset      uint64
	BatchLength     uint32
	LeaderEpoch     int32 // partition_leader_epoch
	Magic           uint8
	CRC             uint32
	Attributes      uint16
	LastOffsetDelta uint32
	FirstTimestamp  int64 // base_timestamp
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
	be := binary.BigEndian
	h.BaseOffset = be.Uint64(b[offBaseOffset:])
	h.BatchLength = be.Uint32(b[offBatchLength:])
	h.LeaderEpoch = int32(be.Uint32(b[offLeaderEpoch:]))
	h.Magic = b[offMagic]
	h.CRC = be.Uint32(b[offCRC:])
	h.Attributes = be.Uint16(b[offAttributes:])
	h.LastOffsetDelta = be.Uint32(b[offLastOffsetDelta:])
	h.FirstTimestamp = int64(be.Uint64(b[offFirstTimestamp:]))
	h.MaxTimestamp = int64(be.Uint64(b[offMaxTimestamp:]))
	h.ProducerID = int64(be.Uint64(b[offProducerID:]))
	h.ProducerEpoch = int16(be.Uint16(b[offProducerEpoch:]))
	h.BaseSequence = int32(be.Uint32(b[offBaseSequence:]))
	h.RecordCount = be.Uint32(b[offRecordCount:])
	switch {
	case h.Magic != BatchMagic && looksLikeV1(b):
		return h, fmt.Errorf("%w: %w", ErrCorrupt, ErrBatchVersion)
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
	binary.BigEndian.PutUint64(b[offBaseOffset:], off)
}

// SetLeaderEpoch patches partition_leader_epoch in place. The CRC does not
// cover it.
func SetLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(epoch))
}

// BatchRecords returns the records section of a whole batch (still
// compressed if the codec says so).
func BatchRecords(b []byte, h *BatchHeader) []byte { return b[BatchHeaderSize:h.Size()] }
