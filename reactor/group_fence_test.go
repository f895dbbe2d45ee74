package reactor

import (
	"testing"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/group"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

// groupFetch fetches partition p of topic as group member id at epoch and
// returns the partition's error code and record bytes.
func groupFetch(t *testing.T, c *client.Conn, g, id string, epoch uint32, topic string, p uint32) (proto.ErrorCode, int) {
	t.Helper()
	resp, err := c.Fetch(ringtest.Ctx(t), &proto.FetchRequest{MaxBytes: 1 << 20, Group: []byte(g), MemberID: []byte(id), MemberEpoch: epoch,
		Topics: []proto.FetchTopic{{Name: []byte(topic), Partitions: []proto.FetchPartition{{Partition: p, PartitionMaxBytes: 1 << 20}}}}})
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	pr := resp.Topics[0].Partitions[0]
	return pr.Error, len(pr.Records)
}

// A member's fetch is fenced like its commit: once a partition moved to
// another member, the member that released it (or speaks with an epoch
// from before it got it) is refused FENCED_MEMBER_EPOCH, an unknown member
// UNKNOWN_MEMBER_ID, while the owner and plain fetches read on.
func TestGroupStaleFetchIsFenced(t *testing.T) {
	srv := startServer(t, groupTestConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "g2", 2)
	for i := 0; i < 40; i++ {
		produceOne(t, c, "g2", uint32(i%2), []byte("x"))
	}
	a := join(t, c, "split", proto.GroupTypeFailover, "a", "g2")
	for p := uint32(0); p < 2; p++ {
		if code, n := groupFetch(t, c, "split", "a", a.MemberEpoch, "g2", p); code != proto.None || n == 0 {
			t.Fatalf("owner's fetch of g2/%d: %v, %d bytes", p, code, n)
		}
	}
	b := join(t, c, "split", proto.GroupTypeFailover, "b", "g2")
	if code, _ := groupFetch(t, c, "split", "b", b.MemberEpoch, "g2", 0); code != proto.FencedMemberEpoch {
		t.Fatalf("fetch of a partition not yet handed over: %v, want FENCED_MEMBER_EPOCH", code)
	}
	ha := heartbeat(t, c, "split", "a", a.MemberEpoch, a.Assigned)
	moved := ha.Revoke[0].Partitions[0]
	ha = heartbeat(t, c, "split", "a", ha.MemberEpoch, ha.Assigned) // a releases it
	hb := heartbeat(t, c, "split", "b", b.MemberEpoch, nil)
	if !has(hb.Assigned, "g2", moved) {
		t.Fatalf("second member did not get g2/%d: %+v", moved, hb)
	}
	if code, n := groupFetch(t, c, "split", "b", hb.MemberEpoch, "g2", moved); code != proto.None || n == 0 {
		t.Fatalf("new owner's fetch: %v, %d bytes", code, n)
	}
	code, n := groupFetch(t, c, "split", "a", a.MemberEpoch, "g2", moved)
	t.Logf("stale member's fetch of g2/%d: %v (%d bytes)", moved, code, n)
	if code != proto.FencedMemberEpoch || n != 0 {
		t.Fatalf("stale member's fetch: %v, %d bytes; want FENCED_MEMBER_EPOCH and no records", code, n)
	}
	kept := 1 - moved
	if code, _ := groupFetch(t, c, "split", "a", ha.MemberEpoch, "g2", kept); code != proto.None {
		t.Fatalf("first member's fetch of the partition it kept: %v", code)
	}
	if code, _ := groupFetch(t, c, "split", "a", hb.MemberEpoch+1, "g2", kept); code != proto.FencedMemberEpoch {
		t.Fatalf("fetch with an epoch from the future: %v", code)
	}
	if code, _ := groupFetch(t, c, "split", "zombie", 1, "g2", kept); code != proto.UnknownMemberID {
		t.Fatalf("unknown member's fetch: %v", code)
	}
	if err := c.LeaveGroup(ringtest.Ctx(t), &proto.LeaveGroupRequest{Group: "split", MemberID: "a"}); err != nil {
		t.Fatal(err)
	}
	if code, _ := groupFetch(t, c, "split", "a", ha.MemberEpoch, "g2", kept); code != proto.UnknownMemberID {
		t.Fatalf("fetch after leaving: %v", code)
	}
	resp, err := c.Fetch(ringtest.Ctx(t), &proto.FetchRequest{MaxBytes: 1 << 20,
		Topics: []proto.FetchTopic{{Name: []byte("g2"), Partitions: []proto.FetchPartition{{Partition: moved, PartitionMaxBytes: 1 << 20}}}}})
	if err != nil || resp.Topics[0].Partitions[0].Error != proto.None || len(resp.Topics[0].Partitions[0].Records) == 0 {
		t.Fatalf("plain fetch: %v %+v", err, resp)
	}
}

// The fetch path's check reads the published table without allocating,
// and the table follows member records and tombstones.
func TestFenceTableCheck(t *testing.T) {
	f := newFenceTable(4)
	for p := range f.local {
		f.local[p].Store(true)
	}
	own := func(id string, epoch uint32, parts ...uint32) group.Record {
		r := group.Record{Kind: group.KindMember, Group: "g", Member: group.MemberRecord{ID: id, Epoch: epoch}}
		for _, p := range parts {
			r.Member.Owned = append(r.Member.Owned, group.OwnedPartition{TopicPartition: group.TopicPartition{Topic: "t", Partition: p}, Since: epoch})
		}
		return r
	}
	f.apply(fenceUpdates(nil, []group.Record{own("a", 2, 0, 1), own("b", 3, 2)}))
	g, a, b, topic := []byte("g"), []byte("a"), []byte("b"), []byte("t")
	cases := []struct {
		member []byte
		epoch  uint32
		part   uint32
		want   proto.ErrorCode
	}{
		{a, 2, 0, proto.None}, {a, 1, 0, proto.FencedMemberEpoch}, {a, 3, 0, proto.FencedMemberEpoch},
		{a, 2, 2, proto.FencedMemberEpoch}, {b, 3, 2, proto.None}, {[]byte("c"), 3, 2, proto.UnknownMemberID},
	}
	for _, c := range cases {
		if got := f.check(g, c.member, c.epoch, topic, c.part); got != c.want {
			t.Errorf("check(%s, epoch %d, t/%d) = %v, want %v", c.member, c.epoch, c.part, got, c.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { f.check(g, a, 2, topic, 0) }); n != 0 {
		t.Errorf("check allocates %.1f times", n)
	}
	f.apply(fenceUpdates(nil, []group.Record{{Kind: group.KindMember, Group: "g", Tombstone: true, Member: group.MemberRecord{ID: "a"}}}))
	if got := f.check(g, a, 2, topic, 0); got != proto.UnknownMemberID {
		t.Errorf("removed member: %v", got)
	}
	if got := f.check(g, b, 3, topic, 2); got != proto.None {
		t.Errorf("other member after a removal: %v", got)
	}
	f.apply(fenceUpdates(nil, []group.Record{{Kind: group.KindGroup, Group: "g", Tombstone: true}}))
	if got := f.check(g, b, 3, topic, 2); got != proto.UnknownMemberID {
		t.Errorf("deleted group: %v", got)
	}
	f.local[fnv32a(g)%4].Store(false)
	if got := f.check(g, b, 3, topic, 2); got != proto.None {
		t.Errorf("group coordinated elsewhere: %v, want unfenced", got)
	}
	if groupPartitionOf("g", 4) != int(fnv32a(g)%4) {
		t.Fatal("fnv32a does not place groups as groupPartitionOf does")
	}
}
