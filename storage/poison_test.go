package storage

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ringmq/ringmq/proto"
)

// poisonBatches are batches whose header and CRC are valid but whose
// records lie about themselves. Stored, each one stops every consumer at
// it for good, so an append must refuse them.
func poisonBatches(t *testing.T) map[string][]byte {
	t.Helper()
	var b proto.BatchBuilder
	good := func() []byte {
		b.Reset(nil)
		b.Append(1000, []byte("k0"), []byte("value zero"), nil)
		b.Append(1001, []byte("k1"), []byte("value one"), []proto.Header{{Key: "h", Value: []byte("v")}})
		return bytes.Clone(b.Finish())
	}
	h, err := proto.ParseBatchHeader(good())
	if err != nil {
		t.Fatal(err)
	}
	// refinish rewrites the header of batch with count records and codec
	// attrs, recomputing the CRC, as a hostile producer would.
	refinish := func(batch []byte, attrs uint16, count uint32) []byte {
		return proto.FinishBatch(batch, attrs, count, h.FirstTimestamp, h.MaxTimestamp, -1, -1, -1)
	}
	out := map[string][]byte{}
	out["count above records"] = refinish(good(), 0, 3)
	out["count below records"] = refinish(good(), 0, 1)
	lying := good()
	lying[proto.BatchHeaderSize] = 0x7e // first record's length: 63, past the end of the batch
	out["record length past the end"] = refinish(lying, 0, 2)
	lying = good()
	lying[proto.BatchHeaderSize+4] = 0x7e // first record's key length: 63, past the end of the record
	out["key length past the record"] = refinish(lying, 0, 2)
	trailing := append(good(), 0, 0, 0)
	out["bytes after the last record"] = refinish(trailing, 0, 2)
	for _, codec := range []proto.Codec{1, 2, 3, 4} {
		garbage := append(good()[:proto.BatchHeaderSize], []byte("this is not a compressed stream at all")...)
		out["garbage compressed as "+codec.String()] = refinish(garbage, uint16(codec), 2)
	}
	return out
}

// TestAppendRefusesPoisonBatch: a batch with a valid CRC but lying records
// (count, lengths, compressed payload) is refused at append with
// ErrBadBatch, and the log stays as it was.
func TestAppendRefusesPoisonBatch(t *testing.T) {
	for name, batch := range poisonBatches(t) {
		t.Run(name, func(t *testing.T) {
			if _, _, err := proto.ValidateBatch(batch); err != nil {
				t.Fatalf("the crafted batch must pass the header and CRC check: %v", err)
			}
			_, l := createTestLog(t, testConfig())
			op, err := prepareNow(l, batch)
			if err == nil {
				l.Appended(op)
				t.Fatalf("PrepareAppend accepted a batch with lying records; log end now %d", l.LogEnd())
			}
			if !errors.Is(err, ErrBadBatch) {
				t.Fatalf("PrepareAppend: %v, want ErrBadBatch", err)
			}
			if l.LogEnd() != 0 {
				t.Fatalf("log end %d after a refused append, want 0", l.LogEnd())
			}
		})
	}
}
