package proto

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func producerMsgTypes() []msgType {
	return []msgType{
		{"InitProducerRequest", func() Message { return new(InitProducerRequest) }, []Message{
			&InitProducerRequest{ProducerID: NoProducerID, Epoch: -1},
			&InitProducerRequest{ProducerID: 1<<40 | 7, Epoch: 3},
		}},
		{"InitProducerResponse", func() Message { return new(InitProducerResponse) }, []Message{
			&InitProducerResponse{ProducerID: 42, Epoch: 0},
			&InitProducerResponse{Error: UnknownProducerID, ProducerID: NoProducerID, Epoch: -1},
		}},
	}
}

func FuzzInitProducerRequest(f *testing.F)  { fuzzMessage(f, "InitProducerRequest") }
func FuzzInitProducerResponse(f *testing.F) { fuzzMessage(f, "InitProducerResponse") }

// The InitProducer layouts byte for byte (little-endian, like every frame).
func TestInitProducerEncoding(t *testing.T) {
	req := (&InitProducerRequest{ProducerID: 0x0102030405060708, Epoch: 0x0a0b}).AppendTo(nil)
	if got, want := hex.EncodeToString(req), "08070605040302010b0a"; got != want {
		t.Fatalf("request %s, want %s", got, want)
	}
	resp := (&InitProducerResponse{Error: ProducerFenced, ProducerID: 5, Epoch: 1}).AppendTo(nil)
	if got, want := hex.EncodeToString(resp), "280005000000000000000100"; got != want {
		t.Fatalf("response %s, want %s", got, want)
	}
	if APIInitProducer != 20 || APIInitProducer.String() != "InitProducer" || !APIInitProducer.Supports(0) {
		t.Fatalf("API %d %q", APIInitProducer, APIInitProducer)
	}
	for k := APIAddPartitions + 1; k < APIInitProducer; k++ {
		if k.Supports(0) || k.String() != "API_"+itoa(int(k)) {
			t.Errorf("reserved API %d: %q supported %v", k, k, k.Supports(0))
		}
	}
}

func TestProducerErrorCodes(t *testing.T) {
	pinned := []struct {
		c         ErrorCode
		n         uint16
		name      string
		retriable bool
	}{
		{ProducerFenced, 40, "PRODUCER_FENCED", false},
		{UnknownProducerID, 41, "UNKNOWN_PRODUCER_ID", false},
		{DuplicateInFlight, 42, "DUPLICATE_IN_FLIGHT", true},
		{TooManyProducers, 43, "TOO_MANY_PRODUCERS", true},
	}
	for _, p := range pinned {
		if uint16(p.c) != p.n || p.c.String() != p.name || p.c.Message() == "" || p.c.Retriable() != p.retriable {
			t.Errorf("code %d: %q %q retriable %v", p.c, p.c.String(), p.c.Message(), p.c.Retriable())
		}
	}
	for c := UnsupportedBatch + 1; c < ProducerFenced; c++ {
		if c.Known() || c.String() != "ERROR_CODE_"+itoa(int(c)) || c.Retriable() {
			t.Errorf("reserved code %d: known %v %q", c, c.Known(), c)
		}
	}
}

// SetBatchProducer restamps a sealed batch, plain or compressed, so that it
// validates with the new fields and the same records.
func TestSetBatchProducer(t *testing.T) {
	for _, codec := range []Codec{CodecNone, CodecLZ4} {
		var b BatchBuilder
		b.Reset(nil)
		b.SetProducer(7, 0, 10)
		for i := 0; i < 3; i++ {
			b.Append(1_700_000_000_000, nil, []byte("value"), nil)
		}
		batch := CompressBatch(nil, b.Finish(), codec)
		before := append([]byte(nil), batch...)
		SetBatchProducer(batch, 9, 2, 0)
		h, rest, err := ValidateBatch(batch)
		if err != nil || len(rest) != 0 {
			t.Fatalf("%v: restamped batch: %v (%d left)", codec, err, len(rest))
		}
		if h.ProducerID != 9 || h.ProducerEpoch != 2 || h.BaseSequence != 0 || h.RecordCount != 3 {
			t.Fatalf("%v: header %+v", codec, h)
		}
		if !bytes.Equal(batch[BatchHeaderSize:], before[BatchHeaderSize:]) {
			t.Fatalf("%v: records changed", codec)
		}
	}
}
