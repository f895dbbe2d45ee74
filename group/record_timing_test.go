package group

import (
	"testing"
	"time"
)

// Baseline: a commit record is the group log's most frequent entry; its
// encode and decode should cost well under a microsecond.
func BenchmarkAppendCommitRecord(b *testing.B) {
	r := Record{Kind: KindCommit, Group: "orders-app", TopicPartition: TopicPartition{"orders", 7}, Commit: Commit{Offset: 33622}}
	buf := AppendRecord(nil, &r)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendRecord(buf[:0], &r)
	}
}

func BenchmarkParseCommitRecord(b *testing.B) {
	r := Record{Kind: KindCommit, Group: "orders-app", TopicPartition: TopicPartition{"orders", 7}, Commit: Commit{Offset: 33622}}
	buf := AppendRecord(nil, &r)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseRecord(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCommit: a fenced commit through the coordinator, then the
// Ready that writes it (one commit per Ready: the worst case for batching).
func BenchmarkCommit(b *testing.B) {
	c := New(testCfg)
	c.SetTopic("t", 12)
	a, err := c.Join(0, JoinRequest{Group: "g", Type: TypeFailover, Topics: []string{"t"}, SessionTimeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	c.Ready()
	c.Advance()
	var buf []byte
	b.ReportAllocs()
	var off uint64
	for b.Loop() {
		off++
		if err := c.Commit("g", a.Member, a.MemberEpoch, "t", uint32(off%12), off, ""); err != nil {
			b.Fatal(err)
		}
		rd := c.Ready()
		buf = buf[:0]
		for i := range rd.Records {
			buf = AppendRecord(buf, &rd.Records[i])
		}
		c.Advance()
	}
}
