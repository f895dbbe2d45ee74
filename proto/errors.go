package proto

import (
	"errors"
	"strconv"
)

// ErrorCode is a wire error code, carried in response headers and bodies.
// It implements error, so a code can be returned and wrapped as it is and
// matched with errors.Is(err, proto.UnknownTopic). None is not an error: use
// Err to turn a code into a nil-or-error value.
type ErrorCode uint16

// Wire error codes. They are persisted in clients: never renumber, never
// reuse a number; add new codes at the end of the table.
const (
	None                ErrorCode = 0
	Unknown             ErrorCode = 1
	CorruptMessage      ErrorCode = 2
	UnknownTopic        ErrorCode = 3
	UnknownPartition    ErrorCode = 4
	InvalidRequest      ErrorCode = 5
	UnsupportedVersion  ErrorCode = 6
	UnsupportedAPI      ErrorCode = 7
	TopicExists         ErrorCode = 8
	InvalidConfig       ErrorCode = 9
	InvalidTopicName    ErrorCode = 10
	OffsetOutOfRange    ErrorCode = 11
	MessageTooLarge     ErrorCode = 12
	RequestTimedOut     ErrorCode = 13
	NotLeader           ErrorCode = 14
	StorageError        ErrorCode = 15
	PartitionFenced     ErrorCode = 16
	NotEnoughReplicas   ErrorCode = 17
	ServerShuttingDown  ErrorCode = 18
	TooManyConnections  ErrorCode = 19
	GroupNotFound       ErrorCode = 20
	InvalidPartitions   ErrorCode = 21
	FrameTooLarge       ErrorCode = 22
	InvalidGroupName    ErrorCode = 23
	OutOfOrderSequence  ErrorCode = 24
	DuplicateSequence   ErrorCode = 25
	InvalidRequiredAcks ErrorCode = 26
	InvalidRecord       ErrorCode = 27
	UnsupportedBatch    ErrorCode = 28

	// Cluster: 30-39.
	FencedLeaderEpoch        ErrorCode = 30
	NotController            ErrorCode = 31
	BrokerNotAvailable       ErrorCode = 32
	StaleBrokerEpoch         ErrorCode = 33
	InvalidReplicationFactor ErrorCode = 34
	LeaderNotAvailable       ErrorCode = 35
	ControllerNotAvailable   ErrorCode = 36

	// Idempotent producers (40-44).
	ProducerFenced    ErrorCode = 40
	UnknownProducerID ErrorCode = 41
	DuplicateInFlight ErrorCode = 42
	TooManyProducers  ErrorCode = 43

	// Consumer groups (45-59).
	UnknownMemberID          ErrorCode = 45
	FencedMemberEpoch        ErrorCode = 46
	SubscriptionHeld         ErrorCode = 47
	SubscriptionTypeMismatch ErrorCode = 48
	GroupNotEmpty            ErrorCode = 49
	TooManyGroups            ErrorCode = 50
	TooManyMembers           ErrorCode = 51
	CoordinatorNotAvailable  ErrorCode = 52

	// Replication data path (60-61).
	UnknownLeaderEpoch ErrorCode = 60
)

// ErrRetriable matches, through errors.Is, every ErrorCode whose Retriable
// is true: errors.Is(err, proto.ErrRetriable).
var ErrRetriable = errors.New("proto: retriable error")

type errorInfo struct {
	name      string
	message   string
	retriable bool
}

// errorTable is indexed by ErrorCode. It is read-only.
var errorTable = [...]errorInfo{
	None:                {"NONE", "no error", false},
	Unknown:             {"UNKNOWN", "unexpected server error", false},
	CorruptMessage:      {"CORRUPT_MESSAGE", "message failed its CRC or could not be decoded", true},
	UnknownTopic:        {"UNKNOWN_TOPIC", "topic does not exist", false},
	UnknownPartition:    {"UNKNOWN_PARTITION", "partition does not exist", false},
	InvalidRequest:      {"INVALID_REQUEST", "request is malformed or has invalid fields", false},
	UnsupportedVersion:  {"UNSUPPORTED_VERSION", "protocol or API version not supported", false},
	UnsupportedAPI:      {"UNSUPPORTED_API", "API number unknown to the server", false},
	TopicExists:         {"TOPIC_EXISTS", "topic already exists", false},
	InvalidConfig:       {"INVALID_CONFIG", "topic configuration is invalid", false},
	InvalidTopicName:    {"INVALID_TOPIC_NAME", "topic name is invalid", false},
	OffsetOutOfRange:    {"OFFSET_OUT_OF_RANGE", "offset is outside the partition's log", false},
	MessageTooLarge:     {"MESSAGE_TOO_LARGE", "batch or request exceeds the size limit", false},
	RequestTimedOut:     {"REQUEST_TIMED_OUT", "request timed out", true},
	NotLeader:           {"NOT_LEADER", "this server does not lead the partition", true},
	StorageError:        {"STORAGE_ERROR", "disk error on the server", true},
	PartitionFenced:     {"PARTITION_FENCED", "partition is fenced after a write failure", false},
	NotEnoughReplicas:   {"NOT_ENOUGH_REPLICAS", "too few in-sync replicas for acks=all", true},
	ServerShuttingDown:  {"SERVER_SHUTTING_DOWN", "server is shutting down", true},
	TooManyConnections:  {"TOO_MANY_CONNECTIONS", "too many connections (the server's max_connections is reached)", true},
	GroupNotFound:       {"GROUP_NOT_FOUND", "consumer group does not exist", false},
	InvalidPartitions:   {"INVALID_PARTITIONS", "partition count is invalid", false},
	FrameTooLarge:       {"FRAME_TOO_LARGE", "frame exceeds max_frame_bytes", false},
	InvalidGroupName:    {"INVALID_GROUP_NAME", "group name is invalid (use 1-249 characters of [a-zA-Z0-9._-])", false},
	OutOfOrderSequence:  {"OUT_OF_ORDER_SEQUENCE", "producer sequence number is out of order", false},
	DuplicateSequence:   {"DUPLICATE_SEQUENCE", "batch was already appended", false},
	InvalidRequiredAcks: {"INVALID_REQUIRED_ACKS", "acks must be 0, 1 or -1", false},
	InvalidRecord:       {"INVALID_RECORD", "batch's records do not match its header (count, lengths or compressed payload)", false},
	UnsupportedBatch:    {"UNSUPPORTED_BATCH_VERSION", "record batch version 1 is no longer accepted; send version 2 (Kafka RecordBatch v2)", false},

	ProducerFenced:           {"PRODUCER_FENCED", "producer epoch is older than the partition's current one for this producer id", false},
	UnknownProducerID:        {"UNKNOWN_PRODUCER_ID", "the partition has no state for this producer id and the batch does not start at sequence 0", false},
	DuplicateInFlight:        {"DUPLICATE_IN_FLIGHT", "the batch repeats one still being written; retry to get its offsets", true},
	TooManyProducers:         {"TOO_MANY_PRODUCERS", "the partition remembers too many idempotent producers; retry once some expire", true},
	FencedLeaderEpoch:        {"FENCED_LEADER_EPOCH", "leader epoch is older than the partition's: refresh metadata", true},
	NotController:            {"NOT_CONTROLLER", "this node is not the controller leader", true},
	BrokerNotAvailable:       {"BROKER_NOT_AVAILABLE", "broker is not registered with the controller or not alive", true},
	StaleBrokerEpoch:         {"STALE_BROKER_EPOCH", "broker epoch is fenced: the broker must register again", false},
	InvalidReplicationFactor: {"INVALID_REPLICATION_FACTOR", "replication factor is invalid or above the alive brokers", false},
	LeaderNotAvailable:       {"LEADER_NOT_AVAILABLE", "partition has no leader: none of its in-sync replicas is alive", true},
	ControllerNotAvailable:   {"CONTROLLER_NOT_AVAILABLE", "no controller leader is elected or reachable yet", true},
	UnknownMemberID:          {"UNKNOWN_MEMBER_ID", "the group has no such member (it left or its session timed out); join again", false},
	FencedMemberEpoch:        {"FENCED_MEMBER_EPOCH", "the member does not own the partition in this epoch (it was reassigned); request refused", false},
	SubscriptionHeld:         {"SUBSCRIPTION_HELD", "the exclusive subscription is held by another member", false},
	SubscriptionTypeMismatch: {"SUBSCRIPTION_TYPE_MISMATCH", "the group has members of another subscription type", false},
	GroupNotEmpty:            {"GROUP_NOT_EMPTY", "the group has active members; stop them first", false},
	TooManyGroups:            {"TOO_MANY_GROUPS", "the coordinator holds its maximum number of groups", false},
	TooManyMembers:           {"TOO_MANY_MEMBERS", "the group has its maximum number of members", false},
	CoordinatorNotAvailable:  {"COORDINATOR_NOT_AVAILABLE", "the group coordinator is loading or could not persist; retry", true},
	UnknownLeaderEpoch:       {"UNKNOWN_LEADER_EPOCH", "the leader has not reached this leader epoch yet; retry", true},
}

// Known reports whether c is in this version's table (which has gaps:
// numbers are reserved in ranges per area).
func (c ErrorCode) Known() bool { return int(c) < len(errorTable) && errorTable[c].name != "" }

// String is the code's name, e.g. "UNKNOWN_TOPIC".
func (c ErrorCode) String() string {
	if !c.Known() {
		return "ERROR_CODE_" + strconv.Itoa(int(c))
	}
	return errorTable[c].name
}

// Message is a short human description of the code.
func (c ErrorCode) Message() string {
	if !c.Known() {
		return "error code unknown to this client"
	}
	return errorTable[c].message
}

// Error implements error: "proto: UNKNOWN_TOPIC (3): topic does not exist".
func (c ErrorCode) Error() string {
	return "proto: " + c.String() + " (" + strconv.Itoa(int(c)) + "): " + c.Message()
}

// Retriable reports whether the same request may succeed if sent again
// later. Codes unknown to this version are not retriable.
func (c ErrorCode) Retriable() bool { return c.Known() && errorTable[c].retriable }

// Is makes errors.Is(err, ErrRetriable) true for retriable codes. Codes are
// comparable values, so errors.Is(err, UnknownTopic) needs no help.
func (c ErrorCode) Is(target error) bool { return target == ErrRetriable && c.Retriable() }

// Err returns nil for None and c otherwise.
func (c ErrorCode) Err() error {
	if c == None {
		return nil
	}
	return c
}
