package proto

// ListGroups: consumer groups, their committed positions and their lag. An
// admin message: names are strings.

// ListGroupsRequest lists the group named Group, or every group if empty.
type ListGroupsRequest struct {
	Group string
}

// ListGroupsResponse lists groups with their positions per partition.
type ListGroupsResponse struct {
	Groups []GroupInfo
}

// GroupInfo is one consumer group: its subscription type (GroupType*),
// state (GroupState*), member count and committed positions.
type GroupInfo struct {
	Name    string
	Type    uint8
	State   uint8
	Members uint32
	Topics  []GroupTopic
}

// GroupTopic is one topic a group has committed positions in.
type GroupTopic struct {
	Name       string
	Partitions []GroupPartition
}

// GroupPartition is a committed position, the log end, and the lag between
// them.
type GroupPartition struct {
	Partition uint32
	Committed uint64
	LogEnd    uint64
	Lag       uint64
}

const (
	minGroupInfoSize   = 2 + 1 + 1 + 4 + 4
	groupPartitionSize = 4 + 8 + 8 + 8
)

// APIKey implements Request.
func (*ListGroupsRequest) APIKey() APIKey { return APIListGroups }

// AppendTo implements Message.
func (r *ListGroupsRequest) AppendTo(dst []byte) []byte { return appendString16(dst, r.Group) }

// Decode implements Message.
func (r *ListGroupsRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Group = d.String16()
	return d.End()
}

// AppendTo implements Message.
func (r *ListGroupsResponse) AppendTo(dst []byte) []byte {
	dst = appendArrayLen(dst, len(r.Groups))
	for i := range r.Groups {
		g := &r.Groups[i]
		dst = appendString16(dst, g.Name)
		dst = appendU8(dst, g.Type)
		dst = appendU8(dst, g.State)
		dst = appendU32(dst, g.Members)
		dst = appendGroupTopics(dst, g.Topics)
	}
	return dst
}

// Decode implements Message.
func (r *ListGroupsResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Groups = grow(r.Groups, d.ArrayLen(minGroupInfoSize))
	for i := range r.Groups {
		g := &r.Groups[i]
		g.Name = d.String16()
		g.Type = d.U8()
		g.State = d.U8()
		g.Members = d.U32()
		g.Topics = d.groupTopics(g.Topics)
	}
	return d.End()
}
