package client

import (
	"errors"
	"time"

	"github.com/ringmq/ringmq/proto"
)

// Header is one record header.
type Header = proto.Header

// NoOffset is the Offset of a result whose offset is unknown (acks none).
const NoOffset = proto.NoOffset

// Record is one message, as the producer takes it and the consumer returns
// it.
//
// To the producer: Topic, Key, Value and Headers say what to send;
// Timestamp (zero: the time of Send) is stored with the record; Partition
// is read only by a ManualPartitioner; Offset is ignored. The producer
// copies Key, Value and Headers during Send, so the caller may reuse them
// as soon as Send returns.
//
// From the consumer every field is set; see Consumer.Poll for how long
// Key, Value and header values stay valid.
type Record struct {
	Topic     string
	Partition uint32
	Offset    uint64
	Timestamp time.Time
	Key       []byte // nil: a null key (partitioned sticky round robin)
	Value     []byte // nil: a null value
	Headers   []Header
	// Deliveries is how many times a shared subscription has handed this
	// record out, this time included (1: the first); 0 elsewhere.
	Deliveries int
}

// Result is the outcome of producing one record: where it was stored, or
// why it was not. With acks none, Offset is NoOffset.
type Result struct {
	Partition uint32
	Offset    uint64
	Err       error
}

// Acks is how much durability a produce request waits for.
type Acks int8

// Acks values. The zero value waits for the partition leader.
const (
	AcksLeader Acks = iota // appended on the partition leader (proto.AcksLeader)
	AcksAll                // appended on every in-sync replica (proto.AcksAll)
	AcksNone               // no response: a result reports only that the request was written
)

func (a Acks) wire() int8 {
	switch a {
	case AcksAll:
		return proto.AcksAll
	case AcksNone:
		return proto.AcksNone
	}
	return proto.AcksLeader
}

// Errors of the producer and the consumer. Failures wrap one of them or a
// proto.ErrorCode (match with errors.Is); the cause follows.
var (
	ErrProducerClosed  = errors.New("client: producer closed")
	ErrConsumerClosed  = errors.New("client: consumer closed")
	ErrDeliveryTimeout = errors.New("client: delivery timeout")
	ErrRecordTooLarge  = errors.New("client: record too large")
	ErrNotAssigned     = errors.New("client: partition not assigned")
)

// retriable reports whether a failed request may succeed if sent again: a
// retriable wire error (proto.ErrRetriable), a lost connection, or a
// partition without a leader.
func retriable(err error) bool {
	return errors.Is(err, proto.ErrRetriable) || errors.Is(err, ErrConnectionLost) || errors.Is(err, ErrNoLeader)
}
