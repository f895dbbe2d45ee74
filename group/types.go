package group

import (
	"fmt"
	"time"
)

// Type is a group's subscription type. Persisted: never change the values.
type Type uint8

const (
	// TypeFailover spreads the partitions evenly over the members (Kafka
	// consumer-group semantics); a dead member's partitions move to the rest.
	TypeFailover Type = 1
	// TypeExclusive lets one member at a time hold every partition.
	TypeExclusive Type = 2
	// TypeShared hands the records of every partition to all members,
	// each record to one member at a time under an ack lock.
	TypeShared Type = 3
	// TypeKeyShared is shared, but all records of a key go to one member
	// while it lives (per-key order).
	TypeKeyShared Type = 4
)

// String returns the type's Pulsar name.
func (t Type) String() string {
	switch t {
	case TypeFailover:
		return "failover"
	case TypeExclusive:
		return "exclusive"
	case TypeShared:
		return "shared"
	case TypeKeyShared:
		return "key_shared"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// ParseType parses a Pulsar subscription type name.
func ParseType(s string) (Type, error) {
	switch s {
	case "failover":
		return TypeFailover, nil
	case "exclusive":
		return TypeExclusive, nil
	case "shared":
		return TypeShared, nil
	case "key_shared":
		return TypeKeyShared, nil
	}
	return 0, fmt.Errorf("%w: subscription type %q (want failover, exclusive, shared or key_shared)", ErrInvalidRequest, s)
}

func (t Type) valid() bool { return t >= TypeFailover && t <= TypeKeyShared }

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition uint32
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s/%d", tp.Topic, tp.Partition) }

func tpLess(a, b TopicPartition) int {
	if a.Topic != b.Topic {
		if a.Topic < b.Topic {
			return -1
		}
		return 1
	}
	switch {
	case a.Partition < b.Partition:
		return -1
	case a.Partition > b.Partition:
		return 1
	}
	return 0
}

// Commit is a committed position: the next offset to read, and the
// client's metadata string.
type Commit struct {
	Offset   uint64
	Metadata string
}

// State is a group's state as described to administrators.
type State uint8

const (
	// StateEmpty: no members (commits may exist).
	StateEmpty State = iota
	// StateReconciling: some member owns a partition it must release or
	// waits for one it is to get.
	StateReconciling
	// StateStable: every member owns exactly its target assignment.
	StateStable
)

func (s State) String() string {
	switch s {
	case StateEmpty:
		return "empty"
	case StateReconciling:
		return "reconciling"
	case StateStable:
		return "stable"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Config bounds the coordinator. Zero fields take the defaults.
type Config struct {
	// MinSessionTimeout and MaxSessionTimeout bound a member's session
	// timeout (default 1 s and 5 min).
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration
	// HeartbeatInterval is what members are told to heartbeat at
	// (default 3 s).
	HeartbeatInterval time.Duration
	// MaxGroups bounds the groups one coordinator holds (default 100,000).
	MaxGroups int
	// MaxMembers bounds the members of one group (default 1,000).
	MaxMembers int
	// MaxTopicsPerMember bounds one member's subscription (default 1,000).
	MaxTopicsPerMember int
	// Share is the policy of shared and key_shared subscriptions.
	Share ShareConfig
}

// Limits on strings a client hands in; they end up in records.
const (
	MaxClientIDLen = 255
	MaxAddrLen     = 255
	MaxMetadataLen = 4096
	// MaxMemberIDLen bounds a member id: a client-chosen one, or a
	// generated client-id#epoch.
	MaxMemberIDLen = MaxClientIDLen + 11
)

func (c Config) withDefaults() Config {
	if c.MinSessionTimeout <= 0 {
		c.MinSessionTimeout = time.Second
	}
	if c.MaxSessionTimeout <= 0 {
		c.MaxSessionTimeout = 5 * time.Minute
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 3 * time.Second
	}
	if c.MaxGroups <= 0 {
		c.MaxGroups = 100_000
	}
	if c.MaxMembers <= 0 {
		c.MaxMembers = 1000
	}
	if c.MaxTopicsPerMember <= 0 {
		c.MaxTopicsPerMember = 1000
	}
	c.Share = c.Share.withDefaults()
	return c
}
