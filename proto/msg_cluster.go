package proto

// ClusterStatus (asked by `ringmq cluster status`) and the internal
// messages that nodes send each other on the client port: Raft messages
// for the controller and brokers' heartbeats to the controller leader.

// ClusterStatusRequest asks a node for its view of the cluster. It has no
// fields.
type ClusterStatusRequest struct{}

// ClusterStatusResponse is the answering node's view of the cluster: the
// controller leader (NoNode: none known) with the Raft term and commit
// index this node has seen, every node, and the partitions that are
// offline (no leader) or under-replicated (ISR smaller than the replicas).
type ClusterStatusResponse struct {
	NodeID          uint32 // the node that answered
	ControllerID    uint32
	Term            uint64
	CommitIndex     uint64
	AppliedIndex    uint64
	Nodes           []ClusterNode
	Topics          uint32 // how many topics exist
	Partitions      uint32 // how many partitions exist
	Offline         []ClusterPartition
	UnderReplicated []ClusterPartition
}

// ClusterNode is one node: a configured peer or a registered broker.
// BrokerEpoch is the epoch of its latest registration (0: never
// registered); Alive is false until it registers and once it is fenced.
type ClusterNode struct {
	ID          uint32
	Addr        string
	Alive       bool
	BrokerEpoch uint64
}

// ClusterPartition names one partition and its leadership.
type ClusterPartition struct {
	Topic       string
	Partition   uint32
	Leader      uint32
	LeaderEpoch uint32
	Replicas    []uint32
	ISR         []uint32
}

const (
	clusterNodeSize      = 4 + 2 + 1 + 8
	clusterPartitionSize = 2 + 4 + 4 + 4 + 4 + 4
)

// APIKey implements Request.
func (*ClusterStatusRequest) APIKey() APIKey { return APIClusterStatus }

// AppendTo implements Message.
func (*ClusterStatusRequest) AppendTo(dst []byte) []byte { return dst }

// Decode implements Message.
func (*ClusterStatusRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	return d.End()
}

// AppendTo implements Message.
func (r *ClusterStatusResponse) AppendTo(dst []byte) []byte {
	dst = appendU32(dst, r.NodeID)
	dst = appendU32(dst, r.ControllerID)
	dst = appendU64(dst, r.Term)
	dst = appendU64(dst, r.CommitIndex)
	dst = appendU64(dst, r.AppliedIndex)
	dst = appendArrayLen(dst, len(r.Nodes))
	for _, n := range r.Nodes {
		dst = appendU32(dst, n.ID)
		dst = appendString16(dst, n.Addr)
		dst = appendBool(dst, n.Alive)
		dst = appendU64(dst, n.BrokerEpoch)
	}
	dst = appendU32(dst, r.Topics)
	dst = appendU32(dst, r.Partitions)
	dst = appendClusterPartitions(dst, r.Offline)
	return appendClusterPartitions(dst, r.UnderReplicated)
}

// Decode implements Message.
func (r *ClusterStatusResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.NodeID = d.U32()
	r.ControllerID = d.U32()
	r.Term = d.U64()
	r.CommitIndex = d.U64()
	r.AppliedIndex = d.U64()
	r.Nodes = grow(r.Nodes, d.ArrayLen(clusterNodeSize))
	for i := range r.Nodes {
		n := &r.Nodes[i]
		n.ID = d.U32()
		n.Addr = d.String16()
		n.Alive = d.Bool()
		n.BrokerEpoch = d.U64()
	}
	r.Topics = d.U32()
	r.Partitions = d.U32()
	r.Offline = decodeClusterPartitions(&d, r.Offline)
	r.UnderReplicated = decodeClusterPartitions(&d, r.UnderReplicated)
	return d.End()
}

func appendClusterPartitions(dst []byte, ps []ClusterPartition) []byte {
	dst = appendArrayLen(dst, len(ps))
	for _, p := range ps {
		dst = appendString16(dst, p.Topic)
		dst = appendU32(dst, p.Partition)
		dst = appendLeadership(dst, p.Leader, p.LeaderEpoch, p.Replicas, p.ISR)
	}
	return dst
}

func decodeClusterPartitions(d *Decoder, ps []ClusterPartition) []ClusterPartition {
	ps = grow(ps, d.ArrayLen(clusterPartitionSize))
	for i := range ps {
		p := &ps[i]
		p.Topic = d.String16()
		p.Partition = d.U32()
		p.Leader, p.LeaderEpoch = d.U32(), d.U32()
		p.Replicas = decodeU32s(d, p.Replicas)
		p.ISR = decodeU32s(d, p.ISR)
	}
	return ps
}

// RaftMessagesRequest carries controller Raft messages from node From to
// the receiving node, each a protobuf-marshalled raftpb.Message (aliasing
// the frame after Decode). It is internal to the cluster and one-way: the
// server sends no response (Raft resends what is lost).
type RaftMessagesRequest struct {
	From     uint32
	Messages [][]byte
}

// APIKey implements Request.
func (*RaftMessagesRequest) APIKey() APIKey { return APIRaftMessages }

// AppendTo implements Message.
func (r *RaftMessagesRequest) AppendTo(dst []byte) []byte {
	dst = appendU32(dst, r.From)
	dst = appendArrayLen(dst, len(r.Messages))
	for _, m := range r.Messages {
		dst = appendBytes32(dst, m)
	}
	return dst
}

// Decode implements Message.
func (r *RaftMessagesRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.From = d.U32()
	r.Messages = grow(r.Messages, d.ArrayLen(4))
	for i := range r.Messages {
		r.Messages[i] = d.Bytes32()
	}
	return d.End()
}

// BrokerHeartbeatRequest tells the controller leader that broker
// BrokerID, registered at BrokerEpoch, is alive. Internal to the cluster.
type BrokerHeartbeatRequest struct {
	BrokerID    uint32
	BrokerEpoch uint64
}

// BrokerHeartbeatResponse is the outcome: None, NotController (with the
// leader the node knows in ControllerID, NoNode if none),
// ControllerNotAvailable (retry) or StaleBrokerEpoch (register again).
type BrokerHeartbeatResponse struct {
	Error        ErrorCode
	ControllerID uint32
}

// APIKey implements Request.
func (*BrokerHeartbeatRequest) APIKey() APIKey { return APIBrokerHeartbeat }

// AppendTo implements Message.
func (r *BrokerHeartbeatRequest) AppendTo(dst []byte) []byte {
	dst = appendU32(dst, r.BrokerID)
	return appendU64(dst, r.BrokerEpoch)
}

// Decode implements Message.
func (r *BrokerHeartbeatRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.BrokerID = d.U32()
	r.BrokerEpoch = d.U64()
	return d.End()
}

// AppendTo implements Message.
func (r *BrokerHeartbeatResponse) AppendTo(dst []byte) []byte {
	dst = appendU16(dst, uint16(r.Error))
	return appendU32(dst, r.ControllerID)
}

// Decode implements Message.
func (r *BrokerHeartbeatResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Error = ErrorCode(d.U16())
	r.ControllerID = d.U32()
	return d.End()
}
