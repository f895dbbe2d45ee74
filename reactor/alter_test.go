package reactor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

func describeConfigs(t *testing.T, c *client.Conn, topic string) (map[string]string, int) {
	t.Helper()
	resp, err := c.DescribeTopic(ringtest.Ctx(t), &proto.DescribeTopicRequest{Name: topic})
	if err != nil {
		t.Fatalf("describe %s: %v", topic, err)
	}
	kv := map[string]string{}
	for _, c := range resp.Configs {
		kv[c.Key] = c.Value
	}
	return kv, len(resp.Partitions)
}

// TestAlterTopic: overrides change, are validated as at creation, an
// empty value restores the default, and the change survives a restart.
func TestAlterTopic(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	srv := startServer(t, cfg)
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "t", 2, proto.ConfigRetentionMs, "60000")
	produceOne(t, c, "t", 1, []byte("before"))

	alter := func(kv ...string) error {
		req := &proto.AlterTopicRequest{Name: "t"}
		for i := 0; i+1 < len(kv); i += 2 {
			req.Configs = append(req.Configs, proto.Config{Key: kv[i], Value: kv[i+1]})
		}
		_, err := c.AlterTopic(ringtest.Ctx(t), req)
		return err
	}
	if err := alter("retention.ms", "120000", proto.ConfigFlush, proto.FlushSync); err != nil {
		t.Fatal(err)
	}
	if kv, _ := describeConfigs(t, c, "t"); kv[proto.ConfigRetentionMs] != "120000" || kv[proto.ConfigFlush] != proto.FlushSync {
		t.Fatalf("after alter: %v", kv)
	}
	// The partitions keep serving, now with flush=sync: acks=all returns
	// once the record is fsync'd, and so readable.
	produceOneAcks(t, c, "t", 1, []byte("after"), proto.AcksAll)
	if got := ringtest.ReadPartition(t, c, "t", 1); len(got) != 2 || !bytes.Equal(got[1], []byte("after")) {
		t.Fatalf("partition 1 after alter: %q", got)
	}
	for _, bad := range []struct {
		kv   []string
		code proto.ErrorCode
		msg  string
	}{
		{[]string{proto.ConfigSegmentBytes, "10"}, proto.InvalidConfig, "segment_bytes = 10"},
		{[]string{"retention.hours", "1"}, proto.InvalidConfig, `unknown key "retention.hours"`},
		{[]string{proto.ConfigRetentionMs, "1", "retention.ms", "2"}, proto.InvalidConfig, "given twice"},
		{nil, proto.InvalidConfig, "no configuration key"},
	} {
		if err := alter(bad.kv...); !errors.Is(err, bad.code) || !bytes.Contains([]byte(err.Error()), []byte(bad.msg)) {
			t.Errorf("alter %q: %v; want %v mentioning %q", bad.kv, err, bad.code, bad.msg)
		}
	}
	if _, err := c.AlterTopic(ringtest.Ctx(t), &proto.AlterTopicRequest{Name: "nope",
		Configs: []proto.Config{{Key: proto.ConfigFlush, Value: proto.FlushSync}}}); !errors.Is(err, proto.UnknownTopic) {
		t.Errorf("alter of a missing topic: %v", err)
	}
	if err := alter(proto.ConfigFlush, ""); err != nil { // back to the server default
		t.Fatal(err)
	}
	kv, _ := describeConfigs(t, c, "t")
	if kv[proto.ConfigFlush] != cfg.Storage.Flush.String() || kv[proto.ConfigRetentionMs] != "120000" {
		t.Fatalf("after removing the flush override: %v", kv)
	}

	restarted := restart(t, srv, cfg)
	c2 := ringtest.Dial(t, restarted.Addr(), client.Options{})
	if kv2, _ := describeConfigs(t, c2, "t"); fmt.Sprint(kv2) != fmt.Sprint(kv) {
		t.Fatalf("after restart: %v, want %v", kv2, kv)
	}
}

// TestAlterRetentionApplies: a smaller retention_bytes set by AlterTopic
// deletes old segments at the next retention check.
func TestAlterRetentionApplies(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Storage.RetentionCheckInterval = 20 * time.Millisecond
	srv := startServer(t, cfg)
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "r", 1, proto.ConfigSegmentBytes, "4096")
	v := bytes.Repeat([]byte("x"), 1000)
	for range 40 {
		produceOne(t, c, "r", 0, v)
	}
	if start := ringtest.ListOffset(t, c, "r", 0, -2); start != 0 {
		t.Fatalf("log start %d before the alter", start)
	}
	if _, err := c.AlterTopic(ringtest.Ctx(t), &proto.AlterTopicRequest{Name: "r",
		Configs: []proto.Config{{Key: proto.ConfigRetentionBytes, Value: "8192"}}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for ringtest.ListOffset(t, c, "r", 0, -2) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("retention_bytes lowered by AlterTopic deleted nothing")
		}
		<-time.After(20 * time.Millisecond)
	}
}

// TestAddPartitions: new partitions serve at once, old ones keep their
// data and shard, the count only grows, and it survives a restart.
func TestAddPartitions(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	srv := startServer(t, cfg)
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "g", 2)
	produceOne(t, c, "g", 0, []byte("p0"))
	before, err := c.Metadata(ringtest.Ctx(t), &proto.MetadataRequest{Topics: []string{"g"}})
	if err != nil {
		t.Fatal(err)
	}
	add := func(total uint32) error {
		_, err := c.AddPartitions(ringtest.Ctx(t), &proto.AddPartitionsRequest{Name: "g", Partitions: total})
		return err
	}
	if err := add(5); err != nil {
		t.Fatal(err)
	}
	md, err := c.Metadata(ringtest.Ctx(t), &proto.MetadataRequest{Topics: []string{"g"}})
	if err != nil || len(md.Topics[0].Partitions) != 5 {
		t.Fatalf("metadata after adding: %+v, %v", md, err)
	}
	for i, p := range before.Topics[0].Partitions {
		if md.Topics[0].Partitions[i].Shard != p.Shard || md.Topics[0].Partitions[i].LogEnd != p.LogEnd {
			t.Fatalf("partition %d moved or changed: %+v, was %+v", i, md.Topics[0].Partitions[i], p)
		}
	}
	for p := uint32(2); p < 5; p++ {
		produceOne(t, c, "g", p, fmt.Appendf(nil, "new-%d", p))
	}
	for _, total := range []uint32{5, 3, 1_000_000} {
		if err := add(total); !errors.Is(err, proto.InvalidPartitions) {
			t.Errorf("add to %d partitions: %v, want INVALID_PARTITIONS", total, err)
		}
	}
	if _, err := c.AddPartitions(ringtest.Ctx(t), &proto.AddPartitionsRequest{Name: "nope", Partitions: 3}); !errors.Is(err, proto.UnknownTopic) {
		t.Errorf("add partitions to a missing topic: %v", err)
	}

	restarted := restart(t, srv, cfg)
	c2 := ringtest.Dial(t, restarted.Addr(), client.Options{})
	if _, n := describeConfigs(t, c2, "g"); n != 5 {
		t.Fatalf("%d partitions after restart, want 5", n)
	}
	if got := ringtest.ReadPartition(t, c2, "g", 0); len(got) != 1 || string(got[0]) != "p0" {
		t.Fatalf("partition 0 after restart: %q", got)
	}
	if got := ringtest.ReadPartition(t, c2, "g", 4); len(got) != 1 || string(got[0]) != "new-4" {
		t.Fatalf("partition 4 after restart: %q", got)
	}
}

// restart shuts srv down and starts a server on the same configuration.
func restart(t *testing.T, srv *Server, cfg config.Config) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	return startServer(t, cfg)
}
