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

// GroupInfo is one consumer group.
type GroupInfo struct {
	Name   string
	Topics []GroupTopic
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
	minGroupInfoSize   = 2 + 4
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
		dst = appendArrayLen(dst, len(g.Topics))
		for j := range g.Topics {
			t := &g.Topics[j]
			dst = appendString16(dst, t.Name)
			dst = appendArrayLen(dst, len(t.Partitions))
			for _, p := range t.Partitions {
				dst = appendU32(dst, p.Partition)
				dst = appendU64(dst, p.Committed)
				dst = appendU64(dst, p.LogEnd)
				dst = appendU64(dst, p.Lag)
			}
		}
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
		g.Topics = grow(g.Topics, d.ArrayLen(minTopicSize))
		for j := range g.Topics {
			t := &g.Topics[j]
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
	}
	return d.End()
}
