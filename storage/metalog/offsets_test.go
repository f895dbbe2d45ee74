package metalog

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

func TestOffsets(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	commits := []struct {
		group, topic string
		partition    uint32
		c            OffsetCommit
	}{
		{"g2", "orders", 1, OffsetCommit{Offset: 10, Metadata: "m", CommitTimeMs: 1}},
		{"g1", "orders", 256, OffsetCommit{Offset: 7, CommitTimeMs: -5}},
		{"g1", "orders", 2, OffsetCommit{Offset: 5}},
		{"g1", "audit", 0, OffsetCommit{Offset: 1<<64 - 1, Metadata: "\x00\xff"}},
		{"g1", "orders", 2, OffsetCommit{Offset: 6}}, // overwrite
		{"g", "orders", 0, OffsetCommit{Offset: 3}},  // a prefix of g1 and g2
		{"g1\x01", "x", 0, OffsetCommit{Offset: 4}},  // sorts right after g1's keys
	}
	for _, c := range commits {
		if err := s.CommitOffset(c.group, c.topic, c.partition, c.c); err != nil {
			t.Fatal(err)
		}
	}
	check := func(s *Store) {
		t.Helper()
		if got, want := s.ListGroups(), []string{"g", "g1", "g1\x01", "g2"}; !slices.Equal(got, want) {
			t.Fatalf("ListGroups = %q, want %q", got, want)
		}
		want := []PartitionOffset{
			{"audit", 0, OffsetCommit{Offset: 1<<64 - 1, Metadata: "\x00\xff"}},
			{"orders", 2, OffsetCommit{Offset: 6}},
			{"orders", 256, OffsetCommit{Offset: 7, CommitTimeMs: -5}},
		}
		if got := s.GroupOffsets("g1"); !slices.Equal(got, want) {
			t.Fatalf("GroupOffsets(g1) = %+v, want %+v", got, want)
		}
		if c, ok := s.FetchOffset("g2", "orders", 1); !ok || c != (OffsetCommit{10, "m", 1}) {
			t.Fatalf("FetchOffset(g2) = %+v, %v", c, ok)
		}
		if _, ok := s.FetchOffset("g2", "orders", 2); ok {
			t.Fatal("FetchOffset found a partition never committed")
		}
		if got := s.GroupOffsets("nope"); len(got) != 0 {
			t.Fatalf("GroupOffsets(nope) = %+v", got)
		}
	}
	check(s)
	mustClose(t, s)
	s = mustOpen(t, dir, Options{})
	check(s)
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)
	s = mustOpen(t, dir, Options{})
	check(s)

	if err := s.DeleteOffset("g2", "orders", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteGroup("g1"); err != nil {
		t.Fatal(err)
	}
	if got, want := s.ListGroups(), []string{"g", "g1\x01"}; !slices.Equal(got, want) {
		t.Fatalf("ListGroups after deletes = %q, want %q", got, want)
	}
	mustClose(t, s)
	s = mustOpen(t, dir, Options{})
	defer mustClose(t, s)
	if got, want := s.ListGroups(), []string{"g", "g1\x01"}; !slices.Equal(got, want) {
		t.Fatalf("ListGroups after reopen = %q, want %q", got, want)
	}
}

func TestTopics(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	for _, name := range []string{"orders", "audit", "zeta"} {
		if err := s.PutTopic(name, []byte("cfg-"+name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteTopic("zeta"); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("other", []byte("x")); err != nil { // not a topic
		t.Fatal(err)
	}
	mustClose(t, s)
	s = mustOpen(t, dir, Options{})
	defer mustClose(t, s)
	got := s.Topics()
	want := []Topic{{"audit", []byte("cfg-audit")}, {"orders", []byte("cfg-orders")}}
	if !slices.EqualFunc(got, want, func(a, b Topic) bool { return a.Name == b.Name && bytes.Equal(a.Config, b.Config) }) {
		t.Fatalf("Topics = %q, want %q", got, want)
	}
	if cfg, ok := s.TopicConfig("orders"); !ok || string(cfg) != "cfg-orders" {
		t.Fatalf("TopicConfig(orders) = %q, %v", cfg, ok)
	}
	if _, ok := s.TopicConfig("zeta"); ok {
		t.Fatal("deleted topic still has a config")
	}
}

func TestOffsetValueCodec(t *testing.T) {
	c := OffsetCommit{Offset: 42, Metadata: "meta", CommitTimeMs: 1700000000000}
	b := appendOffsetValue([]byte("prefix"), c)
	got, err := parseOffsetValue(b[len("prefix"):])
	if err != nil || got != c {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	bad := map[string][]byte{
		"short":    b[len("prefix") : len(b)-1],
		"trailing": append(slices.Clone(b[len("prefix"):]), 0),
		"version":  append([]byte{2}, b[len("prefix")+1:]...),
	}
	for name, v := range bad {
		if _, err := parseOffsetValue(v); !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
