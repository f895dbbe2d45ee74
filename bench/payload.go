package bench

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"

	"github.com/ringmq/ringmq/proto"
)

// payloadSeed makes every run send the same bytes.
const payloadSeed = 0x72696e676d71

// fillerPayload returns size bytes of lowercase letters and spaces:
// compressible about as much as text, so --compression has something to do.
func fillerPayload(size int) []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyz      "
	r := rand.New(rand.NewPCG(payloadSeed, uint64(size)))
	p := make([]byte, size)
	for i := range p {
		p[i] = alphabet[r.IntN(len(alphabet))]
	}
	return p
}

// template is an uncompressed record batch of up to count records of
// msgSize bytes, built once. Before each send, stamp writes a send time
// (unix nanoseconds, little-endian) into the first 8 bytes of each record
// value, cuts the batch to the records wanted and redoes header and CRC:
// no allocation, no record encoding.
type template struct {
	buf      []byte
	valueAt  []int // offset of each record's value in buf
	recordTo []int // offset just past each record
	msgSize  int
}

func newTemplate(count, msgSize int) *template {
	payload := fillerPayload(msgSize)
	var b proto.BatchBuilder
	b.Reset(make([]byte, 0, proto.BatchHeaderSize+count*(msgSize+24)))
	t := &template{valueAt: make([]int, count), recordTo: make([]int, count), msgSize: msgSize}
	for i := range count {
		b.Append(0, nil, payload, nil)
		// The record ends with its value and a one-byte header count (0).
		t.recordTo[i] = b.Size()
		t.valueAt[i] = b.Size() - 1 - msgSize
	}
	t.buf = b.Finish()
	return t
}

// capacity is the most records one stamped batch holds.
func (t *template) capacity() int { return len(t.valueAt) }

// stamp returns a finished batch of the first n records, record i carrying
// send time firstNs + i*stepNs, not idempotent. The batch aliases the
// template until the next stamp.
func (t *template) stamp(n int, firstNs, stepNs int64) []byte {
	return t.stampProducer(n, firstNs, stepNs, proto.NoProducerID, -1, -1)
}

// stampProducer is stamp with the producer id, epoch and base sequence of
// an idempotent producer.
func (t *template) stampProducer(n int, firstNs, stepNs, id int64, epoch int16, seq int32) []byte {
	if n < 1 || n > len(t.valueAt) {
		panic(fmt.Sprintf("BUG: bench: stamp %d records of a %d-record template", n, len(t.valueAt)))
	}
	for i, off := range t.valueAt[:n] {
		binary.LittleEndian.PutUint64(t.buf[off:], uint64(firstNs+int64(i)*stepNs))
	}
	ms := firstNs / 1e6
	return proto.FinishBatch(t.buf[:t.recordTo[n-1]], 0, uint32(n), ms, ms, id, epoch, seq)
}

// sendTime reads the send time a record's value carries.
func sendTime(value []byte) (int64, bool) {
	if len(value) < 8 {
		return 0, false
	}
	return int64(binary.LittleEndian.Uint64(value)), true
}
