package proto

import (
	"encoding/binary"
	"math"
)

// InitProducer: an idempotent producer asks for its producer id and epoch
// once, before its first batch, and stamps them with a sequence number per
// partition into every batch it sends (BatchBuilder.SetProducer). An admin
// message: it goes to the server's admin goroutine, which hands out ids
// from a durable counter.
//
//	20 InitProducer  producer_id i64, producer_epoch i16
//	                 → error u16, producer_id i64, producer_epoch i16
//
// A request with producer_id NoProducerID asks for a new id (epoch 0). A
// request naming an id the server issued asks for that id's next epoch
// (Kafka's KIP-360 bump); at the last epoch the answer is a new id. Any
// other id is UNKNOWN_PRODUCER_ID.

// NoProducerID is the producer id of a batch that is not idempotent, and
// of an InitProducer request that asks for a new id. Never change it.
const NoProducerID int64 = -1

// MaxProducerEpoch is the last epoch of a producer id; InitProducer
// answers a bump past it with a new id.
const MaxProducerEpoch int16 = math.MaxInt16 - 1

// InitProducerRequest asks for a producer id: a new one (ProducerID =
// NoProducerID), or the next epoch of one the server issued.
type InitProducerRequest struct {
	ProducerID int64
	Epoch      int16
}

// InitProducerResponse carries the producer id and epoch to stamp into
// batches, or the error.
type InitProducerResponse struct {
	Error      ErrorCode
	ProducerID int64
	Epoch      int16
}

// APIKey implements Request.
func (*InitProducerRequest) APIKey() APIKey { return APIInitProducer }

// AppendTo implements Message.
func (r *InitProducerRequest) AppendTo(dst []byte) []byte {
	dst = appendI64(dst, r.ProducerID)
	return appendI16(dst, r.Epoch)
}

// Decode implements Message.
func (r *InitProducerRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.ProducerID = d.I64()
	r.Epoch = int16(d.U16())
	return d.End()
}

// AppendTo implements Message.
func (r *InitProducerResponse) AppendTo(dst []byte) []byte {
	dst = appendU16(dst, uint16(r.Error))
	dst = appendI64(dst, r.ProducerID)
	return appendI16(dst, r.Epoch)
}

// Decode implements Message.
func (r *InitProducerResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Error = ErrorCode(d.U16())
	r.ProducerID = d.I64()
	r.Epoch = int16(d.U16())
	return d.End()
}

// SetBatchProducer rewrites the producer id, epoch and base sequence of
// the whole batch at the start of b and recomputes its CRC: a client that
// starts a partition's sequence over (a new epoch) restamps batches it
// had already sealed. b must hold the whole batch (len(b) ≥ its size).
func SetBatchProducer(b []byte, id int64, epoch int16, baseSequence int32) {
	h, err := ParseBatchHeader(b)
	if err != nil || len(b) < h.Size() {
		panic("BUG: proto: SetBatchProducer on a short or corrupt batch")
	}
	be := binary.BigEndian
	be.PutUint64(b[offProducerID:], uint64(id))
	be.PutUint16(b[offProducerEpoch:], uint16(epoch))
	be.PutUint32(b[offBaseSequence:], uint32(baseSequence))
	be.PutUint32(b[offCRC:], CRC32C(b[offAttributes:h.Size()]))
}
