package reactor

import (
	"bytes"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

// TestProduceRefusesPoisonAndVersion1Batches: a batch with a valid CRC but
// lying records answers INVALID_RECORD, a version-1 batch answers
// UNSUPPORTED_BATCH_VERSION, neither is stored, and the partition goes on
// serving what was produced before and after.
func TestProduceRefusesPoisonAndVersion1Batches(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	defer c.Close()
	ringtest.CreateTopic(t, c, "p", 1)
	produce := func(batch []byte) proto.ProducePartitionResponse {
		t.Helper()
		req := &proto.ProduceRequest{Acks: 1, TimeoutMs: 10_000, Topics: []proto.ProduceTopic{{Name: []byte("p"),
			Partitions: []proto.ProducePartition{{Partition: 0, Records: batch}}}}}
		resp, err := c.Produce(ringtest.Ctx(t), req)
		if err != nil {
			t.Fatalf("produce: %v", err)
		}
		return resp.Topics[0].Partitions[0]
	}
	good := func(v string) []byte {
		var b proto.BatchBuilder
		b.Reset(nil)
		b.Append(1000, nil, []byte(v), nil)
		return bytes.Clone(b.Finish())
	}
	if r := produce(good("before")); r.Error != proto.None {
		t.Fatalf("good batch: %v", r.Error)
	}
	// Two records in the section, one in the header; CRC valid.
	var b proto.BatchBuilder
	b.Reset(nil)
	b.Append(1000, nil, []byte("a"), nil)
	b.Append(1000, nil, []byte("b"), nil)
	lying := proto.FinishBatch(bytes.Clone(b.Finish()), 0, 1, 1000, 1000, -1, -1, -1)
	garbage := proto.FinishBatch(append(make([]byte, proto.BatchHeaderSize), "garbage, not zstd"...),
		uint16(proto.CodecZstd), 1, 1000, 1000, -1, -1, -1)
	text, err := os.ReadFile("../proto/testdata/batch_v1.hex")
	if err != nil {
		t.Fatal(err)
	}
	v1 := hexFile(t, string(text))
	for _, c := range []struct {
		name  string
		batch []byte
		want  proto.ErrorCode
	}{
		{"lying record count", lying, proto.InvalidRecord},
		{"garbage zstd payload", garbage, proto.InvalidRecord},
		{"version 1", v1, proto.UnsupportedBatch},
	} {
		if r := produce(c.batch); r.Error != c.want {
			t.Errorf("%s: %v, want %v", c.name, r.Error, c.want)
		}
	}
	if r := produce(good("after")); r.Error != proto.None || r.BaseOffset != 1 {
		t.Fatalf("good batch after the refused ones: %v at %d, want offset 1", r.Error, r.BaseOffset)
	}
	got := ringtest.ReadPartition(t, c, "p", 0)
	if len(got) != 2 || string(got[0]) != "before" || string(got[1]) != "after" {
		t.Fatalf("partition holds %q, want [before after]", got)
	}
}

// hexFile decodes an annotated hex file (proto/testdata): hex digits, white
// space and '#' comments.
func hexFile(t *testing.T, text string) []byte {
	t.Helper()
	var digits strings.Builder
	for _, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(digits.String())
	if err != nil {
		t.Fatal(err)
	}
	return b
}
