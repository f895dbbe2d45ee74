package proto

import (
	"bytes"
	"testing"
)

func replicaMsgTypes() []msgType {
	return []msgType{
		{"ReplicaFetchRequest", func() Message { return new(ReplicaFetchRequest) }, []Message{
			&ReplicaFetchRequest{ReplicaID: 2, BrokerEpoch: 1 << 33, MaxWaitMs: 500, MaxBytes: 1 << 20, Topics: []ReplicaFetchTopic{
				{Name: []byte("orders"), Partitions: []ReplicaFetchPartition{
					{Partition: 0, LeaderEpoch: 3, FetchOffset: 1000, Flushed: 990, LastEpoch: 3},
					{Partition: 5, LeaderEpoch: 1, FetchOffset: 0, Flushed: 0, LastEpoch: -1},
				}},
				{Name: []byte("payments"), Partitions: []ReplicaFetchPartition{{Partition: 1, LeaderEpoch: 7, FetchOffset: 42, Flushed: 42, LastEpoch: 6}}},
			}},
			&ReplicaFetchRequest{ReplicaID: 3},
		}},
		{"ReplicaFetchResponse", func() Message { return new(ReplicaFetchResponse) }, []Message{
			&ReplicaFetchResponse{Topics: []ReplicaFetchTopicResponse{
				{Name: []byte("orders"), Partitions: []ReplicaFetchPartitionResponse{
					{ReplicaFetchPartitionHeader{Partition: 0, LeaderEpoch: 3, HighWatermark: 1000, LogStart: 0,
						RecordsLen: uint32(len(sampleBatch(3)))}, sampleBatch(3)},
					{ReplicaFetchPartitionHeader{Partition: 5, LeaderEpoch: 1, HighWatermark: 20, LogStart: 10,
						Diverging: true, DivergingEpoch: 0, DivergingEnd: 15}, []byte{}},
					{ReplicaFetchPartitionHeader{Partition: 6, Error: FencedLeaderEpoch}, []byte{}},
				}},
			}},
		}},
	}
}

func FuzzReplicaFetchRequest(f *testing.F)  { fuzzMessage(f, "ReplicaFetchRequest") }
func FuzzReplicaFetchResponse(f *testing.F) { fuzzMessage(f, "ReplicaFetchResponse") }

// The leader writes a replica fetch answer as headers plus the records
// slices it holds: the bytes equal ReplicaFetchResponse.AppendTo's, and
// ReplicaFetchResponseSize predicts the frame length.
func TestReplicaFetchResponseZeroCopy(t *testing.T) {
	b1, b2 := sampleBatch(2), sampleBatch(1)
	want := ReplicaFetchResponse{Topics: []ReplicaFetchTopicResponse{{Name: []byte("orders"),
		Partitions: []ReplicaFetchPartitionResponse{
			{ReplicaFetchPartitionHeader{Partition: 0, LeaderEpoch: 2, HighWatermark: 3}, append(append([]byte{}, b1...), b2...)},
			{ReplicaFetchPartitionHeader{Partition: 1, Diverging: true, DivergingEpoch: 1, DivergingEnd: 9}, []byte{}},
		}}}}
	var size ReplicaFetchResponseSize
	size.AddTopic([]byte("orders"))
	size.AddPartition(len(b1) + len(b2))
	size.AddPartition(0)
	hdr := AppendResponseHeader(nil, ResponseHeader{CorrelationID: 9}, size.BodyLen())
	hdr = AppendFetchResponseStart(hdr, 1)
	hdr = AppendFetchResponseTopicHeader(hdr, []byte("orders"), 2)
	for i, p := range want.Topics[0].Partitions {
		h := p.ReplicaFetchPartitionHeader
		h.RecordsLen = uint32(len(p.Records))
		hdr = AppendReplicaFetchPartitionHeader(hdr, &h)
		if i == 0 {
			hdr = append(append(hdr, b1...), b2...) // as two slices on the wire
		}
	}
	if len(hdr) != size.FrameLen() {
		t.Fatalf("frame is %d bytes, size says %d", len(hdr), size.FrameLen())
	}
	if exp := AppendResponse(nil, ResponseHeader{CorrelationID: 9}, &want); !bytes.Equal(hdr, exp) {
		t.Fatalf("zero-copy frame\n%x\nwant\n%x", hdr, exp)
	}
	var got ReplicaFetchResponse
	if err := got.Decode(hdr[ResponseHeaderSize:]); err != nil {
		t.Fatal(err)
	}
	if p := got.Topics[0].Partitions[0]; p.RecordsLen != uint32(len(b1)+len(b2)) || p.HighWatermark != 3 {
		t.Fatalf("decoded %+v", p.ReplicaFetchPartitionHeader)
	}
}
