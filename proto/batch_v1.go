package proto

import (
	"encoding/binary"
	"fmt"
)

// Version 1 of the record batch (ringmq before Kafka's layout), kept only
// to read data written before version 2 and convert it. Little-endian:
//
//	offset size field
//	     0    8 base_offset
//	     8    4 batch_length       bytes after this field (total = 12 + batch_length)
//	    12    1 magic              1
//	    13    4 crc32c             Castagnoli, over bytes [17, 12+batch_length)
//	    17    2 attributes         codec (bits 0-2: none 0, lz4 1, zstd 2,
//	                               snappy 3 as one raw block), then as version 2
//	    19    4 last_offset_delta
//	    23    8 first_timestamp
//	    31    8 max_timestamp
//	    39    8 producer_id
//	    47    2 producer_epoch
//	    49    4 base_sequence
//	    53    4 record_count
//	    57    … records            byte-identical to version 2's
//
// The records section, compressed or not, is the same in both versions;
// only the header and the codec numbers differ. Never change this layout.
const (
	BatchMagicV1      = 1
	BatchHeaderSizeV1 = 57

	v1OffMagic      = 12
	v1OffCRC        = 13
	v1OffAttributes = 17
)

// v1Codecs maps a version-1 codec number to its version-2 codec.
var v1Codecs = [...]Codec{0: CodecNone, 1: CodecLZ4, 2: CodecZstd, 3: CodecSnappy}

// looksLikeV1 reports whether b, which is not a version-2 batch, carries
// version 1's magic where version 1 has it: the batch of an old producer.
func looksLikeV1(b []byte) bool { return len(b) > v1OffMagic && b[v1OffMagic] == BatchMagicV1 }

// ParseBatchV1 decodes the version-1 batch at the start of b, checking its
// magic, lengths, attributes and CRC, and returns its header in version-2
// terms (Attributes carry the version-2 codec number, Magic is 1,
// LeaderEpoch is NoLeaderEpoch). Errors match ErrShortBatch or ErrCorrupt.
func ParseBatchV1(b []byte) (BatchHeader, error) {
	var h BatchHeader
	if len(b) < BatchHeaderSizeV1 {
		return h, ErrShortBatch
	}
	le := binary.LittleEndian
	h.BaseOffset = le.Uint64(b[0:])
	h.BatchLength = le.Uint32(b[8:])
	h.LeaderEpoch = NoLeaderEpoch
	h.Magic = b[v1OffMagic]
	h.CRC = le.Uint32(b[v1OffCRC:])
	attrs := le.Uint16(b[v1OffAttributes:])
	h.LastOffsetDelta = le.Uint32(b[19:])
	h.FirstTimestamp = int64(le.Uint64(b[23:]))
	h.MaxTimestamp = int64(le.Uint64(b[31:]))
	h.ProducerID = int64(le.Uint64(b[39:]))
	h.ProducerEpoch = int16(le.Uint16(b[47:]))
	h.BaseSequence = int32(le.Uint32(b[49:]))
	h.RecordCount = le.Uint32(b[53:])
	size := int(h.BatchLength) + batchLengthOverhead
	switch {
	case h.Magic != BatchMagicV1:
		return h, fmt.Errorf("%w: version-1 magic %d", ErrCorrupt, h.Magic)
	case h.BatchLength < BatchHeaderSizeV1-batchLengthOverhead || h.BatchLength > MaxBatchSize:
		return h, fmt.Errorf("%w: version-1 batch_length %d", ErrCorrupt, h.BatchLength)
	case h.RecordCount == 0 || h.LastOffsetDelta != h.RecordCount-1:
		return h, fmt.Errorf("%w: version-1 record_count %d last_offset_delta %d", ErrCorrupt, h.RecordCount, h.LastOffsetDelta)
	case attrs&^attrKnownMask != 0 || int(attrs&AttrCodecMask) >= len(v1Codecs):
		return h, fmt.Errorf("%w: version-1 attributes %#x", ErrCorrupt, attrs)
	case len(b) < size:
		return h, ErrShortBatch
	case CRC32C(b[v1OffAttributes:size]) != h.CRC:
		return h, fmt.Errorf("%w: version-1 crc mismatch", ErrCorrupt)
	}
	h.Attributes = attrs&^AttrCodecMask | uint16(v1Codecs[attrs&AttrCodecMask])
	return h, nil
}

// ConvertBatchV1 appends to dst the version-2 form of the version-1 batch
// at the start of src (checked with ParseBatchV1) and returns the extended
// dst and the number of bytes of src the batch took. The records section is
// copied unchanged; the header is rewritten in version 2's layout with the
// version-2 codec number, partition_leader_epoch set to epoch and a new
// CRC. The result is BatchHeaderSize-BatchHeaderSizeV1 bytes longer.
func ConvertBatchV1(dst, src []byte, epoch int32) ([]byte, int, error) {
	h, err := ParseBatchV1(src)
	if err != nil {
		return dst, 0, err
	}
	size := int(h.BatchLength) + batchLengthOverhead
	start := len(dst)
	dst = growLen(dst, BatchHeaderSize)
	dst = append(dst, src[BatchHeaderSizeV1:size]...)
	out := FinishBatch(dst[start:], h.Attributes, h.RecordCount, h.FirstTimestamp, h.MaxTimestamp,
		h.ProducerID, h.ProducerEpoch, h.BaseSequence)
	SetBaseOffset(out, h.BaseOffset)
	SetLeaderEpoch(out, epoch)
	return dst, size, nil
}
