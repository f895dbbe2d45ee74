package proto

import (
	"bytes"
	"testing"

	"github.com/ringmq/ringmq/internal/kmsgtest"
)

// Cross-checks with an independent implementation of Kafka's RecordBatch
// v2 (franz-go's kmsg and the codecs' stock libraries, see
// internal/kmsgtest), both ways, with every codec.

const kmsgFirstTS = 1_700_000_000_000

// buildSample encodes kmsgtest.Sample with BatchBuilder.
func buildSample() []byte {
	var b BatchBuilder
	b.Reset(nil)
	for _, r := range kmsgtest.Sample() {
		var hs []Header
		for _, h := range r.Headers {
			hs = append(hs, Header{Key: h.Key, Value: h.Value})
		}
		b.Append(kmsgFirstTS+r.TimestampDelta, r.Key, r.Value, hs)
	}
	return bytes.Clone(b.Finish())
}

// TestKmsgBatchesReadByRingmq: batches kmsg encodes validate (header, CRC
// and records) and iterate to the records it was given; uncompressed, they
// are byte-identical to what BatchBuilder writes for the same records.
func TestKmsgBatchesReadByRingmq(t *testing.T) {
	want := kmsgtest.Sample()
	ours := buildSample()
	for _, c := range kmsgtest.Codecs {
		t.Run(c.Name, func(t *testing.T) {
			batch, err := kmsgtest.Batch(c.Codec, kmsgFirstTS, want)
			if err != nil {
				t.Fatal(err)
			}
			h, rest, err := ValidateBatch(batch)
			if err != nil || len(rest) != 0 {
				t.Fatalf("ValidateBatch: %v", err)
			}
			if h.Codec().String() != c.Name || h.LeaderEpoch != -1 || h.RecordCount != uint32(len(want)) {
				t.Fatalf("header %+v", h)
			}
			if err := ValidateRecords(batch); err != nil {
				t.Fatalf("ValidateRecords: %v", err)
			}
			it, _, err := NewBatchIter(nil, batch)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; it.Next(); i++ {
				r, w := it.Record(), want[i]
				hs := r.Headers(nil)
				same := r.Offset == uint64(i) && r.Timestamp == kmsgFirstTS+w.TimestampDelta &&
					sameBytes(r.Key, w.Key) && sameBytes(r.Value, w.Value) && len(hs) == len(w.Headers)
				for j := 0; same && j < len(hs); j++ {
					same = hs[j].Key == w.Headers[j].Key && sameBytes(hs[j].Value, w.Headers[j].Value)
				}
				if !same {
					t.Fatalf("record %d: %+v headers %+v\nwant %+v", i, r, hs, w)
				}
			}
			if it.Err() != nil {
				t.Fatal(it.Err())
			}
			section, err := DecompressRecords(nil, batch)
			if err != nil || !bytes.Equal(section, ours[BatchHeaderSize:]) {
				t.Fatalf("records section differs from BatchBuilder's (%v)", err)
			}
			if c.Codec == kmsgtest.None && !bytes.Equal(batch, ours) {
				t.Fatalf("kmsg batch\n%x\nBatchBuilder\n%x", batch, ours)
			}
		})
	}
}

// TestRingmqBatchesReadByKmsg: batches BatchBuilder and CompressBatch
// write, with base offset and leader epoch stamped as the broker stores
// them, decode with kmsg to the same header fields and records.
func TestRingmqBatchesReadByKmsg(t *testing.T) {
	want := kmsgtest.Sample()
	for _, c := range kmsgtest.Codecs {
		t.Run(c.Name, func(t *testing.T) {
			batch := CompressBatch(nil, buildSample(), Codec(c.Codec))
			SetBaseOffset(batch, 1234)
			SetLeaderEpoch(batch, 7)
			rb, recs, err := kmsgtest.Decode(batch)
			if err != nil {
				t.Fatalf("kmsg: %v", err)
			}
			if rb.FirstOffset != 1234 || rb.PartitionLeaderEpoch != 7 || rb.Attributes != c.Codec ||
				rb.LastOffsetDelta != int32(len(want)-1) || rb.FirstTimestamp != kmsgFirstTS ||
				rb.MaxTimestamp != kmsgFirstTS+1<<40 || rb.ProducerID != -1 || rb.NumRecords != int32(len(want)) {
				t.Fatalf("kmsg header %+v", rb)
			}
			for i, r := range recs {
				w := want[i]
				same := r.OffsetDelta == int32(i) && r.TimestampDelta64 == w.TimestampDelta &&
					sameBytes(r.Key, w.Key) && sameBytes(r.Value, w.Value) && len(r.Headers) == len(w.Headers)
				for j := 0; same && j < len(r.Headers); j++ {
					same = r.Headers[j].Key == w.Headers[j].Key && sameBytes(r.Headers[j].Value, w.Headers[j].Value)
				}
				if !same {
					t.Fatalf("record %d: %+v\nwant %+v", i, r, w)
				}
			}
		})
	}
}
