package proto

// ReplicaFetch: a follower broker pulls batches from a leader broker, for
// every partition it follows there, in one request (internal to the
// cluster; Kafka's replica Fetch with KIP-320's last fetched epoch). The
// leader answers each partition with its epoch, high watermark and log
// start, and either the batches from FetchOffset on (up to its log end,
// not its HW: the follower copies the log) or, when the follower's log
// diverges from its own, the epoch and end offset to truncate to. Like
// Fetch, the server writes the records as the segment slices it holds:
// ReplicaFetchResponseSize, AppendReplicaFetchPartitionHeader.
//
//	request:  replica_id u32 | broker_epoch u64 | max_wait_ms u32 | max_bytes u32 |
//	          topics [name | partitions [partition u32 | leader_epoch i32 |
//	                  fetch_offset u64 | flushed u64 | last_epoch i32]]
//	response: topics [name | partitions [partition u32 | error u16 | leader_epoch i32 |
//	          high_watermark u64 | log_start u64 | diverging u8 | diverging_epoch i32 |
//	          diverging_end u64 | records bytes32]]

// ReplicaFetchRequest is a follower's fetch from one leader broker.
type ReplicaFetchRequest struct {
	ReplicaID   uint32 // the follower broker
	BrokerEpoch uint64 // its registration's epoch
	MaxWaitMs   uint32
	MaxBytes    uint32
	Topics      []ReplicaFetchTopic
}

// ReplicaFetchTopic is one topic of a ReplicaFetchRequest.
type ReplicaFetchTopic struct {
	Name       []byte
	Partitions []ReplicaFetchPartition
}

// ReplicaFetchPartition is the follower's position in one partition: its
// log end (FetchOffset), what it has fdatasync'd (Flushed) and the leader
// epoch of its last batch (LastEpoch; -1 for an empty log).
type ReplicaFetchPartition struct {
	Partition   uint32
	LeaderEpoch int32
	FetchOffset uint64
	Flushed     uint64
	LastEpoch   int32
}

// ReplicaFetchResponse carries each partition's answer.
type ReplicaFetchResponse struct {
	Topics []ReplicaFetchTopicResponse
}

// ReplicaFetchTopicResponse is one topic of a ReplicaFetchResponse.
type ReplicaFetchTopicResponse struct {
	Name       []byte
	Partitions []ReplicaFetchPartitionResponse
}

// ReplicaFetchPartitionResponse is one partition's answer; Records alias
// the response frame.
type ReplicaFetchPartitionResponse struct {
	ReplicaFetchPartitionHeader
	Records []byte
}

// ReplicaFetchPartitionHeader is a partition's answer without its records.
// Diverging: the follower must truncate to where DivergingEpoch ends
// (DivergingEnd), and there are no records.
type ReplicaFetchPartitionHeader struct {
	Partition      uint32
	Error          ErrorCode
	LeaderEpoch    int32
	HighWatermark  uint64
	LogStart       uint64
	Diverging      bool
	DivergingEpoch int32
	DivergingEnd   uint64
	RecordsLen     uint32
}

const (
	replicaFetchPartitionSize = 4 + 4 + 8 + 8 + 4
	// ReplicaFetchPartitionHeaderSize is the encoded size of a
	// ReplicaFetchPartitionHeader.
	ReplicaFetchPartitionHeaderSize = 4 + 2 + 4 + 8 + 8 + 1 + 4 + 8 + 4
)

// APIKey implements Request.
func (*ReplicaFetchRequest) APIKey() APIKey { return APIReplicaFetch }

// AppendTo implements Message.
func (r *ReplicaFetchRequest) AppendTo(dst []byte) []byte {
	dst = appendU32(dst, r.ReplicaID)
	dst = appendU64(dst, r.BrokerEpoch)
	dst = appendU32(dst, r.MaxWaitMs)
	dst = appendU32(dst, r.MaxBytes)
	dst = appendArrayLen(dst, len(r.Topics))
	for i := range r.Topics {
		t := &r.Topics[i]
		dst = appendBytes16(dst, t.Name)
		dst = appendArrayLen(dst, len(t.Partitions))
		for _, p := range t.Partitions {
			dst = appendU32(dst, p.Partition)
			dst = appendU32(dst, uint32(p.LeaderEpoch))
			dst = appendU64(dst, p.FetchOffset)
			dst = appendU64(dst, p.Flushed)
			dst = appendU32(dst, uint32(p.LastEpoch))
		}
	}
	return dst
}

// Decode implements Message. It does not allocate once r's slices have
// grown to the request's shape.
func (r *ReplicaFetchRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.ReplicaID = d.U32()
	r.BrokerEpoch = d.U64()
	r.MaxWaitMs = d.U32()
	r.MaxBytes = d.U32()
	r.Topics = grow(r.Topics, d.ArrayLen(minTopicSize))
	for i := range r.Topics {
		t := &r.Topics[i]
		t.Name = d.Bytes16()
		t.Partitions = grow(t.Partitions, d.ArrayLen(replicaFetchPartitionSize))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			p.Partition = d.U32()
			p.LeaderEpoch = d.I32()
			p.FetchOffset = d.U64()
			p.Flushed = d.U64()
			p.LastEpoch = d.I32()
		}
	}
	return d.End()
}

// AppendTo implements Message, through the helpers the server's zero-copy
// path uses.
func (r *ReplicaFetchResponse) AppendTo(dst []byte) []byte {
	dst = AppendFetchResponseStart(dst, len(r.Topics))
	for i := range r.Topics {
		t := &r.Topics[i]
		dst = AppendFetchResponseTopicHeader(dst, t.Name, len(t.Partitions))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			h := p.ReplicaFetchPartitionHeader
			h.RecordsLen = checkedU32(len(p.Records))
			dst = AppendReplicaFetchPartitionHeader(dst, &h)
			dst = append(dst, p.Records...)
		}
	}
	return dst
}

// Decode implements Message. RecordsLen is set to len(Records).
func (r *ReplicaFetchResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Topics = grow(r.Topics, d.ArrayLen(minTopicSize))
	for i := range r.Topics {
		t := &r.Topics[i]
		t.Name = d.Bytes16()
		t.Partitions = grow(t.Partitions, d.ArrayLen(ReplicaFetchPartitionHeaderSize))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			p.Partition = d.U32()
			p.Error = ErrorCode(d.U16())
			p.LeaderEpoch = d.I32()
			p.HighWatermark = d.U64()
			p.LogStart = d.U64()
			p.Diverging = d.Bool()
			p.DivergingEpoch = d.I32()
			p.DivergingEnd = d.U64()
			p.Records = d.Bytes32()
			p.RecordsLen = uint32(len(p.Records))
		}
	}
	return d.End()
}

// AppendReplicaFetchPartitionHeader appends a partition's fields up to and
// including records_len; p.RecordsLen bytes of records must follow. The
// topic headers are Fetch's (AppendFetchResponseStart,
// AppendFetchResponseTopicHeader).
func AppendReplicaFetchPartitionHeader(dst []byte, p *ReplicaFetchPartitionHeader) []byte {
	dst = appendU32(dst, p.Partition)
	dst = appendU16(dst, uint16(p.Error))
	dst = appendU32(dst, uint32(p.LeaderEpoch))
	dst = appendU64(dst, p.HighWatermark)
	dst = appendU64(dst, p.LogStart)
	dst = appendBool(dst, p.Diverging)
	dst = appendU32(dst, uint32(p.DivergingEpoch))
	dst = appendU64(dst, p.DivergingEnd)
	return appendU32(dst, p.RecordsLen)
}

// ReplicaFetchResponseSize adds up the size of a replica fetch response
// body. The zero value is an empty response.
type ReplicaFetchResponseSize struct {
	n int
}

// AddTopic counts a topic header.
func (s *ReplicaFetchResponseSize) AddTopic(name []byte) { s.n += minTopicSize + len(name) }

// AddPartition counts a partition header and its recordsLen bytes of records.
func (s *ReplicaFetchResponseSize) AddPartition(recordsLen int) {
	s.n += ReplicaFetchPartitionHeaderSize + recordsLen
}

// BodyLen is the body length to pass to AppendResponseHeader.
func (s *ReplicaFetchResponseSize) BodyLen() int { return 4 + s.n }

// FrameLen is the total frame size, response header included.
func (s *ReplicaFetchResponseSize) FrameLen() int { return ResponseHeaderSize + s.BodyLen() }
