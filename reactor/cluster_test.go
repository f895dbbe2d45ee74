package reactor

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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
	for series, ok := range map[string]func(float64) bool{
		"ringmq_controller_leader":                 func(v float64) bool { return v == 1 },
		"ringmq_controller_term":                   func(v float64) bool { return v >= 1 },
		"ringmq_controller_commit_index":           func(v float64) bool { return v >= 3 },
		"ringmq_controller_leader_elections_total": func(v float64) bool { return v >= 1 },
		"ringmq_brokers_alive":                     func(v float64) bool { return v == 1 },
		"ringmq_partitions_offline":                func(v float64) bool { return v == 0 },
		"ringmq_partitions_under_replicated":       func(v float64) bool { return v == 0 },
	} {
		if v := metricValue(t, series); !ok(v) {
			t.Errorf("%s = %v", series, v)
		}
	}
}

// Replication factors: above the live brokers is refused as such; 0 takes
// the default (1).
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

// A controller driver that stops (as on a failed write) is opened again
// by the broker goroutine; the new one replays its log before it is
// followed, so the topics it holds are never dropped meanwhile: the data
// stays readable and writable, and the server is ready again.
func TestStoppedControllerIsReopened(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "kept", 2)
	produceOne := func() {
		t.Helper()
		var b proto.BatchBuilder
		b.Reset(nil)
		b.Append(1, nil, []byte("v"), nil)
		resp, err := c.Produce(ringtest.Ctx(t), &proto.ProduceRequest{Acks: proto.AcksLeader, TimeoutMs: 5000,
			Topics: []proto.ProduceTopic{{Name: []byte("kept"), Partitions: []proto.ProducePartition{{Partition: 1, Records: b.Finish()}}}}})
		if err != nil || resp.Topics[0].Partitions[0].Error != proto.None {
			t.Fatalf("produce: %+v %v", resp, err)
		}
	}
	produceOne()
	old := srv.cl.ctrl()
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for srv.cl.ctrl() == old || srv.Ready() != nil || !srv.cl.ctrl().Status().IsLeader {
		if time.Now().After(deadline) {
			t.Fatalf("controller not reopened within 30s (ready: %v)", srv.Ready())
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
	// The admin goroutine follows the new driver: a topic change works.
	ringtest.CreateTopic(t, c, "after", 1)
	if end := ringtest.ListOffset(t, c, "kept", 1, proto.TimestampLatest); end != 1 {
		t.Fatalf("kept/1 ends at %d after the reopen, want 1", end)
	}
	produceOne()
}
