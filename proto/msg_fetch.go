package proto

import "fmt"

// Fetch: the data path out. The server writes a response as header bytes
// followed by the records slices it already holds (iovecs), never copying
// records: FetchResponseSize gives the frame length up front, then
// AppendFetchResponseStart, AppendFetchResponseTopicHeader and
// AppendFetchPartitionHeader write everything but the records:
//
//	var size proto.FetchResponseSize
//	for each topic: size.AddTopic(name); for each partition: size.AddPartition(recordsLen)
//	hdr = proto.AppendResponseHeader(hdr, h, size.BodyLen())
//	hdr = proto.AppendFetchResponseStart(hdr, topicCount)
//	for each topic: hdr = proto.AppendFetchResponseTopicHeader(hdr, name, partitionCount)
//	    for each partition: hdr = proto.AppendFetchPartitionHeader(hdr, &ph); send hdr, then its records
//
// The client decodes the whole frame with FetchResponse.Decode; records
// alias the frame.

// FetchRequest reads records from partitions, waiting up to MaxWaitMs for
// MinBytes to be available.
//
// A consumer-group member names its group, member id and member epoch
// (optional trailing fields, written only when Group is set; a fetch
// without them is a plain fetch and its encoding is unchanged): the broker
// refuses each partition the member does not own in that epoch with
// FENCED_MEMBER_EPOCH (UNKNOWN_MEMBER_ID for a member the group does not
// have). Because the fields are optional, a group fetch cut right after
// its topics decodes as a plain fetch.
type FetchRequest struct {
	MaxWaitMs   uint32
	MinBytes    uint32
	MaxBytes    uint32
	Topics      []FetchTopic
	Group       []byte
	MemberID    []byte
	MemberEpoch uint32
}

// FetchTopic is one topic of a FetchRequest.
type FetchTopic struct {
	Name       []byte
	Partitions []FetchPartition
}

// FetchPartition asks for records from Offset on.
type FetchPartition struct {
	Partition         uint32
	Offset            uint64
	PartitionMaxBytes uint32
}

// FetchResponse carries records per topic and partition.
type FetchResponse struct {
	Topics []FetchTopicResponse
}

// FetchTopicResponse is one topic of a FetchResponse.
type FetchTopicResponse struct {
	Name       []byte
	Partitions []FetchPartitionResponse
}

// FetchPartitionResponse holds whole record batches (Records), aliasing the
// response frame.
type FetchPartitionResponse struct {
	Partition     uint32
	Error         ErrorCode
	HighWatermark uint64
	LogStart      uint64
	Records       []byte
}

// FetchPartitionHeader is a FetchPartitionResponse without its records, for
// writing the records separately.
type FetchPartitionHeader struct {
	Partition     uint32
	Error         ErrorCode
	HighWatermark uint64
	LogStart      uint64
	RecordsLen    uint32
}

const (
	fetchPartitionSize = 4 + 8 + 4
	// fetchGroupMinSize is the shortest group trailer: a one-byte group,
	// an empty member id, the epoch.
	fetchGroupMinSize = 2 + 1 + 2 + 4
	// FetchPartitionHeaderSize is the encoded size of a FetchPartitionHeader.
	FetchPartitionHeaderSize = 4 + 2 + 8 + 8 + 4
)

// APIKey implements Request.
func (*FetchRequest) APIKey() APIKey { return APIFetch }

// AppendTo implements Message.
func (r *FetchRequest) AppendTo(dst []byte) []byte {
	dst = appendU32(dst, r.MaxWaitMs)
	dst = appendU32(dst, r.MinBytes)
	dst = appendU32(dst, r.MaxBytes)
	dst = appendArrayLen(dst, len(r.Topics))
	for i := range r.Topics {
		t := &r.Topics[i]
		dst = appendBytes16(dst, t.Name)
		dst = appendArrayLen(dst, len(t.Partitions))
		for _, p := range t.Partitions {
			dst = appendU32(dst, p.Partition)
			dst = appendU64(dst, p.Offset)
			dst = appendU32(dst, p.PartitionMaxBytes)
		}
	}
	if len(r.Group) > 0 {
		dst = appendBytes16(dst, r.Group)
		dst = appendBytes16(dst, r.MemberID)
		dst = appendU32(dst, r.MemberEpoch)
	}
	return dst
}

// Decode implements Message. It does not allocate once r's slices have
// grown to the request's shape.
func (r *FetchRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.MaxWaitMs = d.U32()
	r.MinBytes = d.U32()
	r.MaxBytes = d.U32()
	r.Topics = grow(r.Topics, d.ArrayLen(minTopicSize))
	for i := range r.Topics {
		t := &r.Topics[i]
		t.Name = d.Bytes16()
		t.Partitions = grow(t.Partitions, d.ArrayLen(fetchPartitionSize))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			p.Partition = d.U32()
			p.Offset = d.U64()
			p.PartitionMaxBytes = d.U32()
		}
	}
	r.Group, r.MemberID, r.MemberEpoch = nil, nil, 0
	if n := d.Len(); d.Err() == nil && n > 0 {
		if n < fetchGroupMinSize {
			return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, n)
		}
		r.Group = d.Bytes16()
		r.MemberID = d.Bytes16()
		r.MemberEpoch = d.U32()
		if d.Err() == nil && len(r.Group) == 0 {
			return fmt.Errorf("%w: fetch names an empty group", ErrMalformed)
		}
	}
	return d.End()
}

// AppendTo implements Message, through the same helpers the server's
// zero-copy path uses.
func (r *FetchResponse) AppendTo(dst []byte) []byte {
	dst = AppendFetchResponseStart(dst, len(r.Topics))
	for i := range r.Topics {
		t := &r.Topics[i]
		dst = AppendFetchResponseTopicHeader(dst, t.Name, len(t.Partitions))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			h := FetchPartitionHeader{
				Partition: p.Partition, Error: p.Error, HighWatermark: p.HighWatermark,
				LogStart: p.LogStart, RecordsLen: checkedU32(len(p.Records)),
			}
			dst = AppendFetchPartitionHeader(dst, &h)
			dst = append(dst, p.Records...)
		}
	}
	return dst
}

// Decode implements Message.
func (r *FetchResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Topics = grow(r.Topics, d.ArrayLen(minTopicSize))
	for i := range r.Topics {
		t := &r.Topics[i]
		t.Name = d.Bytes16()
		t.Partitions = grow(t.Partitions, d.ArrayLen(FetchPartitionHeaderSize))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			p.Partition = d.U32()
			p.Error = ErrorCode(d.U16())
			p.HighWatermark = d.U64()
			p.LogStart = d.U64()
			p.Records = d.Bytes32()
		}
	}
	return d.End()
}

// AppendFetchResponseStart appends the start of a fetch response body: its
// topic count.
func AppendFetchResponseStart(dst []byte, topicCount int) []byte {
	return appendArrayLen(dst, topicCount)
}

// AppendFetchResponseTopicHeader appends a topic's name and partition count.
func AppendFetchResponseTopicHeader(dst, name []byte, partitionCount int) []byte {
	dst = appendBytes16(dst, name)
	return appendArrayLen(dst, partitionCount)
}

// AppendFetchPartitionHeader appends a partition's fields up to and
// including records_len; p.RecordsLen bytes of records must follow.
func AppendFetchPartitionHeader(dst []byte, p *FetchPartitionHeader) []byte {
	dst = appendU32(dst, p.Partition)
	dst = appendU16(dst, uint16(p.Error))
	dst = appendU64(dst, p.HighWatermark)
	dst = appendU64(dst, p.LogStart)
	return appendU32(dst, p.RecordsLen)
}

// FetchResponseSize adds up the size of a fetch response body as the server
// plans it. The zero value is an empty response.
type FetchResponseSize struct {
	n int
}

// AddTopic counts a topic header.
func (s *FetchResponseSize) AddTopic(name []byte) { s.n += minTopicSize + len(name) }

// AddPartition counts a partition header and its recordsLen bytes of records.
func (s *FetchResponseSize) AddPartition(recordsLen int) {
	s.n += FetchPartitionHeaderSize + recordsLen
}

// BodyLen is the body length to pass to AppendResponseHeader.
func (s *FetchResponseSize) BodyLen() int { return 4 + s.n }

// FrameLen is the total frame size, response header included.
func (s *FetchResponseSize) FrameLen() int { return ResponseHeaderSize + s.BodyLen() }
