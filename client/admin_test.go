package client_test

import (
	"errors"
	"testing"

	"github.com/ringmq/ringmq/proto"
)

func TestAdminTopics(t *testing.T) {
	srv := newTestServer(t)
	a := newAdmin(t, srv.addr)
	ctx := testCtx(t)
	overrides := map[string]string{proto.ConfigFlush: proto.FlushSync, proto.ConfigRetentionMs: "3600000"}
	if err := a.CreateTopic(ctx, "events", 3, overrides); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateTopic(ctx, "audit", 1, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateTopic(ctx, "events", 3, nil); !errors.Is(err, proto.TopicExists) {
		t.Errorf("second CreateTopic: %v, want TopicExists", err)
	}
	if err := a.CreateTopic(ctx, "bad", 1, map[string]string{"no_such_key": "1"}); !errors.Is(err, proto.InvalidConfig) {
		t.Errorf("CreateTopic with an unknown config key: %v, want InvalidConfig", err)
	}
	topics, err := a.ListTopics(ctx)
	if err != nil || len(topics) != 2 || topics[0].Name != "audit" || topics[1].Name != "events" || len(topics[1].Partitions) != 3 {
		t.Fatalf("ListTopics = %+v, %v", topics, err)
	}
	d, err := a.DescribeTopic(ctx, "events")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Partitions) != 3 || d.Configs[proto.ConfigFlush] != proto.FlushSync || d.Configs[proto.ConfigRetentionMs] != "3600000" {
		t.Errorf("DescribeTopic(events) = %+v", d)
	}
	shards := map[uint16]bool{}
	for _, p := range d.Partitions {
		shards[p.Shard] = true
	}
	if len(shards) != 2 {
		t.Errorf("3 partitions on 2 reactors use shards %v", shards)
	}
	if err := a.DeleteTopic(ctx, "events"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.DescribeTopic(ctx, "events"); !errors.Is(err, proto.UnknownTopic) {
		t.Errorf("DescribeTopic after delete: %v, want UnknownTopic", err)
	}
	if err := a.DeleteTopic(ctx, "events"); !errors.Is(err, proto.UnknownTopic) {
		t.Errorf("second DeleteTopic: %v, want UnknownTopic", err)
	}
	if topics, err := a.ListTopics(ctx); err != nil || len(topics) != 1 {
		t.Errorf("ListTopics after delete = %+v, %v", topics, err)
	}
}
