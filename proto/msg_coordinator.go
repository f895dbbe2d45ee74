package proto

// FindCoordinator: which node coordinates a consumer group. A group lives
// on partition hash(group) mod N of the internal topic __consumer_offsets
// and is coordinated by that partition's leader; a group request sent to
// another node is refused with NOT_COORDINATOR, and the client asks again.

// OffsetsTopic is the internal topic of consumer-group state. The broker
// creates it; clients cannot create, delete or grow it (INTERNAL_TOPIC),
// and listings hide it unless asked.
const OffsetsTopic = "__consumer_offsets"

// IsInternalTopic reports whether name is a topic of the broker's own.
func IsInternalTopic(name string) bool { return name == OffsetsTopic }

// FindCoordinatorRequest asks for the coordinator of Group.
type FindCoordinatorRequest struct {
	Group string
}

// FindCoordinatorResponse names the coordinator: its node id and client
// address, and the partition of __consumer_offsets the group lives on. A
// partition without a leader is answered COORDINATOR_NOT_AVAILABLE
// (retriable) in the response header.
type FindCoordinatorResponse struct {
	NodeID    uint32
	Addr      string
	Partition uint32
}

// APIKey implements Request.
func (*FindCoordinatorRequest) APIKey() APIKey { return APIFindCoordinator }

// AppendTo implements Message.
func (r *FindCoordinatorRequest) AppendTo(dst []byte) []byte { return appendString16(dst, r.Group) }

// Decode implements Message.
func (r *FindCoordinatorRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Group = d.String16()
	return d.End()
}

// AppendTo implements Message.
func (r *FindCoordinatorResponse) AppendTo(dst []byte) []byte {
	dst = appendU32(dst, r.NodeID)
	dst = appendString16(dst, r.Addr)
	return appendU32(dst, r.Partition)
}

// Decode implements Message.
func (r *FindCoordinatorResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.NodeID = d.U32()
	r.Addr = d.String16()
	r.Partition = d.U32()
	return d.End()
}
