package reactor

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/storage/metalog"
)

// A single server is a one-node cluster: it is the controller leader and
// its only broker, Metadata and DescribeTopic name it as every
// partition's leader, replica and ISR, and ClusterStatus reports it.
func TestOneNodeCluster(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "one", 3)

	md, err := c.Metadata(ringtest.Ctx(t), &proto.MetadataRequest{Topics: []string{"one"}})
	if err != nil {
		t.Fatal(err)
	}
	if md.ControllerID != 1 || len(md.Brokers) != 1 || md.Brokers[0] != (proto.BrokerInfo{ID: 1, Addr: srv.Addr(), Alive: true}) {
		t.Fatalf("metadata brokers %+v controller %d", md.Brokers, md.ControllerID)
	}
	for _, p := range md.Topics[0].Partitions {
		if p.Leader != 1 || p.LeaderEpoch != 0 || !slices.Equal(p.Replicas, []uint32{1}) || !slices.Equal(p.ISR, []uint32{1}) {
			t.Fatalf("partition %+v: want leader 1 at epoch 0, replicas and ISR [1]", p)
		}
	}
	d, err := c.DescribeTopic(ringtest.Ctx(t), &proto.DescribeTopicRequest{Name: "one"})
	if err != nil || len(d.Partitions) != 3 || d.Partitions[2].Leader != 1 || !slices.Equal(d.Partitions[2].ISR, []uint32{1}) {
		t.Fatalf("describe %+v %v", d, err)
	}
	st, err := c.ClusterStatus(ringtest.Ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.NodeID != 1 || st.ControllerID != 1 || st.Term == 0 || st.CommitIndex < 3 || st.Topics != 1 || st.Partitions != 3 ||
		len(st.Nodes) != 1 || !st.Nodes[0].Alive || st.Nodes[0].BrokerEpoch == 0 || len(st.Offline)+len(st.UnderReplicated) != 0 {
		t.Fatalf("cluster status %+v", st)
	}
}

// Replication factors: above the live brokers is refused as such, and
// (until replication is built) so is any above 1; 0 takes the default (1).
func TestReplicationFactorIsChecked(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	for _, tc := range []struct {
		rf   uint16
		code proto.ErrorCode
		msg  string
	}{
		{2, proto.InvalidReplicationFactor, "replication factor 2 > 1 live brokers"},
		{17, proto.InvalidReplicationFactor, "must be 1..16"},
		{0, proto.None, ""},
		{1, proto.None, ""},
	} {
		name := "rf" + string(rune('a'+tc.rf))
		_, err := c.CreateTopic(ringtest.Ctx(t), &proto.CreateTopicRequest{Name: name, Partitions: 1, ReplicationFactor: tc.rf})
		var code proto.ErrorCode
		if err != nil && !errors.As(err, &code) {
			t.Fatalf("rf %d: %v", tc.rf, err)
		}
		if code != tc.code || (tc.msg != "" && !strings.Contains(err.Error(), tc.msg)) {
			t.Fatalf("rf %d: %v, want %v %q", tc.rf, err, tc.code, tc.msg)
		}
	}
}

// A data directory of a server from before the controller (topics in the
// metadata store) is imported at the first start: the topic is the
// controller's, with its data, it leaves the metadata store, and a second
// start still serves it, led again by the restarted broker (its logs are
// intact) in a new leader epoch.
func TestMetadataStoreTopicsAreImported(t *testing.T) {
	dir, _ := ringtest.CopyV1Data(t, "..")
	cfg := testConfig(t, dir)
	srv := startServer(t, cfg)
	var epoch uint32
	for run := range 2 {
		c := ringtest.Dial(t, srv.Addr(), client.Options{})
		d, err := c.DescribeTopic(ringtest.Ctx(t), &proto.DescribeTopicRequest{Name: "v1"})
		if err != nil || len(d.Partitions) != 2 || d.Partitions[0].Leader != 1 || !slices.Equal(d.Partitions[1].Replicas, []uint32{1}) {
			t.Fatalf("run %d: describe v1 %+v %v", run, d, err)
		}
		if run == 1 && d.Partitions[0].LeaderEpoch <= epoch {
			t.Fatalf("leader epoch %d after a restart, was %d", d.Partitions[0].LeaderEpoch, epoch)
		}
		epoch = d.Partitions[0].LeaderEpoch
		if end := ringtest.ListOffset(t, c, "v1", 0, proto.TimestampLatest); end == 0 {
			t.Fatalf("run %d: v1/0 is empty after the import", run)
		}
		c.Close()
		if run == 0 {
			srv = restart(t, srv, cfg)
		}
	}
	if err := srv.Shutdown(ringtest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	meta, err := metalog.Open(filepath.Join(dir, "meta"), metalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	if ts := meta.Topics(); len(ts) != 0 {
		t.Fatalf("the metadata store still holds %d topics after the import", len(ts))
	}
}
