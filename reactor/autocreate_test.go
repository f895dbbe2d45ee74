package reactor

import (
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

func TestAutoCreateTopics(t *testing.T) {
	for _, auto := range []bool{false, true} {
		cfg := testConfig(t, t.TempDir())
		cfg.Topics.AutoCreate = auto
		cfg.Topics.DefaultPartitions = 3
		srv := startServer(t, cfg)
		c := ringtest.Dial(t, srv.Addr(), client.Options{})
		var b proto.BatchBuilder
		b.Reset(nil)
		b.Append(time.Now().UnixMilli(), nil, []byte("v"), nil)
		resp, err := c.Produce(ringtest.Ctx(t), &proto.ProduceRequest{Acks: 1, Topics: []proto.ProduceTopic{{Name: []byte("fresh"),
			Partitions: []proto.ProducePartition{{Partition: 2, Records: b.Finish()}}}}})
		if err != nil {
			t.Fatal(err)
		}
		code := resp.Topics[0].Partitions[0].Error
		if !auto {
			if code != proto.UnknownTopic {
				t.Fatalf("auto_create off: produce to a new topic gave %v", code)
			}
			continue
		}
		if code != proto.None {
			t.Fatalf("auto_create on: produce gave %v", code)
		}
		md, err := c.Metadata(ringtest.Ctx(t), &proto.MetadataRequest{Topics: []string{"fresh", "also-fresh"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, mt := range md.Topics {
			if mt.Error != proto.None || len(mt.Partitions) != 3 {
				t.Fatalf("topic %s: %v with %d partitions", mt.Name, mt.Error, len(mt.Partitions))
			}
		}
	}
}

// Deleting a topic forgets the groups' commits on it: a topic created again
// under the same name starts from scratch.
func TestDeleteTopicForgetsCommits(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "gone", 1)
	produceOne(t, c, "gone", 0, []byte("x"))
	if _, err := c.OffsetCommit(ringtest.Ctx(t), &proto.OffsetCommitRequest{Group: []byte("g"), Topics: []proto.OffsetCommitTopic{{
		Name: []byte("gone"), Partitions: []proto.OffsetCommitPartition{{Partition: 0, Offset: 1}}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteTopic(ringtest.Ctx(t), &proto.DeleteTopicRequest{Name: "gone"}); err != nil {
		t.Fatal(err)
	}
	ringtest.CreateTopic(t, c, "gone", 1)
	resp, err := c.OffsetFetch(ringtest.Ctx(t), &proto.OffsetFetchRequest{Group: []byte("g"), Topics: []proto.OffsetFetchTopic{{
		Name: []byte("gone"), Partitions: []uint32{0}}}})
	if err != nil {
		t.Fatal(err)
	}
	if off := resp.Topics[0].Partitions[0].Offset; off != proto.NoOffset {
		t.Fatalf("recreated topic still has commit %d", off)
	}
	if got := ringtest.ListOffset(t, c, "gone", 0, -1); got != 0 {
		t.Fatalf("recreated topic has log end %d", got)
	}
}
