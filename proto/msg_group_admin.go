package proto

// DescribeGroup, DeleteGroup and ResetOffsets: consumer-group
// administration. Admin messages: names are strings.

// Group states on the wire. Never change.
const (
	GroupStateEmpty       uint8 = 0
	GroupStateReconciling uint8 = 1
	GroupStateStable      uint8 = 2
)

// DescribeGroupRequest asks for one group's members and positions.
type DescribeGroupRequest struct {
	Group string
}

// DescribeGroupResponse is a group's type, state, members and committed
// positions with the log end and lag of each.
type DescribeGroupResponse struct {
	Error   ErrorCode
	Message string
	Type    uint8
	State   uint8
	Epoch   uint32
	Members []GroupMember
	Topics  []GroupTopic
}

// GroupMember is one member of a described group.
type GroupMember struct {
	ID               string
	ClientID         string
	Addr             string
	SessionTimeoutMs uint32
	Epoch            uint32
	Topics           []string
	Assigned         []GroupPartitions
	Revoking         []GroupPartitions
	Pending          []GroupPartitions
}

// DeleteGroupRequest deletes a group and its commits (refused while it has
// members).
type DeleteGroupRequest struct {
	Group string
}

// ResetOffsetsRequest sets a group's positions in one topic to the given
// offsets (the client resolved earliest|latest|OFFSET|@TIME), or with
// DryRun only answers the plan. Refused while the group has members.
type ResetOffsetsRequest struct {
	Group      string
	Topic      string
	DryRun     bool
	Partitions []ResetPartition
}

// ResetPartition is a partition and its new position.
type ResetPartition struct {
	Partition uint32
	Offset    uint64
}

// ResetOffsetsResponse is the plan: each partition's old commit (if Had)
// and new one.
type ResetOffsetsResponse struct {
	Error      ErrorCode
	Message    string
	Partitions []ResetResult
}

// ResetResult is one line of a reset plan.
type ResetResult struct {
	Partition uint32
	Had       bool
	From      uint64
	To        uint64
}

const (
	minGroupMemberSize = 2 + 2 + 2 + 4 + 4 + 4 + 4 + 4 + 4
	resetPartitionSize = 4 + 8
	resetResultSize    = 4 + 1 + 8 + 8
	minGroupTopicSize  = 2 + 4
)

// APIKey implements Request.
func (*DescribeGroupRequest) APIKey() APIKey { return APIDescribeGroup }

// AppendTo implements Message.
func (r *DescribeGroupRequest) AppendTo(dst []byte) []byte { return appendString16(dst, r.Group) }

// Decode implements Message.
func (r *DescribeGroupRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Group = d.String16()
	return d.End()
}

// AppendTo implements Message.
func (r *DescribeGroupResponse) AppendTo(dst []byte) []byte {
	dst = appendU16(dst, uint16(r.Error))
	dst = appendString16(dst, r.Message)
	dst = appendU8(dst, r.Type)
	dst = appendU8(dst, r.State)
	dst = appendU32(dst, r.Epoch)
	dst = appendArrayLen(dst, len(r.Members))
	for i := range r.Members {
		m := &r.Members[i]
		dst = appendString16(dst, m.ID)
		dst = appendString16(dst, m.ClientID)
		dst = appendString16(dst, m.Addr)
		dst = appendU32(dst, m.SessionTimeoutMs)
		dst = appendU32(dst, m.Epoch)
		dst = appendStrings(dst, m.Topics)
		dst = appendGroupPartitions(dst, m.Assigned)
		dst = appendGroupPartitions(dst, m.Revoking)
		dst = appendGroupPartitions(dst, m.Pending)
	}
	return appendGroupTopics(dst, r.Topics)
}

// Decode implements Message.
func (r *DescribeGroupResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Error = ErrorCode(d.U16())
	r.Message = d.String16()
	r.Type = d.U8()
	r.State = d.U8()
	r.Epoch = d.U32()
	r.Members = grow(r.Members, d.ArrayLen(minGroupMemberSize))
	for i := range r.Members {
		m := &r.Members[i]
		m.ID = d.String16()
		m.ClientID = d.String16()
		m.Addr = d.String16()
		m.SessionTimeoutMs = d.U32()
		m.Epoch = d.U32()
		m.Topics = d.strings(m.Topics)
		m.Assigned = d.groupPartitions(m.Assigned)
		m.Revoking = d.groupPartitions(m.Revoking)
		m.Pending = d.groupPartitions(m.Pending)
	}
	r.Topics = d.groupTopics(r.Topics)
	return d.End()
}

func appendGroupTopics(dst []byte, ts []GroupTopic) []byte {
	dst = appendArrayLen(dst, len(ts))
	for i := range ts {
		t := &ts[i]
		dst = appendString16(dst, t.Name)
		dst = appendArrayLen(dst, len(t.Partitions))
		for _, p := range t.Partitions {
			dst = appendU32(dst, p.Partition)
			dst = appendU64(dst, p.Committed)
			dst = appendU64(dst, p.LogEnd)
			dst = appendU64(dst, p.Lag)
		}
	}
	return dst
}

func (d *Decoder) groupTopics(ts []GroupTopic) []GroupTopic {
	ts = grow(ts, d.ArrayLen(minGroupTopicSize))
	for j := range ts {
		t := &ts[j]
		t.Name = d.String16()
		t.Partitions = grow(t.Partitions, d.ArrayLen(groupPartitionSize))
		for k := range t.Partitions {
			p := &t.Partitions[k]
			p.Partition = d.U32()
			p.Committed = d.U64()
			p.LogEnd = d.U64()
			p.Lag = d.U64()
		}
	}
	return ts
}

// APIKey implements Request.
func (*DeleteGroupRequest) APIKey() APIKey { return APIDeleteGroup }

// AppendTo implements Message.
func (r *DeleteGroupRequest) AppendTo(dst []byte) []byte { return appendString16(dst, r.Group) }

// Decode implements Message.
func (r *DeleteGroupRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Group = d.String16()
	return d.End()
}

// APIKey implements Request.
func (*ResetOffsetsRequest) APIKey() APIKey { return APIResetOffsets }

// AppendTo implements Message.
func (r *ResetOffsetsRequest) AppendTo(dst []byte) []byte {
	dst = appendString16(dst, r.Group)
	dst = appendString16(dst, r.Topic)
	dst = appendBool(dst, r.DryRun)
	dst = appendArrayLen(dst, len(r.Partitions))
	for _, p := range r.Partitions {
		dst = appendU32(dst, p.Partition)
		dst = appendU64(dst, p.Offset)
	}
	return dst
}

// Decode implements Message.
func (r *ResetOffsetsRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Group = d.String16()
	r.Topic = d.String16()
	r.DryRun = d.Bool()
	r.Partitions = grow(r.Partitions, d.ArrayLen(resetPartitionSize))
	for i := range r.Partitions {
		r.Partitions[i].Partition = d.U32()
		r.Partitions[i].Offset = d.U64()
	}
	return d.End()
}

// AppendTo implements Message.
func (r *ResetOffsetsResponse) AppendTo(dst []byte) []byte {
	dst = appendU16(dst, uint16(r.Error))
	dst = appendString16(dst, r.Message)
	dst = appendArrayLen(dst, len(r.Partitions))
	for _, p := range r.Partitions {
		dst = appendU32(dst, p.Partition)
		dst = appendBool(dst, p.Had)
		dst = appendU64(dst, p.From)
		dst = appendU64(dst, p.To)
	}
	return dst
}

// Decode implements Message.
func (r *ResetOffsetsResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Error = ErrorCode(d.U16())
	r.Message = d.String16()
	r.Partitions = grow(r.Partitions, d.ArrayLen(resetResultSize))
	for i := range r.Partitions {
		p := &r.Partitions[i]
		p.Partition = d.U32()
		p.Had = d.Bool()
		p.From = d.U64()
		p.To = d.U64()
	}
	return d.End()
}
