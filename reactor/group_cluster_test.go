package reactor

import (
	"errors"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

// On one node FindCoordinator names the node itself at once; the first one
// has the broker create the internal topic __consumer_offsets
// (groups.partitions partitions), which clients can neither create, delete
// nor grow.
func TestFindCoordinatorAndInternalTopic(t *testing.T) {
	srv := startServer(t, groupTestConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	fc, err := c.FindCoordinator(ringtest.Ctx(t), &proto.FindCoordinatorRequest{Group: "billing"})
	if err != nil {
		t.Fatal(err)
	}
	if fc.NodeID != srv.cl.self || fc.Partition != uint32(groupPartitionOf("billing", 3)) {
		t.Fatalf("FindCoordinator: %+v, want node %d partition %d", fc, srv.cl.self, groupPartitionOf("billing", 3))
	}
	if _, err := c.FindCoordinator(ringtest.Ctx(t), &proto.FindCoordinatorRequest{Group: "no/slash"}); !errors.Is(err, proto.InvalidGroupName) {
		t.Fatalf("FindCoordinator of an invalid name: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		md, err := c.Metadata(ringtest.Ctx(t), &proto.MetadataRequest{Topics: []string{proto.OffsetsTopic}})
		if err == nil && md.Topics[0].Error == proto.None {
			if n := len(md.Topics[0].Partitions); n != 3 {
				t.Fatalf("%s has %d partitions, want groups.partitions = 3", proto.OffsetsTopic, n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not created within 20s: %v %+v", proto.OffsetsTopic, err, md)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	if _, err := c.DeleteTopic(ringtest.Ctx(t), &proto.DeleteTopicRequest{Name: proto.OffsetsTopic}); !errors.Is(err, proto.InternalTopic) {
		t.Fatalf("delete %s: %v, want INTERNAL_TOPIC", proto.OffsetsTopic, err)
	}
	if _, err := c.CreateTopic(ringtest.Ctx(t), &proto.CreateTopicRequest{Name: proto.OffsetsTopic, Partitions: 1}); !errors.Is(err, proto.InternalTopic) {
		t.Fatalf("create %s: %v, want INTERNAL_TOPIC", proto.OffsetsTopic, err)
	}
	if _, err := c.AddPartitions(ringtest.Ctx(t), &proto.AddPartitionsRequest{Name: proto.OffsetsTopic, Partitions: 9}); !errors.Is(err, proto.InternalTopic) {
		t.Fatalf("add partitions to %s: %v, want INTERNAL_TOPIC", proto.OffsetsTopic, err)
	}
	// Groups keep working once the topic exists.
	ringtest.CreateTopic(t, c, "t", 2)
	if a := join(t, c, "billing", proto.GroupTypeFailover, "a", "t"); count(a.Assigned) != 2 {
		t.Fatalf("join after the internal topic exists: %+v", a)
	}
}
