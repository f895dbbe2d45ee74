package proto

import (
	"encoding/binary"
	"fmt"
)

// Record layout inside a batch's records section, Kafka's Record of
// RecordBatch v2 (and unchanged from batch version 1); varints are zig-zag
// signed, as encoding/binary.AppendVarint writes them:
//
//	varint length          bytes of the record after this field
//	u8     attributes      unused, 0
//	varint timestamp_delta record timestamp minus the batch base_timestamp
//	varint offset_delta    record offset minus the batch base_offset
//	varint key_length      -1 for a null key
//	       key
//	varint value_length    -1 for a null value
//	       value
//	varint header_count
//	       headers         header_count × (varint key_length (never -1), key,
//	                                      varint value_length, value)
//
// Producers write offset deltas 0, 1, 2… (ValidateRecords requires it).
// Never change this layout; a new layout needs a new BatchMagic.

// Header is one record header.
type Header struct {
	Key   string
	Value []byte
}

// Record is one decoded record. Key, Value and RawHeaders alias the batch
// bytes they were decoded from.
type Record struct {
	Offset      uint64
	Timestamp   int64
	Key         []byte
	Value       []byte
	HeaderCount int
	RawHeaders  []byte
}

// Headers appends the record's headers to dst. Header values alias the
// batch; keys are copied into strings.
func (r *Record) Headers(dst []Header) []Header {
	d := Decoder{b: r.RawHeaders}
	for i := 0; i < r.HeaderCount && d.err == nil; i++ {
		k := d.varBytes()
		v := d.varBytes()
		dst = append(dst, Header{Key: string(k), Value: v})
	}
	return dst
}

// BatchBuilder builds one uncompressed record batch by appending records to
// a caller-owned buffer. Reuse it with Reset; it does not allocate once its
// buffer has grown to the batch size.
type BatchBuilder struct {
	buf       []byte
	count     uint32
	firstTS   int64
	maxTS     int64
	producer  int64
	epoch     int16
	sequence  int32
	attrs     uint16
	recordLen []byte
}

// Reset starts a new batch in dst[:0] (dst may be nil).
func (b *BatchBuilder) Reset(dst []byte) {
	if cap(dst) == 0 {
		dst = make([]byte, 0, defaultBatchCapacity)
	}
	b.buf = append(dst[:0], make([]byte, BatchHeaderSize)...)
	b.count, b.firstTS, b.maxTS = 0, 0, 0
	b.producer, b.epoch, b.sequence, b.attrs = -1, -1, -1, 0
}

// SetProducer records the idempotent producer id, epoch and base sequence.
func (b *BatchBuilder) SetProducer(id int64, epoch int16, baseSequence int32) {
	b.producer, b.epoch, b.sequence = id, epoch, baseSequence
}

// Count is the number of records appended since Reset.
func (b *BatchBuilder) Count() int { return int(b.count) }

// Size is the number of bytes the batch holds so far.
func (b *BatchBuilder) Size() int { return len(b.buf) }

// Append adds one record. A nil key or value is encoded as null.
func (b *BatchBuilder) Append(timestamp int64, key, value []byte, headers []Header) {
	if b.buf == nil {
		b.Reset(nil)
	}
	if b.count == 0 {
		b.firstTS, b.maxTS = timestamp, timestamp
	}
	if timestamp > b.maxTS {
		b.maxTS = timestamp
	}
	bodyLen := 1 + varintLen(timestamp-b.firstTS) + varintLen(int64(b.count)) +
		bytesLen(key) + bytesLen(value) + varintLen(int64(len(headers)))
	for i := range headers {
		bodyLen += varintLen(int64(len(headers[i].Key))) + len(headers[i].Key) + bytesLen(headers[i].Value)
	}
	buf := binary.AppendVarint(b.buf, int64(bodyLen))
	buf = append(buf, 0)
	buf = binary.AppendVarint(buf, timestamp-b.firstTS)
	buf = binary.AppendVarint(buf, int64(b.count))
	buf = appendVarBytes(buf, key)
	buf = appendVarBytes(buf, value)
	buf = binary.AppendVarint(buf, int64(len(headers)))
	for i := range headers {
		buf = binary.AppendVarint(buf, int64(len(headers[i].Key)))
		buf = append(buf, headers[i].Key...)
		buf = appendVarBytes(buf, headers[i].Value)
	}
	b.buf = buf
	b.count++
}

// Finish writes the header and CRC and returns the batch, which aliases the
// builder's buffer until the next Reset. It panics on an empty batch.
func (b *BatchBuilder) Finish() []byte {
	if b.count == 0 {
		panic("BUG: proto: Finish on an empty batch")
	}
	return FinishBatch(b.buf, b.attrs, b.count, b.firstTS, b.maxTS, b.producer, b.epoch, b.sequence)
}

// FinishBatch fills in the header of batch (whose records section, possibly
// compressed, already follows the BatchHeaderSize header bytes) and its CRC.
// base_offset is 0 and partition_leader_epoch NoLeaderEpoch, as a producer
// sends them; the broker sets both.
func FinishBatch(batch []byte, attrs uint16, count uint32, firstTS, maxTS, producer int64, epoch int16, seq int32) []byte {
	be := binary.BigEndian
	be.PutUint64(batch[offBaseOffset:], 0)
	be.PutUint32(batch[offBatchLength:], uint32(len(batch)-batchLengthOverhead))
	SetLeaderEpoch(batch, NoLeaderEpoch)
	batch[offMagic] = BatchMagic
	be.PutUint16(batch[offAttributes:], attrs)
	be.PutUint32(batch[offLastOffsetDelta:], count-1)
	be.PutUint64(batch[offFirstTimestamp:], uint64(firstTS))
	be.PutUint64(batch[offMaxTimestamp:], uint64(maxTS))
	be.PutUint64(batch[offProducerID:], uint64(producer))
	be.PutUint16(batch[offProducerEpoch:], uint16(epoch))
	be.PutUint32(batch[offBaseSequence:], uint32(seq))
	be.PutUint32(batch[offRecordCount:], count)
	be.PutUint32(batch[offCRC:], CRC32C(batch[offAttributes:]))
	return batch
}

// RecordIter walks the records of one uncompressed, validated batch without
// allocating.
type RecordIter struct {
	h    BatchHeader
	d    Decoder
	left uint32
	rec  Record
}

// NewRecordIter starts iterating the records of batch (one whole batch,
// already validated with ValidateBatch). Compressed batches must be
// decompressed first (see Decompress).
func NewRecordIter(batch []byte) (RecordIter, error) {
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return RecordIter{}, err
	}
	if len(batch) < h.Size() {
		return RecordIter{}, ErrShortBatch
	}
	if h.Codec() != CodecNone {
		return RecordIter{}, fmt.Errorf("proto: records are compressed with codec %d", h.Codec())
	}
	return RecordIter{h: h, d: Decoder{b: BatchRecords(batch, &h)}, left: h.RecordCount}, nil
}

// NewRecordIterRecords iterates an already decompressed records section
// belonging to the batch with header h.
func NewRecordIterRecords(h BatchHeader, records []byte) RecordIter {
	return RecordIter{h: h, d: Decoder{b: records}, left: h.RecordCount}
}

// Next decodes the next record; it returns false at the end or on error.
func (it *RecordIter) Next() bool {
	if it.left == 0 || it.d.err != nil {
		return false
	}
	n := it.d.varint()
	if it.d.err != nil {
		return false
	}
	if n < 1 || n > int64(len(it.d.b)) {
		it.d.fail(fmt.Errorf("%w: record length %d", ErrCorrupt, n))
		return false
	}
	rd := Decoder{b: it.d.b[:n]}
	it.d.b = it.d.b[n:]
	rd.u8()
	tsDelta := rd.varint()
	offDelta := rd.varint()
	it.rec.Key = rd.varBytes()
	it.rec.Value = rd.varBytes()
	hc := rd.varint()
	if rd.err == nil && (hc < 0 || hc > int64(len(rd.b))) {
		rd.fail(fmt.Errorf("%w: header count %d", ErrCorrupt, hc))
	}
	it.rec.RawHeaders = rd.b
	if rd.err != nil || offDelta < 0 || offDelta > int64(it.h.LastOffsetDelta) {
		it.d.fail(fmt.Errorf("%w: bad record", ErrCorrupt))
		return false
	}
	it.rec.Offset = it.h.BaseOffset + uint64(offDelta)
	it.rec.Timestamp = it.h.FirstTimestamp + tsDelta
	it.rec.HeaderCount = int(hc)
	it.left--
	return true
}

// Record returns the current record; it is overwritten by Next.
func (it *RecordIter) Record() *Record { return &it.rec }

// Err is the first decoding error, or nil. A batch whose records end before
// record_count is reached reports ErrCorrupt.
func (it *RecordIter) Err() error {
	if it.d.err == nil && it.left != 0 && len(it.d.b) == 0 {
		return fmt.Errorf("%w: %d records missing", ErrCorrupt, it.left)
	}
	return it.d.err
}

func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

func bytesLen(b []byte) int {
	if b == nil {
		return varintLen(-1)
	}
	return varintLen(int64(len(b))) + len(b)
}

func appendVarBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}
