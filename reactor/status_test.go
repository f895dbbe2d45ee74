package reactor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

func TestStatusSnapshot(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	topic := fmt.Sprintf("shown-%d", time.Now().UnixNano())
	group := topic + "-readers"
	ringtest.CreateTopic(t, c, topic, 2)
	for range 3 {
		produceOne(t, c, topic, 1, []byte("0123456789"))
	}
	readAll(t, c, topic, 2)
	_, err := c.OffsetCommit(context.Background(), &proto.OffsetCommitRequest{Group: []byte(group),
		Topics: []proto.OffsetCommitTopic{{Name: []byte(topic), Partitions: []proto.OffsetCommitPartition{{Partition: 1, Offset: 1}}}}})
	if err != nil {
		t.Fatal(err)
	}
	snap := srv.Status()
	if len(snap.Nodes) != 1 || !snap.Nodes[0].Self || snap.Nodes[0].Addr != srv.Addr() || snap.Nodes[0].Connections < 1 {
		t.Errorf("nodes = %+v", snap.Nodes)
	}
	var found bool
	for _, tp := range snap.Topics {
		if tp.Name != topic {
			continue
		}
		found = true
		if len(tp.Partitions) != 2 || tp.Partitions[1].LogEnd != 3 || tp.Partitions[0].LogEnd != 0 {
			t.Errorf("partitions = %+v", tp.Partitions)
		}
		if tp.Messages != 3 || tp.ProducedMessages != 3 || tp.FetchedMessages != 3 || tp.Bytes <= 0 {
			t.Errorf("topic = %+v", tp)
		}
	}
	if !found {
		t.Fatalf("topic %s not in the snapshot: %+v", topic, snap.Topics)
	}
	var lag int64 = -1
	for _, g := range snap.Groups {
		if g.Group == group && g.Topic == topic && g.Partition == 1 {
			lag = g.Lag
		}
	}
	if lag != 2 {
		t.Errorf("group %s lag on partition 1 = %d, want 2 (groups %+v)", group, lag, snap.Groups)
	}
}
