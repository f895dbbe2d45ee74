package proto

// ShareAcquire, ShareAck and ShareDescribe: the members of a shared or
// key_shared subscription. A member asks the coordinator for records
// (ShareAcquire answers the offset ranges it acquired for the member under
// the group's ack_timeout), reads them with a plain Fetch (whole batches,
// zero-copy; the client skips records outside its ranges), and
// acknowledges them with ShareAck. Every request is fenced by member id
// and epoch.

// Subscription types of shared subscriptions (the Pulsar names). Never change.
const (
	GroupTypeShared    uint8 = 3
	GroupTypeKeyShared uint8 = 4
)

// Share ack operations. Never change.
const (
	ShareAccept     uint8 = 1 // ack each offset of [Start, End) the member holds
	ShareAcceptUpTo uint8 = 2 // ack everything the member holds below End
	ShareRelease    uint8 = 3 // nack: redeliver after DelayMs (NoDelay: the group's backoff)
	ShareReject     uint8 = 4 // dead-letter (or done when dead-lettering is off)
)

// ShareBackoff as a release's DelayMs asks for the group's backoff list.
const ShareBackoff = ^uint32(0)

// ShareAcquireRequest asks for up to MaxRecords records of one partition.
type ShareAcquireRequest struct {
	Group       string
	MemberID    string
	MemberEpoch uint32
	Topic       string
	Partition   uint32
	MaxRecords  uint32
}

// ShareRange is a run of offsets [Start, End) acquired by the member, each
// delivered for the Deliveries-th time.
type ShareRange struct {
	Start, End uint64
	Deliveries uint32
}

// ShareAcquireResponse lists the acquired ranges (offset order), locked
// until AckTimeoutMs from now.
type ShareAcquireResponse struct {
	Error        ErrorCode
	Message      string
	AckTimeoutMs uint32
	Ranges       []ShareRange
}

// ShareAck is one acknowledgement: Op over [Start, End).
type ShareAck struct {
	Op         uint8
	Start, End uint64
	DelayMs    uint32 // ShareRelease: redelivery delay (ShareBackoff: the group's list)
	Reason     string // ShareRelease, ShareReject: the last error, for the dead-letter headers
}

// ShareAckRequest acknowledges records of one partition.
type ShareAckRequest struct {
	Group       string
	MemberID    string
	MemberEpoch uint32
	Topic       string
	Partition   uint32
	Acks        []ShareAck
}

// ShareAckResponse answers one code per ack, in order.
type ShareAckResponse struct {
	Error   ErrorCode
	Message string
	Results []ErrorCode
}

// ShareDescribeRequest asks for a shared group's ack state.
type ShareDescribeRequest struct {
	Group string
}

// SharePartitionState is one partition's ack state: the floor (every
// offset below is done), records in flight, records waiting for
// redelivery, redeliveries and dead letters since the coordinator started.
type SharePartitionState struct {
	Topic        string
	Partition    uint32
	Floor        uint64
	LogEnd       uint64
	InFlight     uint32
	Waiting      uint32
	Redeliveries uint64
	DeadLetters  uint64
}

// ShareDescribeResponse lists the partitions with ack state.
type ShareDescribeResponse struct {
	Error      ErrorCode
	Message    string
	Partitions []SharePartitionState
}

// APIKey implements Request.
func (*ShareAcquireRequest) APIKey() APIKey { return APIShareAcquire }

// AppendTo implements Message.
func (r *ShareAcquireRequest) AppendTo(dst []byte) []byte {
	dst = appendString16(dst, r.Group)
	dst = appendString16(dst, r.MemberID)
	dst = appendU32(dst, r.MemberEpoch)
	dst = appendString16(dst, r.Topic)
	dst = appendU32(dst, r.Partition)
	return appendU32(dst, r.MaxRecords)
}

// Decode implements Message.
func (r *ShareAcquireRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Group = d.String16()
	r.MemberID = d.String16()
	r.MemberEpoch = d.U32()
	r.Topic = d.String16()
	r.Partition = d.U32()
	r.MaxRecords = d.U32()
	return d.End()
}

// AppendTo implements Message.
func (r *ShareAcquireResponse) AppendTo(dst []byte) []byte {
	dst = appendU16(dst, uint16(r.Error))
	dst = appendString16(dst, r.Message)
	dst = appendU32(dst, r.AckTimeoutMs)
	dst = appendArrayLen(dst, len(r.Ranges))
	for _, rg := range r.Ranges {
		dst = appendU64(dst, rg.Start)
		dst = appendU64(dst, rg.End)
		dst = appendU32(dst, rg.Deliveries)
	}
	return dst
}

// Decode implements Message.
func (r *ShareAcquireResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Error = ErrorCode(d.U16())
	r.Message = d.String16()
	r.AckTimeoutMs = d.U32()
	r.Ranges = grow(r.Ranges, d.ArrayLen(20))
	for i := range r.Ranges {
		r.Ranges[i] = ShareRange{Start: d.U64(), End: d.U64(), Deliveries: d.U32()}
	}
	return d.End()
}

// APIKey implements Request.
func (*ShareAckRequest) APIKey() APIKey { return APIShareAck }

// AppendTo implements Message.
func (r *ShareAckRequest) AppendTo(dst []byte) []byte {
	dst = appendString16(dst, r.Group)
	dst = appendString16(dst, r.MemberID)
	dst = appendU32(dst, r.MemberEpoch)
	dst = appendString16(dst, r.Topic)
	dst = appendU32(dst, r.Partition)
	dst = appendArrayLen(dst, len(r.Acks))
	for _, a := range r.Acks {
		dst = appendU8(dst, a.Op)
		dst = appendU64(dst, a.Start)
		dst = appendU64(dst, a.End)
		dst = appendU32(dst, a.DelayMs)
		dst = appendString16(dst, a.Reason)
	}
	return dst
}

// Decode implements Message.
func (r *ShareAckRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Group = d.String16()
	r.MemberID = d.String16()
	r.MemberEpoch = d.U32()
	r.Topic = d.String16()
	r.Partition = d.U32()
	r.Acks = grow(r.Acks, d.ArrayLen(1+8+8+4+minStringSize))
	for i := range r.Acks {
		r.Acks[i] = ShareAck{Op: d.U8(), Start: d.U64(), End: d.U64(), DelayMs: d.U32(), Reason: d.String16()}
	}
	return d.End()
}

// AppendTo implements Message.
func (r *ShareAckResponse) AppendTo(dst []byte) []byte {
	dst = appendU16(dst, uint16(r.Error))
	dst = appendString16(dst, r.Message)
	dst = appendArrayLen(dst, len(r.Results))
	for _, c := range r.Results {
		dst = appendU16(dst, uint16(c))
	}
	return dst
}

// Decode implements Message.
func (r *ShareAckResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Error = ErrorCode(d.U16())
	r.Message = d.String16()
	r.Results = grow(r.Results, d.ArrayLen(2))
	for i := range r.Results {
		r.Results[i] = ErrorCode(d.U16())
	}
	return d.End()
}

// APIKey implements Request.
func (*ShareDescribeRequest) APIKey() APIKey { return APIShareDescribe }

// AppendTo implements Message.
func (r *ShareDescribeRequest) AppendTo(dst []byte) []byte { return appendString16(dst, r.Group) }

// Decode implements Message.
func (r *ShareDescribeRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Group = d.String16()
	return d.End()
}

// AppendTo implements Message.
func (r *ShareDescribeResponse) AppendTo(dst []byte) []byte {
	dst = appendU16(dst, uint16(r.Error))
	dst = appendString16(dst, r.Message)
	dst = appendArrayLen(dst, len(r.Partitions))
	for _, p := range r.Partitions {
		dst = appendString16(dst, p.Topic)
		dst = appendU32(dst, p.Partition)
		dst = appendU64(dst, p.Floor)
		dst = appendU64(dst, p.LogEnd)
		dst = appendU32(dst, p.InFlight)
		dst = appendU32(dst, p.Waiting)
		dst = appendU64(dst, p.Redeliveries)
		dst = appendU64(dst, p.DeadLetters)
	}
	return dst
}

// Decode implements Message.
func (r *ShareDescribeResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Error = ErrorCode(d.U16())
	r.Message = d.String16()
	r.Partitions = grow(r.Partitions, d.ArrayLen(minStringSize+4+8+8+4+4+8+8))
	for i := range r.Partitions {
		r.Partitions[i] = SharePartitionState{Topic: d.String16(), Partition: d.U32(), Floor: d.U64(), LogEnd: d.U64(),
			InFlight: d.U32(), Waiting: d.U32(), Redeliveries: d.U64(), DeadLetters: d.U64()}
	}
	return d.End()
}
