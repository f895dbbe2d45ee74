package proto

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The numbers are part of the wire format: this list pins them.
func TestErrorCodeNumbersNeverChange(t *testing.T) {
	pinned := []struct {
		c    ErrorCode
		n    uint16
		name string
	}{
		{None, 0, "NONE"}, {Unknown, 1, "UNKNOWN"}, {CorruptMessage, 2, "CORRUPT_MESSAGE"},
		{UnknownTopic, 3, "UNKNOWN_TOPIC"}, {UnknownPartition, 4, "UNKNOWN_PARTITION"},
		{InvalidRequest, 5, "INVALID_REQUEST"}, {UnsupportedVersion, 6, "UNSUPPORTED_VERSION"},
		{UnsupportedAPI, 7, "UNSUPPORTED_API"}, {TopicExists, 8, "TOPIC_EXISTS"},
		{InvalidConfig, 9, "INVALID_CONFIG"}, {InvalidTopicName, 10, "INVALID_TOPIC_NAME"},
		{OffsetOutOfRange, 11, "OFFSET_OUT_OF_RANGE"}, {MessageTooLarge, 12, "MESSAGE_TOO_LARGE"},
		{RequestTimedOut, 13, "REQUEST_TIMED_OUT"}, {NotLeader, 14, "NOT_LEADER"},
		{StorageError, 15, "STORAGE_ERROR"}, {PartitionFenced, 16, "PARTITION_FENCED"},
		{NotEnoughReplicas, 17, "NOT_ENOUGH_REPLICAS"}, {ServerShuttingDown, 18, "SERVER_SHUTTING_DOWN"},
		{TooManyConnections, 19, "TOO_MANY_CONNECTIONS"}, {GroupNotFound, 20, "GROUP_NOT_FOUND"},
		{InvalidPartitions, 21, "INVALID_PARTITIONS"}, {FrameTooLarge, 22, "FRAME_TOO_LARGE"},
		{InvalidGroupName, 23, "INVALID_GROUP_NAME"}, {OutOfOrderSequence, 24, "OUT_OF_ORDER_SEQUENCE"},
		{DuplicateSequence, 25, "DUPLICATE_SEQUENCE"}, {InvalidRequiredAcks, 26, "INVALID_REQUIRED_ACKS"},
		{InvalidRecord, 27, "INVALID_RECORD"}, {UnsupportedBatch, 28, "UNSUPPORTED_BATCH_VERSION"},
		{ProducerFenced, 40, "PRODUCER_FENCED"}, {UnknownProducerID, 41, "UNKNOWN_PRODUCER_ID"},
		{DuplicateInFlight, 42, "DUPLICATE_IN_FLIGHT"}, {TooManyProducers, 43, "TOO_MANY_PRODUCERS"},
		{FencedLeaderEpoch, 30, "FENCED_LEADER_EPOCH"}, {NotController, 31, "NOT_CONTROLLER"},
		{BrokerNotAvailable, 32, "BROKER_NOT_AVAILABLE"}, {StaleBrokerEpoch, 33, "STALE_BROKER_EPOCH"},
		{InvalidReplicationFactor, 34, "INVALID_REPLICATION_FACTOR"},
		{LeaderNotAvailable, 35, "LEADER_NOT_AVAILABLE"}, {ControllerNotAvailable, 36, "CONTROLLER_NOT_AVAILABLE"},
		{UnknownMemberID, 45, "UNKNOWN_MEMBER_ID"}, {FencedMemberEpoch, 46, "FENCED_MEMBER_EPOCH"},
		{SubscriptionHeld, 47, "SUBSCRIPTION_HELD"}, {SubscriptionTypeMismatch, 48, "SUBSCRIPTION_TYPE_MISMATCH"},
		{GroupNotEmpty, 49, "GROUP_NOT_EMPTY"}, {TooManyGroups, 50, "TOO_MANY_GROUPS"},
		{TooManyMembers, 51, "TOO_MANY_MEMBERS"}, {CoordinatorNotAvailable, 52, "COORDINATOR_NOT_AVAILABLE"},
		{UnknownLeaderEpoch, 60, "UNKNOWN_LEADER_EPOCH"},
	}
	known := 0
	for c := range errorTable {
		if ErrorCode(c).Known() {
			known++
		}
	}
	if ErrorCode(29).Known() || ErrorCode(29).String() != "ERROR_CODE_29" {
		t.Fatal("a reserved gap in the table reads as a known code")
	}
	if len(pinned) != known {
		t.Fatalf("table has %d codes, %d pinned: pin the new ones here", known, len(pinned))
	}
	if ErrorCode(29).Known() || ErrorCode(29).String() != "ERROR_CODE_29" {
		t.Fatalf("the unassigned code 29 reads as %q", ErrorCode(29))
	}
	for _, p := range pinned {
		if uint16(p.c) != p.n || p.c.String() != p.name || p.c.Message() == "" {
			t.Errorf("code %d: %q %q", p.c, p.c.String(), p.c.Message())
		}
	}
}

func TestErrorCodeBehaviour(t *testing.T) {
	wrapped := fmt.Errorf("produce orders/3: %w", NotLeader)
	if !errors.Is(wrapped, NotLeader) || errors.Is(wrapped, UnknownTopic) {
		t.Fatal("errors.Is does not see through wrapping")
	}
	if !errors.Is(wrapped, ErrRetriable) || errors.Is(fmt.Errorf("x: %w", UnknownTopic), ErrRetriable) {
		t.Fatal("ErrRetriable does not follow Retriable")
	}
	var code ErrorCode
	if !errors.As(wrapped, &code) || code != NotLeader {
		t.Fatalf("errors.As = %v", code)
	}
	if None.Err() != nil || UnknownTopic.Err() != UnknownTopic {
		t.Fatal("Err() wrong")
	}
	if got := UnknownTopic.Error(); got != "proto: UNKNOWN_TOPIC (3): topic does not exist" {
		t.Fatalf("Error() = %q", got)
	}
	future := ErrorCode(999)
	if future.Known() || future.Retriable() || future.String() != "ERROR_CODE_999" ||
		!strings.Contains(future.Error(), "999") {
		t.Fatalf("unknown code: %q retriable %v", future.Error(), future.Retriable())
	}
	for _, c := range []ErrorCode{RequestTimedOut, NotLeader, ServerShuttingDown, TooManyConnections, NotEnoughReplicas,
		FencedLeaderEpoch, NotController, BrokerNotAvailable, LeaderNotAvailable, ControllerNotAvailable} {
		if !c.Retriable() {
			t.Errorf("%v should be retriable", c)
		}
	}
	for _, c := range []ErrorCode{UnknownTopic, InvalidRequest, TopicExists, PartitionFenced, MessageTooLarge,
		StaleBrokerEpoch, InvalidReplicationFactor} {
		if c.Retriable() {
			t.Errorf("%v should not be retriable", c)
		}
	}
}
