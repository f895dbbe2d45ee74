package reactor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

func groupTestConfig(t *testing.T, dir string) config.Config {
	cfg := testConfig(t, dir)
	cfg.Groups.MinSessionTimeout = 200 * time.Millisecond
	cfg.Groups.HeartbeatInterval = 50 * time.Millisecond
	cfg.Groups.Partitions = 3
	return cfg
}

func join(t *testing.T, c *client.Conn, g string, typ uint8, id string, topics ...string) *proto.AssignmentResponse {
	t.Helper()
	a, err := c.JoinGroup(ringtest.Ctx(t), &proto.JoinGroupRequest{Group: g, Type: typ, MemberID: id, ClientID: "test-" + id,
		SessionTimeoutMs: 60_000, Topics: topics})
	if err != nil {
		t.Fatalf("join %s as %s: %v", g, id, err)
	}
	return a
}

func heartbeat(t *testing.T, c *client.Conn, g, id string, epoch uint32, owned []proto.GroupPartitions) *proto.AssignmentResponse {
	t.Helper()
	a, err := c.Heartbeat(ringtest.Ctx(t), &proto.HeartbeatRequest{Group: g, MemberID: id, MemberEpoch: epoch, Owned: owned})
	if err != nil {
		t.Fatalf("heartbeat %s: %v", id, err)
	}
	return a
}

func commit(t *testing.T, c *client.Conn, g, id string, epoch uint32, topic string, p uint32, off uint64) proto.ErrorCode {
	t.Helper()
	resp, err := c.OffsetCommit(ringtest.Ctx(t), &proto.OffsetCommitRequest{Group: []byte(g), MemberID: []byte(id), MemberEpoch: epoch,
		Topics: []proto.OffsetCommitTopic{{Name: []byte(topic), Partitions: []proto.OffsetCommitPartition{{Partition: p, Offset: off}}}}})
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	return resp.Topics[0].Partitions[0].Error
}

func committed(t *testing.T, c *client.Conn, g, topic string, p uint32) uint64 {
	t.Helper()
	resp, err := c.OffsetFetch(ringtest.Ctx(t), &proto.OffsetFetchRequest{Group: []byte(g),
		Topics: []proto.OffsetFetchTopic{{Name: []byte(topic), Partitions: []uint32{p}}}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0].Offset
}

func count(gps []proto.GroupPartitions) int {
	n := 0
	for _, g := range gps {
		n += len(g.Partitions)
	}
	return n
}

func has(gps []proto.GroupPartitions, topic string, p uint32) bool {
	for _, g := range gps {
		for _, q := range g.Partitions {
			if g.Topic == topic && q == p {
				return true
			}
		}
	}
	return false
}

// The backwards commit, replayed with two members: the member that
// lost the partition is refused with FENCED_MEMBER_EPOCH, and the commit
// stays where the new owner put it.
func TestGroupStaleCommitIsFenced(t *testing.T) {
	srv := startServer(t, groupTestConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "g2", 2)
	for i := 0; i < 40; i++ {
		produceOne(t, c, "g2", uint32(i%2), []byte("x"))
	}
	a := join(t, c, "split", proto.GroupTypeFailover, "a", "g2")
	if count(a.Assigned) != 2 {
		t.Fatalf("first member assigned %+v, want both partitions", a.Assigned)
	}
	if code := commit(t, c, "split", "a", a.MemberEpoch, "g2", 1, 10); code != proto.None {
		t.Fatalf("owner's commit: %v", code)
	}
	b := join(t, c, "split", proto.GroupTypeFailover, "b", "g2")
	if count(b.Assigned) != 0 || count(b.Pending) != 1 {
		t.Fatalf("second member before the release: %+v", b)
	}
	ha := heartbeat(t, c, "split", "a", a.MemberEpoch, a.Assigned)
	if count(ha.Revoke) != 1 {
		t.Fatalf("first member not told to revoke: %+v", ha)
	}
	moved := ha.Revoke[0].Partitions[0]
	// a releases the partition (leaves it out of its owned list).
	ha = heartbeat(t, c, "split", "a", ha.MemberEpoch, ha.Assigned)
	hb := heartbeat(t, c, "split", "b", b.MemberEpoch, nil)
	if !has(hb.Assigned, "g2", moved) {
		t.Fatalf("second member did not get g2/%d: %+v", moved, hb)
	}
	if code := commit(t, c, "split", "b", hb.MemberEpoch, "g2", moved, 20); code != proto.None {
		t.Fatalf("new owner's commit: %v", code)
	}
	code := commit(t, c, "split", "a", a.MemberEpoch, "g2", moved, 5)
	t.Logf("stale member's commit of g2/%d at offset 5: %v", moved, code)
	if code != proto.FencedMemberEpoch {
		t.Fatalf("stale commit answered %v, want FENCED_MEMBER_EPOCH", code)
	}
	if got := committed(t, c, "split", "g2", moved); got != 20 {
		t.Fatalf("commit went to %d, want 20", got)
	}
	// A commit without a member id is refused while the group has members.
	if code := commit(t, c, "split", "", 0, "g2", moved, 1); code != proto.FencedMemberEpoch {
		t.Fatalf("unmanaged commit to an active group answered %v", code)
	}
	if code := commit(t, c, "split", "gone", 1, "g2", moved, 1); code != proto.UnknownMemberID {
		t.Fatalf("unknown member's commit answered %v", code)
	}
}

func TestGroupExclusive(t *testing.T) {
	srv := startServer(t, groupTestConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "orders", 3)
	a := join(t, c, "audit", proto.GroupTypeExclusive, "a", "orders")
	if count(a.Assigned) != 3 {
		t.Fatalf("exclusive member assigned %+v", a.Assigned)
	}
	_, err := c.JoinGroup(ringtest.Ctx(t), &proto.JoinGroupRequest{Group: "audit", Type: proto.GroupTypeExclusive, MemberID: "b",
		ClientID: "second", SessionTimeoutMs: 1000, Topics: []string{"orders"}})
	t.Logf("second exclusive join: %v", err)
	if !errors.Is(err, proto.SubscriptionHeld) || !strings.Contains(err.Error(), "member a") {
		t.Fatalf("second exclusive join: %v, want SUBSCRIPTION_HELD naming member a", err)
	}
	_, err = c.JoinGroup(ringtest.Ctx(t), &proto.JoinGroupRequest{Group: "audit", Type: proto.GroupTypeFailover, MemberID: "c",
		SessionTimeoutMs: 1000, Topics: []string{"orders"}})
	if !errors.Is(err, proto.SubscriptionTypeMismatch) {
		t.Fatalf("failover join of an exclusive group: %v", err)
	}
	// The holder's session runs out (200 ms here): the second can join.
	_, err = c.JoinGroup(ringtest.Ctx(t), &proto.JoinGroupRequest{Group: "audit", Type: proto.GroupTypeExclusive, MemberID: "short",
		SessionTimeoutMs: 200, Topics: []string{"orders"}})
	if !errors.Is(err, proto.SubscriptionHeld) {
		t.Fatalf("join while held: %v", err)
	}
	if err := c.LeaveGroup(ringtest.Ctx(t), &proto.LeaveGroupRequest{Group: "audit", MemberID: "a"}); err != nil {
		t.Fatal(err)
	}
	b := join(t, c, "audit", proto.GroupTypeExclusive, "b", "orders")
	if count(b.Assigned) != 3 {
		t.Fatalf("takeover assigned %+v", b.Assigned)
	}
}

func TestGroupSessionTimeoutMovesPartitions(t *testing.T) {
	srv := startServer(t, groupTestConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "t", 4)
	a, err := c.JoinGroup(ringtest.Ctx(t), &proto.JoinGroupRequest{Group: "g", Type: proto.GroupTypeFailover, MemberID: "dies",
		SessionTimeoutMs: 300, Topics: []string{"t"}})
	if err != nil || count(a.Assigned) != 4 {
		t.Fatalf("join: %v %+v", err, a)
	}
	b := join(t, c, "g", proto.GroupTypeFailover, "lives", "t")
	start := time.Now()
	epoch := b.MemberEpoch
	for deadline := start.Add(10 * time.Second); ; {
		hb := heartbeat(t, c, "g", "lives", epoch, b.Assigned)
		b, epoch = hb, hb.MemberEpoch
		if count(hb.Assigned) == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("survivor owns %+v after %v", hb.Assigned, time.Since(start))
		}
		time.Sleep(20 * time.Millisecond) // the heartbeat interval of this client
	}
	t.Logf("survivor owns all 4 partitions %v after the other's last heartbeat (session 300ms)", time.Since(start).Round(time.Millisecond))
}

func TestGroupAdministration(t *testing.T) {
	srv := startServer(t, groupTestConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "t", 2)
	for i := 0; i < 10; i++ {
		produceOne(t, c, "t", uint32(i%2), []byte("x"))
	}
	a := join(t, c, "g", proto.GroupTypeFailover, "a", "t")
	if code := commit(t, c, "g", "a", a.MemberEpoch, "t", 0, 3); code != proto.None {
		t.Fatal(code)
	}
	desc, err := c.DescribeGroup(ringtest.Ctx(t), &proto.DescribeGroupRequest{Group: "g"})
	if err != nil || desc.Type != proto.GroupTypeFailover || desc.State != proto.GroupStateStable || len(desc.Members) != 1 ||
		count(desc.Members[0].Assigned) != 2 || !strings.HasPrefix(desc.Members[0].Addr, "127.0.0.1:") {
		t.Fatalf("describe: %v %+v", err, desc)
	}
	if p := desc.Topics[0].Partitions[0]; p.Committed != 3 || p.LogEnd != 5 || p.Lag != 2 {
		t.Fatalf("describe position %+v", p)
	}
	err = c.DeleteGroup(ringtest.Ctx(t), &proto.DeleteGroupRequest{Group: "g"})
	t.Logf("delete of an active group: %v", err)
	if !errors.Is(err, proto.GroupNotEmpty) {
		t.Fatalf("delete of an active group: %v", err)
	}
	reset := &proto.ResetOffsetsRequest{Group: "g", Topic: "t", Partitions: []proto.ResetPartition{{Partition: 0, Offset: 0}, {Partition: 1, Offset: 5}}}
	if _, err := c.ResetOffsets(ringtest.Ctx(t), reset); !errors.Is(err, proto.GroupNotEmpty) {
		t.Fatalf("reset of an active group: %v", err)
	}
	if err := c.LeaveGroup(ringtest.Ctx(t), &proto.LeaveGroupRequest{Group: "g", MemberID: "a"}); err != nil {
		t.Fatal(err)
	}
	reset.DryRun = true
	plan, err := c.ResetOffsets(ringtest.Ctx(t), reset)
	want := []proto.ResetResult{{Partition: 0, Had: true, From: 3, To: 0}, {Partition: 1, To: 5}}
	if err != nil || fmt.Sprint(plan.Partitions) != fmt.Sprint(want) {
		t.Fatalf("dry run: %v %+v", err, plan)
	}
	if got := committed(t, c, "g", "t", 0); got != 3 {
		t.Fatalf("dry run changed the commit to %d", got)
	}
	reset.DryRun = false
	if _, err := c.ResetOffsets(ringtest.Ctx(t), reset); err != nil {
		t.Fatal(err)
	}
	if got0, got1 := committed(t, c, "g", "t", 0), committed(t, c, "g", "t", 1); got0 != 0 || got1 != 5 {
		t.Fatalf("after reset: %d %d", got0, got1)
	}
	reset.Partitions = []proto.ResetPartition{{Partition: 1, Offset: 6}}
	if _, err := c.ResetOffsets(ringtest.Ctx(t), reset); !errors.Is(err, proto.OffsetOutOfRange) {
		t.Fatalf("reset past the log end: %v", err)
	}
	if err := c.DeleteGroup(ringtest.Ctx(t), &proto.DeleteGroupRequest{Group: "g"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeGroup(ringtest.Ctx(t), &proto.DescribeGroupRequest{Group: "g"}); !errors.Is(err, proto.GroupNotFound) {
		t.Fatalf("describe after delete: %v", err)
	}
	if _, err := c.DescribeGroup(ringtest.Ctx(t), &proto.DescribeGroupRequest{Group: "bad name"}); !errors.Is(err, proto.InvalidGroupName) {
		t.Fatalf("describe of an invalid name: %v", err)
	}
}

// Commits, types and members survive a restart; a member restored from the
// log keeps its partitions for a full session and can commit again.
func TestGroupStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := groupTestConfig(t, dir)
	srv := startServer(t, cfg)
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "t", 2)
	for i := 0; i < 10; i++ {
		produceOne(t, c, "t", uint32(i%2), []byte("x"))
	}
	a := join(t, c, "ex", proto.GroupTypeExclusive, "a", "t")
	if code := commit(t, c, "ex", "a", a.MemberEpoch, "t", 1, 4); code != proto.None {
		t.Fatal(code)
	}
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	srv = startServer(t, cfg)
	c = ringtest.Dial(t, srv.Addr(), client.Options{})
	if got := committed(t, c, "ex", "t", 1); got != 4 {
		t.Fatalf("commit after restart: %d", got)
	}
	desc, err := c.DescribeGroup(ringtest.Ctx(t), &proto.DescribeGroupRequest{Group: "ex"})
	if err != nil || desc.Type != proto.GroupTypeExclusive || len(desc.Members) != 1 {
		t.Fatalf("describe after restart: %v %+v", err, desc)
	}
	if code := commit(t, c, "ex", "a", a.MemberEpoch, "t", 1, 5); code != proto.None {
		t.Fatalf("restored member's commit: %v", code)
	}
}

// Group metrics: per state and member counts (never per group), and the
// per-partition commit series bounded by groups.max_lag_series.
func TestGroupMetricsBounded(t *testing.T) {
	cfg := groupTestConfig(t, t.TempDir())
	cfg.Groups.MaxLagSeries = 2
	srv := startServer(t, cfg)
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "metered", 3)
	for p := uint32(0); p < 3; p++ {
		produceOne(t, c, "metered", p, []byte("x"))
	}
	a := join(t, c, "metered-g", proto.GroupTypeFailover, "m", "metered")
	for p := uint32(0); p < 3; p++ {
		if code := commit(t, c, "metered-g", "m", a.MemberEpoch, "metered", p, 1); code != proto.None {
			t.Fatal(code)
		}
	}
	var text string
	deadline := time.Now().Add(10 * time.Second)
	for {
		text = scrapeText(t)
		if strings.Contains(text, `ringmq_groups{state="stable"} 1`) && strings.Contains(text, "ringmq_group_members 1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("group gauges not exported:\n%s", grepLines(text, "ringmq_group"))
		}
		time.Sleep(50 * time.Millisecond) // the gauges refresh every 250 ms
	}
	if n := strings.Count(text, `ringmq_group_committed_offset{group="metered-g"`); n != 2 {
		t.Fatalf("%d committed-offset series of the group, want max_lag_series = 2:\n%s", n, grepLines(text, "metered-g"))
	}
	if !strings.Contains(text, "ringmq_group_commits_total") {
		t.Fatal("no ringmq_group_commits_total")
	}
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// An append that fails answers COORDINATOR_NOT_AVAILABLE and rebuilds the
// coordinator from its log: the commit that was not persisted is gone,
// the durable state (the member and its last commit) is kept.
func TestGroupAppendFailureRebuildsFromLog(t *testing.T) {
	srv := startServer(t, groupTestConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "t", 1)
	for i := 0; i < 10; i++ {
		produceOne(t, c, "t", 0, []byte("x"))
	}
	a := join(t, c, "g", proto.GroupTypeFailover, "a", "t")
	if code := commit(t, c, "g", "a", a.MemberEpoch, "t", 0, 4); code != proto.None {
		t.Fatal(code)
	}
	srv.failGroupAppends.Store(true)
	resp, err := c.OffsetCommit(ringtest.Ctx(t), &proto.OffsetCommitRequest{Group: []byte("g"), MemberID: []byte("a"),
		MemberEpoch: a.MemberEpoch, Topics: []proto.OffsetCommitTopic{{Name: []byte("t"),
			Partitions: []proto.OffsetCommitPartition{{Partition: 0, Offset: 8}}}}})
	if !errors.Is(err, proto.CoordinatorNotAvailable) || !errors.Is(err, proto.ErrRetriable) {
		t.Fatalf("commit while appends fail: %+v, %v", resp, err)
	}
	srv.failGroupAppends.Store(false)
	if got := committed(t, c, "g", "t", 0); got != 4 {
		t.Fatalf("after the failed append the commit is %d, want the durable 4", got)
	}
	if code := commit(t, c, "g", "a", a.MemberEpoch, "t", 0, 9); code != proto.None {
		t.Fatalf("the member (rebuilt from the log) commits again: %v", code)
	}
}
