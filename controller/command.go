package controller

import (
	"fmt"

	"github.com/ringmq/ringmq/acl"
)

// CommandType names a metadata change. Persisted in the Raft log: never
// change these values.
type CommandType uint8

const (
	CmdRegisterBroker CommandType = 1  // Broker, Addr, LogsIntact
	CmdFenceBroker    CommandType = 2  // Broker, BrokerEpoch
	CmdCreateTopic    CommandType = 3  // Topic, Partitions, Replicas, Configs
	CmdDeleteTopic    CommandType = 4  // Topic
	CmdExpandISR      CommandType = 5  // Topic, Partition, PartitionEpoch, Broker, BrokerEpoch
	CmdShrinkISR      CommandType = 6  // Topic, Partition, PartitionEpoch, Broker
	CmdElectLeader    CommandType = 7  // Topic, Partition, PartitionEpoch, Broker (the new leader)
	CmdAlterTopic     CommandType = 8  // Topic, Configs (the whole new set of overrides)
	CmdAddPartitions  CommandType = 9  // Topic, Partitions (the new total), Replicas (of the new ones)
	CmdUpsertUser     CommandType = 10 // User, Credential (one mechanism's; the others are kept)
	CmdDeleteUser     CommandType = 11 // User
	CmdCreateACLs     CommandType = 12 // ACLs (entries present already are kept once)
	CmdDeleteACLs     CommandType = 13 // ACLs (those equal to one of them are removed)

	snapshotType byte = 0x80 // the frame type of a snapshot, never a command
)

func (t CommandType) String() string {
	switch t {
	case CmdRegisterBroker:
		return "register-broker"
	case CmdFenceBroker:
		return "fence-broker"
	case CmdCreateTopic:
		return "create-topic"
	case CmdDeleteTopic:
		return "delete-topic"
	case CmdExpandISR:
		return "expand-isr"
	case CmdShrinkISR:
		return "shrink-isr"
	case CmdElectLeader:
		return "elect-leader"
	case CmdAlterTopic:
		return "alter-topic"
	case CmdAddPartitions:
		return "add-partitions"
	case CmdUpsertUser:
		return "upsert-user"
	case CmdDeleteUser:
		return "delete-user"
	case CmdCreateACLs:
		return "create-acls"
	case CmdDeleteACLs:
		return "delete-acls"
	}
	return fmt.Sprintf("command-%d", uint8(t))
}

// Limits a command must respect; Apply and ParseCommand both enforce them.
const (
	MaxAddrLen     = 255
	MaxPartitions  = 1 << 16
	MaxReplicas    = 16
	MaxConfigs     = 64
	MaxConfigKey   = 255
	MaxConfigValue = 4096
	maxBrokerID    = 1<<31 - 1
)

// ConfigEntry is one topic config override, as key and value strings; the
// driver validates them (config.ParseTopicOverrides) before proposing.
type ConfigEntry struct {
	Key, Value string
}

// Command is one metadata change as it travels through the Raft log. Only
// the fields listed beside its type are encoded; the others stay zero.
type Command struct {
	Type CommandType
	// Proposer and Request identify the proposal so that the proposing
	// node's driver can answer the request that waits for it.
	Proposer uint64
	Request  uint64

	Broker         int32
	Addr           string
	LogsIntact     bool // registration: the broker found its partition data on disk
	BrokerEpoch    uint64
	Topic          string
	Partition      int32
	Partitions     int32
	Replicas       int32
	Configs        []ConfigEntry // sorted by key, keys unique
	PartitionEpoch int32
	User           string
	Credential     Credential
	ACLs           []acl.Entry
}

// AppendCommand appends c as one frame (see doc.go).
func AppendCommand(dst []byte, c Command) []byte {
	return appendFrame(dst, byte(c.Type), func(b []byte) []byte {
		b = appendUvarint(b, c.Proposer)
		b = appendUvarint(b, c.Request)
		switch c.Type {
		case CmdRegisterBroker:
			b = appendUvarint(b, uint64(c.Broker))
			b = appendString(b, c.Addr)
			b = appendBool(b, c.LogsIntact)
		case CmdFenceBroker:
			b = appendUvarint(b, uint64(c.Broker))
			b = appendUvarint(b, c.BrokerEpoch)
		case CmdCreateTopic:
			b = appendString(b, c.Topic)
			b = appendUvarint(b, uint64(c.Partitions))
			b = appendUvarint(b, uint64(c.Replicas))
			b = appendConfigs(b, c.Configs)
		case CmdAlterTopic:
			b = appendString(b, c.Topic)
			b = appendConfigs(b, c.Configs)
		case CmdAddPartitions:
			b = appendString(b, c.Topic)
			b = appendUvarint(b, uint64(c.Partitions))
			b = appendUvarint(b, uint64(c.Replicas))
		case CmdDeleteTopic:
			b = appendString(b, c.Topic)
		case CmdUpsertUser:
			b = appendString(b, c.User)
			b = appendCredential(b, c.Credential)
		case CmdDeleteUser:
			b = appendString(b, c.User)
		case CmdCreateACLs, CmdDeleteACLs:
			b = appendACLs(b, c.ACLs)
		case CmdExpandISR, CmdShrinkISR, CmdElectLeader:
			b = appendString(b, c.Topic)
			b = appendUvarint(b, uint64(c.Partition))
			b = appendUvarint(b, uint64(c.PartitionEpoch))
			b = appendUvarint(b, uint64(c.Broker))
			if c.Type == CmdExpandISR {
				b = appendUvarint(b, c.BrokerEpoch)
			}
		}
		return b
	})
}

// ParseCommand decodes one command frame from src and returns what follows
// it. A bad frame is ErrCorrupt (or ErrVersion); an unknown type is
// ErrUnknownCommandType.
func ParseCommand(src []byte) (Command, []byte, error) {
	typ, fields, rest, err := parseFrame(src, MaxCommandSize)
	if err != nil {
		return Command{}, src, err
	}
	c := Command{Type: CommandType(typ)}
	r := reader{b: fields}
	c.Proposer = r.uvarint(^uint64(0), "proposer")
	c.Request = r.uvarint(^uint64(0), "request")
	switch c.Type {
	case CmdRegisterBroker:
		c.Broker = r.int32("broker")
		c.Addr = r.string(MaxAddrLen, "addr")
		c.LogsIntact = r.bool("logs intact")
	case CmdFenceBroker:
		c.Broker = r.int32("broker")
		c.BrokerEpoch = r.uvarint(^uint64(0), "broker epoch")
	case CmdCreateTopic:
		c.Topic = r.string(maxNameLen, "topic")
		c.Partitions = int32(r.uvarint(MaxPartitions, "partitions"))
		c.Replicas = int32(r.uvarint(MaxReplicas, "replicas"))
		c.Configs = r.configs()
	case CmdAlterTopic:
		c.Topic = r.string(maxNameLen, "topic")
		c.Configs = r.configs()
	case CmdAddPartitions:
		c.Topic = r.string(maxNameLen, "topic")
		c.Partitions = int32(r.uvarint(MaxPartitions, "partitions"))
		c.Replicas = int32(r.uvarint(MaxReplicas, "replicas"))
	case CmdDeleteTopic:
		c.Topic = r.string(maxNameLen, "topic")
	case CmdUpsertUser:
		c.User = r.string(MaxUserName, "user")
		c.Credential = r.credential()
	case CmdDeleteUser:
		c.User = r.string(MaxUserName, "user")
	case CmdCreateACLs, CmdDeleteACLs:
		c.ACLs = r.acls(maxACLFrameSize, "acls")
	case CmdExpandISR, CmdShrinkISR, CmdElectLeader:
		c.Topic = r.string(maxNameLen, "topic")
		c.Partition = r.int32("partition")
		c.PartitionEpoch = r.int32("partition epoch")
		c.Broker = r.int32("broker")
		if c.Type == CmdExpandISR {
			c.BrokerEpoch = r.uvarint(^uint64(0), "broker epoch")
		}
	default:
		return Command{}, src, fmt.Errorf("%w: %d", ErrUnknownCommandType, typ)
	}
	if err := r.done(c.Type.String()); err != nil {
		return Command{}, src, err
	}
	return c, rest, nil
}

func appendConfigs(b []byte, cs []ConfigEntry) []byte {
	b = appendUvarint(b, uint64(len(cs)))
	for _, e := range cs {
		b = appendString(b, e.Key)
		b = appendString(b, e.Value)
	}
	return b
}

func (r *reader) configs() []ConfigEntry {
	n := r.count(MaxConfigs, "configs")
	if n == 0 {
		return nil
	}
	cs := make([]ConfigEntry, n)
	for i := range cs {
		cs[i].Key = r.string(MaxConfigKey, "config key")
		cs[i].Value = r.string(MaxConfigValue, "config value")
	}
	return cs
}
