package controller

import "errors"

// Rejections. Apply returns them for a committed command that the state
// refuses; every node refuses it the same way, so the state never diverges.
// Node returns the first three before anything is proposed.
var (
	ErrNotController         = errors.New("controller: this node is not the controller leader")
	ErrInvalid               = errors.New("controller: invalid command")
	ErrNotEnoughBrokers      = errors.New("controller: replication factor exceeds live brokers")
	ErrTopicExists           = errors.New("controller: topic already exists")
	ErrUnknownTopic          = errors.New("controller: unknown topic or partition")
	ErrUnknownBroker         = errors.New("controller: unknown broker")
	ErrStaleBrokerEpoch      = errors.New("controller: stale broker epoch")
	ErrBrokerFenced          = errors.New("controller: broker is fenced")
	ErrStalePartitionEpoch   = errors.New("controller: stale partition epoch")
	ErrNotReplica            = errors.New("controller: broker is not a replica of the partition")
	ErrNotInISR              = errors.New("controller: broker is not in the ISR")
	ErrAlreadyInISR          = errors.New("controller: broker is already in the ISR")
	ErrPartitionOffline      = errors.New("controller: partition has no leader")
	ErrAlreadyLeader         = errors.New("controller: broker already leads the partition")
	ErrUnknownUser           = errors.New("controller: unknown user")
	ErrCorrupt               = errors.New("controller: corrupt record")
	ErrVersion               = errors.New("controller: unknown record version")
	ErrUnknownCommandType    = errors.New("controller: unknown command type")
	ErrSnapshotIndexMismatch = errors.New("controller: snapshot data does not match its raft index")
)

// ErrNoLeader means the Raft group has no known leader to take a proposal
// (an election is under way); the caller retries later.
var ErrNoLeader = errors.New("controller: no controller leader; retry")
