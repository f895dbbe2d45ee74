package proto

// JoinGroup, Heartbeat and LeaveGroup: a consumer-group member's life. The
// broker computes the assignment (KIP-848 style) and answers it in every
// join and heartbeat. Admin-style messages: names are strings.

// Subscription types on the wire (the Pulsar names). Never change.
const (
	GroupTypeFailover  uint8 = 1
	GroupTypeExclusive uint8 = 2
)

// GroupPartitions is a topic and some of its partitions.
type GroupPartitions struct {
	Topic      string
	Partitions []uint32
}

// JoinGroupRequest asks to join Group as a new member subscribed to Topics.
type JoinGroupRequest struct {
	Group            string
	Type             uint8
	MemberID         string // the client's unique id (random); empty: the broker names it
	ClientID         string
	SessionTimeoutMs uint32
	Topics           []string
}

// HeartbeatRequest keeps a member alive and lists the partitions it still
// holds: a partition it was told to revoke and no longer lists is released.
type HeartbeatRequest struct {
	Group       string
	MemberID    string
	MemberEpoch uint32
	Owned       []GroupPartitions
}

// AssignmentResponse answers JoinGroup and Heartbeat. Error is None or the
// refusal, with Message naming what refused it (the holder of an exclusive
// subscription, the epoch a member is fenced at).
type AssignmentResponse struct {
	Error               ErrorCode
	Message             string
	MemberID            string
	MemberEpoch         uint32
	HeartbeatIntervalMs uint32
	Assigned            []GroupPartitions // read these
	Revoke              []GroupPartitions // commit, stop, leave out of the next heartbeat
	Pending             []GroupPartitions // assigned, still held by their previous owner
}

// LeaveGroupRequest removes a member at its request.
type LeaveGroupRequest struct {
	Group    string
	MemberID string
}

// GroupResultResponse answers LeaveGroup and DeleteGroup.
type GroupResultResponse struct {
	Error   ErrorCode
	Message string
}

const (
	minGroupPartitionsSize = 2 + 4
)

func appendStrings(dst []byte, ss []string) []byte {
	dst = appendArrayLen(dst, len(ss))
	for _, s := range ss {
		dst = appendString16(dst, s)
	}
	return dst
}

func (d *Decoder) strings(ss []string) []string {
	ss = grow(ss, d.ArrayLen(minStringSize))
	for i := range ss {
		ss[i] = d.String16()
	}
	return ss
}

func appendGroupPartitions(dst []byte, gps []GroupPartitions) []byte {
	dst = appendArrayLen(dst, len(gps))
	for i := range gps {
		dst = appendString16(dst, gps[i].Topic)
		dst = appendArrayLen(dst, len(gps[i].Partitions))
		for _, p := range gps[i].Partitions {
			dst = appendU32(dst, p)
		}
	}
	return dst
}

func (d *Decoder) groupPartitions(gps []GroupPartitions) []GroupPartitions {
	gps = grow(gps, d.ArrayLen(minGroupPartitionsSize))
	for i := range gps {
		gps[i].Topic = d.String16()
		ps := grow(gps[i].Partitions, d.ArrayLen(4))
		for j := range ps {
			ps[j] = d.U32()
		}
		gps[i].Partitions = ps
	}
	return gps
}

// APIKey implements Request.
func (*JoinGroupRequest) APIKey() APIKey { return APIJoinGroup }

// AppendTo implements Message.
func (r *JoinGroupRequest) AppendTo(dst []byte) []byte {
	dst = appendString16(dst, r.Group)
	dst = appendU8(dst, r.Type)
	dst = appendString16(dst, r.MemberID)
	dst = appendString16(dst, r.ClientID)
	dst = appendU32(dst, r.SessionTimeoutMs)
	return appendStrings(dst, r.Topics)
}

// Decode implements Message.
func (r *JoinGroupRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Group = d.String16()
	r.Type = d.U8()
	r.MemberID = d.String16()
	r.ClientID = d.String16()
	r.SessionTimeoutMs = d.U32()
	r.Topics = d.strings(r.Topics)
	return d.End()
}

// APIKey implements Request.
func (*HeartbeatRequest) APIKey() APIKey { return APIHeartbeat }

// AppendTo implements Message.
func (r *HeartbeatRequest) AppendTo(dst []byte) []byte {
	dst = appendString16(dst, r.Group)
	dst = appendString16(dst, r.MemberID)
	dst = appendU32(dst, r.MemberEpoch)
	return appendGroupPartitions(dst, r.Owned)
}

// Decode implements Message.
func (r *HeartbeatRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Group = d.String16()
	r.MemberID = d.String16()
	r.MemberEpoch = d.U32()
	r.Owned = d.groupPartitions(r.Owned)
	return d.End()
}

// AppendTo implements Message.
func (r *AssignmentResponse) AppendTo(dst []byte) []byte {
	dst = appendU16(dst, uint16(r.Error))
	dst = appendString16(dst, r.Message)
	dst = appendString16(dst, r.MemberID)
	dst = appendU32(dst, r.MemberEpoch)
	dst = appendU32(dst, r.HeartbeatIntervalMs)
	dst = appendGroupPartitions(dst, r.Assigned)
	dst = appendGroupPartitions(dst, r.Revoke)
	return appendGroupPartitions(dst, r.Pending)
}

// Decode implements Message.
func (r *AssignmentResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Error = ErrorCode(d.U16())
	r.Message = d.String16()
	r.MemberID = d.String16()
	r.MemberEpoch = d.U32()
	r.HeartbeatIntervalMs = d.U32()
	r.Assigned = d.groupPartitions(r.Assigned)
	r.Revoke = d.groupPartitions(r.Revoke)
	r.Pending = d.groupPartitions(r.Pending)
	return d.End()
}

// APIKey implements Request.
func (*LeaveGroupRequest) APIKey() APIKey { return APILeaveGroup }

// AppendTo implements Message.
func (r *LeaveGroupRequest) AppendTo(dst []byte) []byte {
	dst = appendString16(dst, r.Group)
	return appendString16(dst, r.MemberID)
}

// Decode implements Message.
func (r *LeaveGroupRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Group = d.String16()
	r.MemberID = d.String16()
	return d.End()
}

// AppendTo implements Message.
func (r *GroupResultResponse) AppendTo(dst []byte) []byte {
	dst = appendU16(dst, uint16(r.Error))
	return appendString16(dst, r.Message)
}

// Decode implements Message.
func (r *GroupResultResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Error = ErrorCode(d.U16())
	r.Message = d.String16()
	return d.End()
}
