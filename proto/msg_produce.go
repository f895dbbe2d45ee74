package proto

// Produce: the data path in. Names and records alias the request frame.

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Acks values of ProduceRequest.Acks.
const (
	AcksNone   int8 = 0  // no response at all
	AcksLeader int8 = 1  // after the local append
	AcksAll    int8 = -1 // after every in-sync replica has it
)

// ProduceRequest appends record batches to partitions.
type ProduceRequest struct {
	Acks      int8
	TimeoutMs uint32
	Topics    []ProduceTopic
}

// ProduceTopic is one topic of a ProduceRequest.
type ProduceTopic struct {
	Name       []byte
	Partitions []ProducePartition
}

// ProducePartition carries one or more whole record batches, back to back.
type ProducePartition struct {
	Partition uint32
	Records   []byte
}

// ProduceResponse reports the outcome per topic and partition.
type ProduceResponse struct {
	Topics []ProduceTopicResponse
}

// ProduceTopicResponse is one topic of a ProduceResponse.
type ProduceTopicResponse struct {
	Name       []byte
	Partitions []ProducePartitionResponse
}

// ProducePartitionResponse is the offset given to the first record of the
// partition's batches, and the log end after the append.
type ProducePartitionResponse struct {
	Partition  uint32
	Error      ErrorCode
	BaseOffset uint64
	LogEnd     uint64
}

const (
	minTopicSize                 = 2 + 4 // name, partition count
	minProducePartitionSize      = 4 + 4
	producePartitionResponseSize = 4 + 2 + 8 + 8
)

// APIKey implements Request.
func (*ProduceRequest) APIKey() APIKey { return APIProduce }

// AppendTo implements Message.
func (r *ProduceRequest) AppendTo(dst []byte) []byte {
	dst, _, _ = r.appendSplit(dst, -1, nil)
	return dst
}

// Gap is a run of bytes left out of an encoding: Bytes belong before byte
// At of the buffer the encoding was appended to.
type Gap struct {
	At    int
	Bytes []byte
}

// AppendProduceRequestSplit is AppendRequest for a produce request, except
// that each partition's Records of at least minGap bytes is left out of
// dst (its length prefix stays) and appended to gaps instead, in frame
// order: the frame is dst[len(dst):] as returned with every gap's Bytes
// inserted at its At, and its length field counts them. A writer sends
// such a frame with one vectored write, without copying the batches.
func AppendProduceRequestSplit(dst []byte, correlationID uint32, r *ProduceRequest, minGap int, gaps []Gap) ([]byte, []Gap) {
	start := len(dst)
	dst = AppendRequestHeader(dst, RequestHeader{API: APIProduce, CorrelationID: correlationID}, 0)
	dst, gaps, left := r.appendSplit(dst, minGap, gaps)
	if n := uint64(len(dst)-start-FrameLengthSize) + uint64(left); n > math.MaxUint32 {
		panic(fmt.Sprintf("BUG: proto: produce frame of %d bytes", n))
	} else {
		binary.LittleEndian.PutUint32(dst[start:], uint32(n))
	}
	return dst, gaps
}

// appendSplit appends r's body, leaving out Records of at least minGap
// bytes (minGap < 0: none) as gaps; left is the bytes left out.
func (r *ProduceRequest) appendSplit(dst []byte, minGap int, gaps []Gap) (_ []byte, _ []Gap, left int) {
	dst = appendI8(dst, r.Acks)
	dst = appendU32(dst, r.TimeoutMs)
	dst = appendArrayLen(dst, len(r.Topics))
	for i := range r.Topics {
		t := &r.Topics[i]
		dst = appendBytes16(dst, t.Name)
		dst = appendArrayLen(dst, len(t.Partitions))
		for _, p := range t.Partitions {
			dst = appendU32(dst, p.Partition)
			if minGap < 0 || len(p.Records) < minGap || len(p.Records) == 0 {
				dst = appendBytes32(dst, p.Records)
				continue
			}
			dst = appendU32(dst, checkedU32(len(p.Records)))
			gaps = append(gaps, Gap{At: len(dst), Bytes: p.Records})
			left += len(p.Records)
		}
	}
	return dst, gaps, left
}

// Decode implements Message. It does not allocate once r's slices have
// grown to the request's shape.
func (r *ProduceRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Acks = d.I8()
	r.TimeoutMs = d.U32()
	r.Topics = grow(r.Topics, d.ArrayLen(minTopicSize))
	for i := range r.Topics {
		t := &r.Topics[i]
		t.Name = d.Bytes16()
		t.Partitions = grow(t.Partitions, d.ArrayLen(minProducePartitionSize))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			p.Partition = d.U32()
			p.Records = d.Bytes32()
		}
	}
	return d.End()
}

// AppendTo implements Message.
func (r *ProduceResponse) AppendTo(dst []byte) []byte {
	dst = appendArrayLen(dst, len(r.Topics))
	for i := range r.Topics {
		t := &r.Topics[i]
		dst = appendBytes16(dst, t.Name)
		dst = appendArrayLen(dst, len(t.Partitions))
		for _, p := range t.Partitions {
			dst = appendU32(dst, p.Partition)
			dst = appendU16(dst, uint16(p.Error))
			dst = appendU64(dst, p.BaseOffset)
			dst = appendU64(dst, p.LogEnd)
		}
	}
	return dst
}

// Decode implements Message.
func (r *ProduceResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Topics = grow(r.Topics, d.ArrayLen(minTopicSize))
	for i := range r.Topics {
		t := &r.Topics[i]
		t.Name = d.Bytes16()
		t.Partitions = grow(t.Partitions, d.ArrayLen(producePartitionResponseSize))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			p.Partition = d.U32()
			p.Error = ErrorCode(d.U16())
			p.BaseOffset = d.U64()
			p.LogEnd = d.U64()
		}
	}
	return d.End()
}
