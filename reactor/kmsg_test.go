package reactor

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/kmsgtest"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

// TestKmsgBatchesStoredAsSent: RecordBatches encoded by franz-go's kmsg
// (every codec) are accepted, stored and fetched back byte for byte as
// sent, but for the base offset and partition leader epoch the broker
// stamps, and still decode with kmsg.
func TestKmsgBatchesStoredAsSent(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	defer c.Close()
	ringtest.CreateTopic(t, c, "k", 1)
	var sent [][]byte
	for _, codec := range kmsgtest.Codecs {
		batch, err := kmsgtest.Batch(codec.Codec, 1_700_000_000_000, kmsgtest.Sample())
		if err != nil {
			t.Fatal(err)
		}
		req := &proto.ProduceRequest{Acks: 1, TimeoutMs: 10_000, Topics: []proto.ProduceTopic{{Name: []byte("k"),
			Partitions: []proto.ProducePartition{{Partition: 0, Records: bytes.Clone(batch)}}}}}
		resp, err := c.Produce(ringtest.Ctx(t), req)
		if err != nil {
			t.Fatal(err)
		}
		if r := resp.Topics[0].Partitions[0]; r.Error != proto.None {
			t.Fatalf("%s: %v", codec.Name, r.Error)
		}
		sent = append(sent, batch)
	}
	req := &proto.FetchRequest{MaxBytes: 4 << 20, Topics: []proto.FetchTopic{{Name: []byte("k"),
		Partitions: []proto.FetchPartition{{Partition: 0, Offset: 0, PartitionMaxBytes: 4 << 20}}}}}
	resp, err := c.Fetch(ringtest.Ctx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	stored := resp.Topics[0].Partitions[0].Records
	next := uint64(0)
	for i, want := range sent {
		if len(stored) < len(want) {
			t.Fatalf("fetched %d bytes short of batch %d", len(want)-len(stored), i)
		}
		got := stored[:len(want)]
		stored = stored[len(want):]
		if binary.BigEndian.Uint64(got) != next || binary.BigEndian.Uint32(got[12:]) != 0 {
			t.Fatalf("%s: base offset %d (want %d), leader epoch %d (want 0)", kmsgtest.Codecs[i].Name,
				binary.BigEndian.Uint64(got), next, int32(binary.BigEndian.Uint32(got[12:])))
		}
		if !bytes.Equal(got[8:12], want[8:12]) || !bytes.Equal(got[16:], want[16:]) {
			t.Fatalf("%s: stored batch differs from the one sent beyond base offset and epoch", kmsgtest.Codecs[i].Name)
		}
		rb, recs, err := kmsgtest.Decode(got)
		if err != nil || len(recs) != len(kmsgtest.Sample()) || rb.FirstOffset != int64(next) {
			t.Fatalf("%s: kmsg decodes the stored batch: %v", kmsgtest.Codecs[i].Name, err)
		}
		next += uint64(len(recs))
	}
	if len(stored) != 0 {
		t.Fatalf("%d bytes fetched past the batches sent", len(stored))
	}
}
