package proto

import "math"

// ListOffsets, OffsetCommit and OffsetFetch: offsets by time and consumer
// group positions. Names and metadata alias the frame.

// Special ListOffsetsPartition.Timestamp values.
const (
	TimestampEarliest int64 = -2 // the log start
	TimestampLatest   int64 = -1 // the log end
)

// NoOffset is the offset OffsetFetch reports for a partition the group has
// not committed.
const NoOffset uint64 = math.MaxUint64

// ListOffsetsRequest asks, per partition, for the first offset whose
// timestamp is at or after Timestamp (unix ms), or for the log start or end.
type ListOffsetsRequest struct {
	Topics []ListOffsetsTopic
}

// ListOffsetsTopic is one topic of a ListOffsetsRequest.
type ListOffsetsTopic struct {
	Name       []byte
	Partitions []ListOffsetsPartition
}

// ListOffsetsPartition is a partition and a timestamp (or TimestampEarliest,
// TimestampLatest).
type ListOffsetsPartition struct {
	Partition uint32
	Timestamp int64
}

// ListOffsetsResponse answers a ListOffsetsRequest.
type ListOffsetsResponse struct {
	Topics []ListOffsetsTopicResponse
}

// ListOffsetsTopicResponse is one topic of a ListOffsetsResponse.
type ListOffsetsTopicResponse struct {
	Name       []byte
	Partitions []ListOffsetsPartitionResponse
}

// ListOffsetsPartitionResponse is the offset found and its record's
// timestamp.
type ListOffsetsPartitionResponse struct {
	Partition uint32
	Error     ErrorCode
	Offset    uint64
	Timestamp int64
}

const (
	listOffsetsPartitionSize         = 4 + 8
	listOffsetsPartitionResponseSize = 4 + 2 + 8 + 8
)

// APIKey implements Request.
func (*ListOffsetsRequest) APIKey() APIKey { return APIListOffsets }

// AppendTo implements Message.
func (r *ListOffsetsRequest) AppendTo(dst []byte) []byte {
	dst = appendArrayLen(dst, len(r.Topics))
	for i := range r.Topics {
		t := &r.Topics[i]
		dst = appendBytes16(dst, t.Name)
		dst = appendArrayLen(dst, len(t.Partitions))
		for _, p := range t.Partitions {
			dst = appendU32(dst, p.Partition)
			dst = appendI64(dst, p.Timestamp)
		}
	}
	return dst
}

// Decode implements Message.
func (r *ListOffsetsRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Topics = grow(r.Topics, d.ArrayLen(minTopicSize))
	for i := range r.Topics {
		t := &r.Topics[i]
		t.Name = d.Bytes16()
		t.Partitions = grow(t.Partitions, d.ArrayLen(listOffsetsPartitionSize))
		for j := range t.Partitions {
			t.Partitions[j].Partition = d.U32()
			t.Partitions[j].Timestamp = d.I64()
		}
	}
	return d.End()
}

// AppendTo implements Message.
func (r *ListOffsetsResponse) AppendTo(dst []byte) []byte {
	dst = appendArrayLen(dst, len(r.Topics))
	for i := range r.Topics {
		t := &r.Topics[i]
		dst = appendBytes16(dst, t.Name)
		dst = appendArrayLen(dst, len(t.Partitions))
		for _, p := range t.Partitions {
			dst = appendU32(dst, p.Partition)
			dst = appendU16(dst, uint16(p.Error))
			dst = appendU64(dst, p.Offset)
			dst = appendI64(dst, p.Timestamp)
		}
	}
	return dst
}

// Decode implements Message.
func (r *ListOffsetsResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Topics = grow(r.Topics, d.ArrayLen(minTopicSize))
	for i := range r.Topics {
		t := &r.Topics[i]
		t.Name = d.Bytes16()
		t.Partitions = grow(t.Partitions, d.ArrayLen(listOffsetsPartitionResponseSize))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			p.Partition = d.U32()
			p.Error = ErrorCode(d.U16())
			p.Offset = d.U64()
			p.Timestamp = d.I64()
		}
	}
	return d.End()
}

// OffsetCommitRequest stores a consumer group's positions.
//
// MemberID and MemberEpoch identify a group member (fenced: the member must
// own each partition in that epoch); an empty MemberID is a client outside
// group management (manual assignment), allowed only while the group has
// no members.
type OffsetCommitRequest struct {
	Group       []byte
	MemberID    []byte
	MemberEpoch uint32
	Topics      []OffsetCommitTopic
}

// OffsetCommitTopic is one topic of an OffsetCommitRequest.
type OffsetCommitTopic struct {
	Name       []byte
	Partitions []OffsetCommitPartition
}

// OffsetCommitPartition is the next offset the group will consume, with
// free-form metadata.
type OffsetCommitPartition struct {
	Partition uint32
	Offset    uint64
	Metadata  []byte
}

// OffsetCommitResponse reports the outcome per partition.
type OffsetCommitResponse struct {
	Topics []OffsetCommitTopicResponse
}

// OffsetCommitTopicResponse is one topic of an OffsetCommitResponse.
type OffsetCommitTopicResponse struct {
	Name       []byte
	Partitions []PartitionError
}

// PartitionError is a partition and the outcome of an operation on it.
type PartitionError struct {
	Partition uint32
	Error     ErrorCode
}

const (
	minOffsetCommitPartitionSize = 4 + 8 + 2
	partitionErrorSize           = 4 + 2
)

// APIKey implements Request.
func (*OffsetCommitRequest) APIKey() APIKey { return APIOffsetCommit }

// AppendTo implements Message.
func (r *OffsetCommitRequest) AppendTo(dst []byte) []byte {
	dst = appendBytes16(dst, r.Group)
	dst = appendBytes16(dst, r.MemberID)
	dst = appendU32(dst, r.MemberEpoch)
	dst = appendArrayLen(dst, len(r.Topics))
	for i := range r.Topics {
		t := &r.Topics[i]
		dst = appendBytes16(dst, t.Name)
		dst = appendArrayLen(dst, len(t.Partitions))
		for _, p := range t.Partitions {
			dst = appendU32(dst, p.Partition)
			dst = appendU64(dst, p.Offset)
			dst = appendBytes16(dst, p.Metadata)
		}
	}
	return dst
}

// Decode implements Message.
func (r *OffsetCommitRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Group = d.Bytes16()
	r.MemberID = d.Bytes16()
	r.MemberEpoch = d.U32()
	r.Topics = grow(r.Topics, d.ArrayLen(minTopicSize))
	for i := range r.Topics {
		t := &r.Topics[i]
		t.Name = d.Bytes16()
		t.Partitions = grow(t.Partitions, d.ArrayLen(minOffsetCommitPartitionSize))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			p.Partition = d.U32()
			p.Offset = d.U64()
			p.Metadata = d.Bytes16()
		}
	}
	return d.End()
}

// AppendTo implements Message.
func (r *OffsetCommitResponse) AppendTo(dst []byte) []byte {
	dst = appendArrayLen(dst, len(r.Topics))
	for i := range r.Topics {
		t := &r.Topics[i]
		dst = appendBytes16(dst, t.Name)
		dst = appendArrayLen(dst, len(t.Partitions))
		for _, p := range t.Partitions {
			dst = appendU32(dst, p.Partition)
			dst = appendU16(dst, uint16(p.Error))
		}
	}
	return dst
}

// Decode implements Message.
func (r *OffsetCommitResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Topics = grow(r.Topics, d.ArrayLen(minTopicSize))
	for i := range r.Topics {
		t := &r.Topics[i]
		t.Name = d.Bytes16()
		t.Partitions = grow(t.Partitions, d.ArrayLen(partitionErrorSize))
		for j := range t.Partitions {
			t.Partitions[j].Partition = d.U32()
			t.Partitions[j].Error = ErrorCode(d.U16())
		}
	}
	return d.End()
}

// OffsetFetchRequest reads a group's committed positions; no topics means
// every partition the group has committed.
// MemberID and MemberEpoch are fenced as in OffsetCommitRequest.
type OffsetFetchRequest struct {
	Group       []byte
	MemberID    []byte
	MemberEpoch uint32
	Topics      []OffsetFetchTopic
}

// OffsetFetchTopic is a topic and the partitions wanted.
type OffsetFetchTopic struct {
	Name       []byte
	Partitions []uint32
}

// OffsetFetchResponse answers an OffsetFetchRequest.
type OffsetFetchResponse struct {
	Topics []OffsetFetchTopicResponse
}

// OffsetFetchTopicResponse is one topic of an OffsetFetchResponse.
type OffsetFetchTopicResponse struct {
	Name       []byte
	Partitions []OffsetFetchPartitionResponse
}

// OffsetFetchPartitionResponse is a committed position; Offset is NoOffset
// where the group has committed none.
type OffsetFetchPartitionResponse struct {
	Partition    uint32
	Offset       uint64
	Metadata     []byte
	CommitTimeMs int64
	Error        ErrorCode
}

const minOffsetFetchPartitionResponseSize = 4 + 8 + 2 + 8 + 2

// APIKey implements Request.
func (*OffsetFetchRequest) APIKey() APIKey { return APIOffsetFetch }

// AppendTo implements Message.
func (r *OffsetFetchRequest) AppendTo(dst []byte) []byte {
	dst = appendBytes16(dst, r.Group)
	dst = appendBytes16(dst, r.MemberID)
	dst = appendU32(dst, r.MemberEpoch)
	dst = appendArrayLen(dst, len(r.Topics))
	for i := range r.Topics {
		t := &r.Topics[i]
		dst = appendBytes16(dst, t.Name)
		dst = appendArrayLen(dst, len(t.Partitions))
		for _, p := range t.Partitions {
			dst = appendU32(dst, p)
		}
	}
	return dst
}

// Decode implements Message.
func (r *OffsetFetchRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Group = d.Bytes16()
	r.MemberID = d.Bytes16()
	r.MemberEpoch = d.U32()
	r.Topics = grow(r.Topics, d.ArrayLen(minTopicSize))
	for i := range r.Topics {
		t := &r.Topics[i]
		t.Name = d.Bytes16()
		t.Partitions = grow(t.Partitions, d.ArrayLen(4))
		for j := range t.Partitions {
			t.Partitions[j] = d.U32()
		}
	}
	return d.End()
}

// AppendTo implements Message.
func (r *OffsetFetchResponse) AppendTo(dst []byte) []byte {
	dst = appendArrayLen(dst, len(r.Topics))
	for i := range r.Topics {
		t := &r.Topics[i]
		dst = appendBytes16(dst, t.Name)
		dst = appendArrayLen(dst, len(t.Partitions))
		for _, p := range t.Partitions {
			dst = appendU32(dst, p.Partition)
			dst = appendU64(dst, p.Offset)
			dst = appendBytes16(dst, p.Metadata)
			dst = appendI64(dst, p.CommitTimeMs)
			dst = appendU16(dst, uint16(p.Error))
		}
	}
	return dst
}

// Decode implements Message.
func (r *OffsetFetchResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Topics = grow(r.Topics, d.ArrayLen(minTopicSize))
	for i := range r.Topics {
		t := &r.Topics[i]
		t.Name = d.Bytes16()
		t.Partitions = grow(t.Partitions, d.ArrayLen(minOffsetFetchPartitionResponseSize))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			p.Partition = d.U32()
			p.Offset = d.U64()
			p.Metadata = d.Bytes16()
			p.CommitTimeMs = d.I64()
			p.Error = ErrorCode(d.U16())
		}
	}
	return d.End()
}
