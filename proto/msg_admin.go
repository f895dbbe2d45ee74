package proto

// Hello, Metadata, CreateTopic, DeleteTopic and DescribeTopic: the admin
// messages. Their names are strings (decoding allocates); they are rare.

// NoShard in HelloRequest.RequestedShard asks for no particular shard.
const NoShard int16 = -1

// Topic configuration keys and values (CreateTopic, DescribeTopic). The
// server validates them.
const (
	ConfigRetentionMs    = "retention_ms"
	ConfigRetentionBytes = "retention_bytes"
	ConfigSegmentBytes   = "segment_bytes"
	ConfigFlush          = "flush"
	FlushSync            = "sync"
	FlushInterval        = "interval"
)

// HelloRequest opens a connection: the client's protocol version range, its
// id, and optionally the shard (reactor) it wants to be served by.
type HelloRequest struct {
	MinVersion     uint16
	MaxVersion     uint16
	ClientID       string
	RequestedShard int16 // NoShard for none
}

// HelloResponse is the chosen protocol version, the server's reactor count,
// the shard serving this connection, and whether the connection was moved
// to the requested shard.
type HelloResponse struct {
	Version  uint16
	Reactors uint16
	Shard    uint16
	Moved    bool
}

// APIKey implements Request.
func (*HelloRequest) APIKey() APIKey { return APIHello }

// AppendTo implements Message.
func (r *HelloRequest) AppendTo(dst []byte) []byte {
	dst = appendU16(dst, r.MinVersion)
	dst = appendU16(dst, r.MaxVersion)
	dst = appendString16(dst, r.ClientID)
	return appendI16(dst, r.RequestedShard)
}

// Decode implements Message.
func (r *HelloRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.MinVersion = d.U16()
	r.MaxVersion = d.U16()
	r.ClientID = d.String16()
	r.RequestedShard = d.I16()
	return d.End()
}

// AppendTo implements Message.
func (r *HelloResponse) AppendTo(dst []byte) []byte {
	dst = appendU16(dst, r.Version)
	dst = appendU16(dst, r.Reactors)
	dst = appendU16(dst, r.Shard)
	return appendBool(dst, r.Moved)
}

// Decode implements Message.
func (r *HelloResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Version = d.U16()
	r.Reactors = d.U16()
	r.Shard = d.U16()
	r.Moved = d.Bool()
	return d.End()
}

// MetadataRequest asks for the partitions of Topics (empty: all topics).
type MetadataRequest struct {
	Topics []string
}

// MetadataResponse describes each requested topic, the cluster's brokers
// and its controller leader (ControllerID 0: none known).
type MetadataResponse struct {
	Topics       []MetadataTopic
	Brokers      []BrokerInfo
	ControllerID uint32
}

// BrokerInfo is one broker of the cluster: its node id (from 1), its
// client address, and whether the controller counts it alive (registered
// and not fenced).
type BrokerInfo struct {
	ID    uint32
	Addr  string
	Alive bool
}

// MetadataTopic is one topic of a MetadataResponse; Error is UnknownTopic
// for a name that does not exist.
type MetadataTopic struct {
	Name       string
	Error      ErrorCode
	Partitions []PartitionInfo
}

// PartitionInfo is where a partition lives and the offsets it holds.
// Leader is the node id of its leader (NoNode: offline, none of its
// in-sync replicas is alive); LeaderEpoch grows with every change of
// leader. Shard and the offsets are the answering node's own and are zero
// where it does not host the partition: ask the leader.
type PartitionInfo struct {
	Partition   uint32
	Shard       uint16
	LogStart    uint64
	LogEnd      uint64
	Leader      uint32
	LeaderEpoch uint32
	Replicas    []uint32 // node ids; Replicas[0] is the preferred leader
	ISR         []uint32 // the in-sync replicas, in replica order
}

// NoNode is the node id that means none: no leader, no controller. Node
// ids start at 1.
const NoNode uint32 = 0

const (
	minStringSize        = 2
	minMetadataTopicSize = 2 + 2 + 4
	partitionInfoSize    = 4 + 2 + 8 + 8 + 4 + 4 + 4 + 4
	brokerInfoSize       = 4 + 2 + 1
)

// APIKey implements Request.
func (*MetadataRequest) APIKey() APIKey { return APIMetadata }

// AppendTo implements Message.
func (r *MetadataRequest) AppendTo(dst []byte) []byte {
	dst = appendArrayLen(dst, len(r.Topics))
	for _, t := range r.Topics {
		dst = appendString16(dst, t)
	}
	return dst
}

// Decode implements Message.
func (r *MetadataRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Topics = grow(r.Topics, d.ArrayLen(minStringSize))
	for i := range r.Topics {
		r.Topics[i] = d.String16()
	}
	return d.End()
}

// AppendTo implements Message.
func (r *MetadataResponse) AppendTo(dst []byte) []byte {
	dst = appendArrayLen(dst, len(r.Topics))
	for i := range r.Topics {
		t := &r.Topics[i]
		dst = appendString16(dst, t.Name)
		dst = appendU16(dst, uint16(t.Error))
		dst = appendArrayLen(dst, len(t.Partitions))
		for j := range t.Partitions {
			dst = t.Partitions[j].appendTo(dst)
		}
	}
	dst = appendArrayLen(dst, len(r.Brokers))
	for _, b := range r.Brokers {
		dst = appendU32(dst, b.ID)
		dst = appendString16(dst, b.Addr)
		dst = appendBool(dst, b.Alive)
	}
	return appendU32(dst, r.ControllerID)
}

// Decode implements Message.
func (r *MetadataResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Topics = grow(r.Topics, d.ArrayLen(minMetadataTopicSize))
	for i := range r.Topics {
		t := &r.Topics[i]
		t.Name = d.String16()
		t.Error = ErrorCode(d.U16())
		t.Partitions = grow(t.Partitions, d.ArrayLen(partitionInfoSize))
		for j := range t.Partitions {
			t.Partitions[j].decode(&d)
		}
	}
	r.Brokers = grow(r.Brokers, d.ArrayLen(brokerInfoSize))
	for i := range r.Brokers {
		b := &r.Brokers[i]
		b.ID = d.U32()
		b.Addr = d.String16()
		b.Alive = d.Bool()
	}
	r.ControllerID = d.U32()
	return d.End()
}

func (p *PartitionInfo) appendTo(dst []byte) []byte {
	dst = appendU32(dst, p.Partition)
	dst = appendU16(dst, p.Shard)
	dst = appendU64(dst, p.LogStart)
	dst = appendU64(dst, p.LogEnd)
	return appendLeadership(dst, p.Leader, p.LeaderEpoch, p.Replicas, p.ISR)
}

func (p *PartitionInfo) decode(d *Decoder) {
	p.Partition = d.U32()
	p.Shard = d.U16()
	p.LogStart = d.U64()
	p.LogEnd = d.U64()
	p.Leader, p.LeaderEpoch = d.U32(), d.U32()
	p.Replicas = decodeU32s(d, p.Replicas)
	p.ISR = decodeU32s(d, p.ISR)
}

// appendLeadership appends a partition's leader, leader epoch, replicas
// and ISR (MetadataResponse, DescribeTopicResponse, ClusterStatusResponse).
func appendLeadership(dst []byte, leader, epoch uint32, replicas, isr []uint32) []byte {
	dst = appendU32(dst, leader)
	dst = appendU32(dst, epoch)
	dst = appendU32s(dst, replicas)
	return appendU32s(dst, isr)
}

func appendU32s(dst []byte, vs []uint32) []byte {
	dst = appendArrayLen(dst, len(vs))
	for _, v := range vs {
		dst = appendU32(dst, v)
	}
	return dst
}

func decodeU32s(d *Decoder, vs []uint32) []uint32 {
	vs = grow(vs, d.ArrayLen(4))
	for i := range vs {
		vs[i] = d.U32()
	}
	return vs
}

// Config is one topic configuration entry.
type Config struct {
	Key   string
	Value string
}

const minConfigSize = 4

func appendConfigs(dst []byte, cs []Config) []byte {
	dst = appendArrayLen(dst, len(cs))
	for _, c := range cs {
		dst = appendString16(dst, c.Key)
		dst = appendString16(dst, c.Value)
	}
	return dst
}

func decodeConfigs(d *Decoder, cs []Config) []Config {
	cs = grow(cs, d.ArrayLen(minConfigSize))
	for i := range cs {
		cs[i].Key = d.String16()
		cs[i].Value = d.String16()
	}
	return cs
}

// CreateTopicRequest creates a topic with Partitions partitions, each on
// ReplicationFactor brokers (0: the cluster's default).
type CreateTopicRequest struct {
	Name              string
	Partitions        uint32
	ReplicationFactor uint16
	Configs           []Config
}

// CreateTopicResponse carries the outcome and, on failure, a message that
// names the offending field.
type CreateTopicResponse struct {
	Error   ErrorCode
	Message string
}

// APIKey implements Request.
func (*CreateTopicRequest) APIKey() APIKey { return APICreateTopic }

// AppendTo implements Message.
func (r *CreateTopicRequest) AppendTo(dst []byte) []byte {
	dst = appendString16(dst, r.Name)
	dst = appendU32(dst, r.Partitions)
	dst = appendU16(dst, r.ReplicationFactor)
	return appendConfigs(dst, r.Configs)
}

// Decode implements Message.
func (r *CreateTopicRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Name = d.String16()
	r.Partitions = d.U32()
	r.ReplicationFactor = d.U16()
	r.Configs = decodeConfigs(&d, r.Configs)
	return d.End()
}

// AppendTo implements Message.
func (r *CreateTopicResponse) AppendTo(dst []byte) []byte {
	dst = appendU16(dst, uint16(r.Error))
	return appendString16(dst, r.Message)
}

// Decode implements Message.
func (r *CreateTopicResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Error = ErrorCode(d.U16())
	r.Message = d.String16()
	return d.End()
}

// DeleteTopicRequest deletes a topic and its data.
type DeleteTopicRequest struct {
	Name string
}

// DeleteTopicResponse carries the outcome.
type DeleteTopicResponse struct {
	Error ErrorCode
}

// APIKey implements Request.
func (*DeleteTopicRequest) APIKey() APIKey { return APIDeleteTopic }

// AppendTo implements Message.
func (r *DeleteTopicRequest) AppendTo(dst []byte) []byte { return appendString16(dst, r.Name) }

// Decode implements Message.
func (r *DeleteTopicRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Name = d.String16()
	return d.End()
}

// AppendTo implements Message.
func (r *DeleteTopicResponse) AppendTo(dst []byte) []byte { return appendU16(dst, uint16(r.Error)) }

// Decode implements Message.
func (r *DeleteTopicResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Error = ErrorCode(d.U16())
	return d.End()
}

// DescribeTopicRequest asks for one topic's partitions and configuration.
type DescribeTopicRequest struct {
	Name string
}

// DescribeTopicResponse is a topic's partitions and configuration.
type DescribeTopicResponse struct {
	Error      ErrorCode
	Partitions []DescribePartition
	Configs    []Config
}

// DescribePartition is one partition of a DescribeTopicResponse; Bytes is
// the size of its log on disk. Status is empty for a healthy partition,
// else what is wrong with it (fenced after an I/O failure, corrupt data).
// Leader, LeaderEpoch, Replicas and ISR are as in PartitionInfo; the
// shard, offsets and size are zero where the answering node does not host
// the partition.
type DescribePartition struct {
	Partition   uint32
	Shard       uint16
	LogStart    uint64
	LogEnd      uint64
	Bytes       uint64
	Status      string
	Leader      uint32
	LeaderEpoch uint32
	Replicas    []uint32
	ISR         []uint32
}

const describePartitionSize = 4 + 2 + 8 + 8 + 8 + 2 + 4 + 4 + 4 + 4

// APIKey implements Request.
func (*DescribeTopicRequest) APIKey() APIKey { return APIDescribeTopic }

// AppendTo implements Message.
func (r *DescribeTopicRequest) AppendTo(dst []byte) []byte { return appendString16(dst, r.Name) }

// Decode implements Message.
func (r *DescribeTopicRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Name = d.String16()
	return d.End()
}

// AppendTo implements Message.
func (r *DescribeTopicResponse) AppendTo(dst []byte) []byte {
	dst = appendU16(dst, uint16(r.Error))
	dst = appendArrayLen(dst, len(r.Partitions))
	for _, p := range r.Partitions {
		dst = appendU32(dst, p.Partition)
		dst = appendU16(dst, p.Shard)
		dst = appendU64(dst, p.LogStart)
		dst = appendU64(dst, p.LogEnd)
		dst = appendU64(dst, p.Bytes)
		dst = appendString16(dst, p.Status)
		dst = appendLeadership(dst, p.Leader, p.LeaderEpoch, p.Replicas, p.ISR)
	}
	return appendConfigs(dst, r.Configs)
}

// Decode implements Message.
func (r *DescribeTopicResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Error = ErrorCode(d.U16())
	r.Partitions = grow(r.Partitions, d.ArrayLen(describePartitionSize))
	for i := range r.Partitions {
		p := &r.Partitions[i]
		p.Partition = d.U32()
		p.Shard = d.U16()
		p.LogStart = d.U64()
		p.LogEnd = d.U64()
		p.Bytes = d.U64()
		p.Status = d.String16()
		p.Leader, p.LeaderEpoch = d.U32(), d.U32()
		p.Replicas = decodeU32s(&d, p.Replicas)
		p.ISR = decodeU32s(&d, p.ISR)
	}
	r.Configs = decodeConfigs(&d, r.Configs)
	return d.End()
}
