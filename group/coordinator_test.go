package group

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestJoinValidation(t *testing.T) {
	ok := JoinRequest{Group: "g", Type: TypeFailover, ClientID: "c", Addr: "a", Topics: []string{"t"}, SessionTimeout: 10 * time.Second}
	cases := []struct {
		name string
		edit func(*JoinRequest)
		want error
	}{
		{"valid", func(*JoinRequest) {}, nil},
		{"empty group", func(r *JoinRequest) { r.Group = "" }, ErrInvalidGroupName},
		{"group with slash", func(r *JoinRequest) { r.Group = "a/b" }, ErrInvalidGroupName},
		{"group ..", func(r *JoinRequest) { r.Group = ".." }, ErrInvalidGroupName},
		{"no topics", func(r *JoinRequest) { r.Topics = nil }, ErrInvalidRequest},
		{"bad topic", func(r *JoinRequest) { r.Topics = []string{"t", "x y"} }, ErrInvalidTopic},
		{"type 0", func(r *JoinRequest) { r.Type = 0 }, ErrInvalidRequest},
		{"unknown type", func(r *JoinRequest) { r.Type = 5 }, ErrInvalidRequest},
		{"session too short", func(r *JoinRequest) { r.SessionTimeout = time.Millisecond }, ErrInvalidRequest},
		{"session too long", func(r *JoinRequest) { r.SessionTimeout = time.Hour }, ErrInvalidRequest},
		{"client id too long", func(r *JoinRequest) { r.ClientID = strings.Repeat("x", MaxClientIDLen+1) }, ErrInvalidRequest},
	}
	for _, tc := range cases {
		c := New(testCfg)
		req := ok
		tc.edit(&req)
		_, err := c.Join(0, req)
		wantErr(t, tc.name, err, tc.want)
		if tc.want != nil && (len(c.groups) != 0 || c.HasReady()) {
			t.Errorf("%s: refused join left state behind", tc.name)
		}
	}
}

// TestFailoverSpreadAndStickiness: partitions spread evenly; a join moves
// only what the newcomer needs, and only after the owners released it.
func TestFailoverSpreadAndStickiness(t *testing.T) {
	h := newHarness(t, map[string]uint32{"t": 12})
	a := h.mustJoin("g", TypeFailover, "a", "t")
	if len(a.holds) != 12 {
		t.Fatalf("first member holds %v, want all 12", a.holds)
	}
	b := h.mustJoin("g", TypeFailover, "b", "t")
	if len(b.holds) != 0 {
		t.Fatalf("b got %v before a released anything", b.holds)
	}
	if err := h.heartbeat(a); err != nil || len(a.revoke) != 6 {
		t.Fatalf("a: %v, told to revoke %v, want 6", err, a.revoke)
	}
	before := slices.Clone(a.holds)
	h.mustHeartbeat(a) // releases the 6
	h.mustHeartbeat(b)
	if len(a.holds) != 6 || len(b.holds) != 6 {
		t.Fatalf("after release: a %v, b %v", a.holds, b.holds)
	}
	for _, tp := range a.holds {
		if !slices.Contains(before, tp) {
			t.Fatalf("a got %s, which it did not have", tp)
		}
	}
	// A third member takes 2 from each; a and b keep their other 4.
	aKept, bKept := slices.Clone(a.holds), slices.Clone(b.holds)
	c := h.mustJoin("g", TypeFailover, "c", "t")
	for range 2 {
		h.mustHeartbeat(a)
		h.mustHeartbeat(b)
		h.mustHeartbeat(c)
	}
	for _, x := range []struct {
		cl   *consumer
		kept []TopicPartition
	}{{a, aKept}, {b, bKept}} {
		if len(x.cl.holds) != 4 {
			t.Fatalf("%s holds %v, want 4", x.cl.id, x.cl.holds)
		}
		for _, tp := range x.cl.holds {
			if !slices.Contains(x.kept, tp) {
				t.Fatalf("%s got %s it did not have: the assignment is not sticky", x.cl.id, tp)
			}
		}
	}
	if len(c.holds) != 4 {
		t.Fatalf("c holds %v, want 4", c.holds)
	}
}

// TestHandoverWaitsForRelease: the new owner gets a partition only after
// the previous owner released it, or after the previous owner timed out.
func TestHandoverWaitsForRelease(t *testing.T) {
	h := newHarness(t, map[string]uint32{"t": 2})
	a := h.mustJoin("g", TypeFailover, "a", "t")
	b := h.mustJoin("g", TypeFailover, "b", "t")
	ab, err := h.c.Heartbeat(h.now, HeartbeatRequest{Group: "g", Member: b.id, MemberEpoch: b.epoch})
	if err != nil || len(ab.Assigned) != 0 || len(ab.Pending) != 1 {
		t.Fatalf("b before a released: %+v, %v; want 1 pending", ab, err)
	}
	// a keeps heartbeating without releasing (it still lists everything).
	for range 5 {
		h.now += time.Second
		if _, err := h.c.Heartbeat(h.now, HeartbeatRequest{Group: "g", Member: a.id, MemberEpoch: a.epoch, Owned: tps("t", 0, 1)}); err != nil {
			t.Fatal(err)
		}
		h.c.Tick(h.now)
		h.persist()
	}
	if d, _ := h.c.Describe("g"); d.State != StateReconciling || len(d.Members[1].Pending) != 1 {
		t.Fatalf("b got the partition while a holds it: %+v", d)
	}
	// a stops heartbeating: after its session b gets it.
	for range 11 {
		h.now += time.Second
		h.mustHeartbeat(b)
		h.c.Tick(h.now)
		h.persist()
	}
	h.mustHeartbeat(b)
	if len(b.holds) != 2 {
		t.Fatalf("b holds %v after a timed out, want both", b.holds)
	}
}

func TestExclusive(t *testing.T) {
	h := newHarness(t, map[string]uint32{"t": 3})
	a := h.mustJoin("g", TypeExclusive, "alice", "t")
	if len(a.holds) != 3 {
		t.Fatalf("holder has %v", a.holds)
	}
	_, err := h.join("g", TypeExclusive, "bob", "t")
	wantErr(t, "second exclusive join", err, ErrExclusiveHeld)
	if !strings.Contains(err.Error(), a.id) || !strings.Contains(err.Error(), `"alice"`) {
		t.Fatalf("refusal does not name the holder: %v", err)
	}
	t.Logf("second member refused: %v", err)
	_, err = h.join("g", TypeFailover, "bob", "t")
	wantErr(t, "failover join of an exclusive group", err, ErrTypeMismatch)

	// The holder dies: after its session, bob can join and gets everything.
	for range 10 {
		h.tick(time.Second)
		if _, err := h.join("g", TypeExclusive, "bob", "t"); !errors.Is(err, ErrExclusiveHeld) {
			t.Fatalf("at %v bob: %v, want ErrExclusiveHeld while alice's session lasts", h.now, err)
		}
	}
	h.tick(time.Second)
	b := h.mustJoin("g", TypeExclusive, "bob", "t")
	if len(b.holds) != 3 {
		t.Fatalf("bob holds %v", b.holds)
	}
	if err := h.c.CanCommit("g", a.id, a.epoch, "t", 0); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("alice after takeover: %v", err)
	}
	// Once empty, the group may change type.
	if err := h.c.Leave("g", b.id); err != nil {
		t.Fatal(err)
	}
	h.persist()
	h.mustJoin("g", TypeFailover, "carol", "t")
	if d, _ := h.c.Describe("g"); d.Type != TypeFailover {
		t.Fatalf("type %v", d.Type)
	}
}

// TestBackwardsCommitRefused replays the bug: a stale member's
// commit would have moved the group's position from 33622 back to 20000.
func TestBackwardsCommitRefused(t *testing.T) {
	h := newHarness(t, map[string]uint32{"t": 1})
	a := h.mustJoin("g", TypeFailover, "a", "t")
	wantErr(t, "a commits", h.c.Commit("g", a.id, a.epoch, "t", 0, 20000, ""), nil)
	staleEpoch := a.epoch

	// a stalls (GC pause, network): its session ends, b takes over.
	h.tick(11 * time.Second)
	b := h.mustJoin("g", TypeFailover, "b", "t")
	wantErr(t, "b commits", h.c.Commit("g", b.id, b.epoch, "t", 0, 33622, ""), nil)

	err := h.c.Commit("g", a.id, staleEpoch, "t", 0, 20000, "")
	wantErr(t, "stale member's commit", err, ErrUnknownMember)
	t.Logf("stale member's commit refused: %v", err)

	// a rejoins (a new member) and is given nothing: b keeps the partition.
	a2 := h.mustJoin("g", TypeFailover, "a", "t")
	for _, epoch := range []uint32{staleEpoch, a2.epoch} {
		err = h.c.Commit("g", a2.id, epoch, "t", 0, 20000, "")
		wantErr(t, "rejoined member's commit of b's partition", err, ErrFenced)
	}
	t.Logf("rejoined member's commit refused: %v", err)
	if cm, _ := h.c.Committed("g", "t", 0); cm.Offset != 33622 {
		t.Fatalf("commit went to %d", cm.Offset)
	}
	// The same after a restart: the fence is in the records.
	h.restart()
	wantErr(t, "stale commit after restart", h.c.Commit("g", a.id, staleEpoch, "t", 0, 20000, ""), ErrUnknownMember)
	if cm, _ := h.c.Committed("g", "t", 0); cm.Offset != 33622 {
		t.Fatalf("after restart the commit is %d", cm.Offset)
	}
}

// TestCanCommitRules: the fencing rule, case by case.
func TestCanCommitRules(t *testing.T) {
	h := newHarness(t, map[string]uint32{"t": 2})
	a := h.mustJoin("g", TypeFailover, "a", "t") // owns 0 and 1
	first := a.epoch
	b := h.mustJoin("g", TypeFailover, "b", "t")
	h.mustHeartbeat(a) // told to revoke one
	revoked := a.revoke[0]
	kept := slices.DeleteFunc(slices.Clone(a.holds), func(tp TopicPartition) bool { return tp == revoked })[0]
	cases := []struct {
		name   string
		member string
		epoch  uint32
		tp     TopicPartition
		want   error
	}{
		{"owner, its epoch", a.id, a.epoch, kept, nil},
		{"revoking, not yet released", a.id, a.epoch, revoked, nil},
		{"epoch ahead of the member", a.id, a.epoch + 100, kept, ErrFenced},
		{"not the owner", b.id, b.epoch, kept, ErrFenced},
		{"unknown member", "nobody-1", 1, kept, ErrUnknownMember},
		{"no member id while the group has members", "", 0, kept, ErrFenced},
	}
	check := func() {
		for _, tc := range cases {
			err := h.c.CanCommit("g", tc.member, tc.epoch, tc.tp.Topic, tc.tp.Partition)
			wantErr(t, tc.name, err, tc.want)
		}
	}
	check()
	h.mustHeartbeat(a) // releases
	h.mustHeartbeat(b) // gets it
	cases = []struct {
		name   string
		member string
		epoch  uint32
		tp     TopicPartition
		want   error
	}{
		{"released", a.id, a.epoch, revoked, ErrFenced},
		{"new owner", b.id, b.epoch, revoked, nil},
		{"new owner, epoch before it got it", b.id, first, revoked, ErrFenced},
		{"kept partition, old epoch within ownership", a.id, first, kept, nil},
	}
	check()
	wantErr(t, "unknown group", h.c.CanCommit("nope", "x", 1, "t", 0), ErrUnknownGroup)
	wantErr(t, "bad group", h.c.CanCommit("a b", "x", 1, "t", 0), ErrInvalidGroupName)
	wantErr(t, "standalone commit, empty group", h.c.Commit("solo", "", 0, "t", 0, 5, "m"), nil)
	wantErr(t, "fetch by non-owner", h.c.CanFetch("g", b.id, b.epoch, kept.Topic, kept.Partition), ErrFenced)
}

// TestRegainedPartitionFencesOldEpoch: a member that loses a partition and
// gets it back cannot commit it with an epoch from before it got it back.
func TestRegainedPartitionFencesOldEpoch(t *testing.T) {
	h := newHarness(t, map[string]uint32{"t": 2})
	a := h.mustJoin("g", TypeFailover, "a", "t")
	old := a.epoch
	b := h.mustJoin("g", TypeFailover, "b", "t")
	h.mustHeartbeat(a)
	lost := a.revoke[0]
	h.mustHeartbeat(a)
	h.mustHeartbeat(b)
	if err := h.c.Leave("g", b.id); err != nil {
		t.Fatal(err)
	}
	h.persist()
	h.mustHeartbeat(a)
	if !slices.Contains(a.holds, lost) {
		t.Fatalf("a did not get %s back: %v", lost, a.holds)
	}
	wantErr(t, "commit with the epoch from before the loss", h.c.CanCommit("g", a.id, old, lost.Topic, lost.Partition), ErrFenced)
	wantErr(t, "commit with the current epoch", h.c.CanCommit("g", a.id, a.epoch, lost.Topic, lost.Partition), nil)
}

func TestTopicMetadata(t *testing.T) {
	h := newHarness(t, map[string]uint32{"t": 2, "u": 1})
	a := h.mustJoin("g", TypeFailover, "a", "t", "u", "later")
	if len(a.holds) != 3 {
		t.Fatalf("holds %v", a.holds)
	}
	wantErr(t, "commit", h.c.Commit("g", a.id, a.epoch, "u", 0, 7, ""), nil)
	h.c.SetTopic("t", 4) // partitions added
	h.c.SetTopic("later", 1)
	h.persist()
	h.mustHeartbeat(a)
	if len(a.holds) != 6 {
		t.Fatalf("after growth holds %v", a.holds)
	}
	h.c.DeleteTopic("u")
	h.persist()
	h.mustHeartbeat(a)
	if len(a.holds) != 5 || slices.Contains(a.holds, TopicPartition{"u", 0}) {
		t.Fatalf("after deleting u holds %v", a.holds)
	}
	if _, ok := h.c.Committed("g", "u", 0); ok {
		t.Fatal("commit of a deleted topic kept")
	}
	h.restart()
	h.mustHeartbeat(a)
	if len(a.holds) != 5 {
		t.Fatalf("after restart holds %v", a.holds)
	}
}

func TestSessionTimeoutAndNextDeadline(t *testing.T) {
	h := newHarness(t, map[string]uint32{"t": 1})
	if _, ok := h.c.NextDeadline(); ok {
		t.Fatal("deadline with no members")
	}
	a := h.mustJoin("g", TypeFailover, "a", "t")
	d, ok := h.c.NextDeadline()
	if !ok || d != 10*time.Second+1 {
		t.Fatalf("deadline %v %v", d, ok)
	}
	h.tick(10 * time.Second) // exactly the timeout: still a member
	h.mustHeartbeat(a)
	h.tick(10*time.Second + 1)
	wantErr(t, "heartbeat after the session", h.heartbeat(a), ErrUnknownMember)
	if d, _ := h.c.Describe("g"); d.State != StateEmpty {
		t.Fatalf("state %v", d.State)
	}
}

func TestAdmin(t *testing.T) {
	h := newHarness(t, map[string]uint32{"t": 3})
	a := h.mustJoin("g", TypeFailover, "a", "t")
	wantErr(t, "commit", h.c.Commit("g", a.id, a.epoch, "t", 1, 50, "meta"), nil)
	d, err := h.c.Describe("g")
	if err != nil {
		t.Fatal(err)
	}
	m := d.Members[0]
	if d.Type != TypeFailover || d.State != StateStable || m.ClientID != "a" || m.Addr != "127.0.0.1:a" ||
		len(m.Assigned) != 3 || len(d.Commits) != 1 || d.Commits[0].Offset != 50 || d.Commits[0].Metadata != "meta" {
		t.Fatalf("describe %+v", d)
	}
	if gs := h.c.Groups(); len(gs) != 1 || gs[0].Members != 1 || gs[0].State != StateStable {
		t.Fatalf("groups %+v", gs)
	}
	wantErr(t, "delete while active", h.c.Delete("g"), ErrGroupActive)
	_, err = h.c.ResetOffsets("g", "t", map[uint32]uint64{0: 0}, true)
	wantErr(t, "reset while active (even dry-run)", err, ErrGroupActive)
	wantErr(t, "leave", h.c.Leave("g", a.id), nil)
	h.persist()

	plan, err := h.c.ResetOffsets("g", "t", map[uint32]uint64{1: 10, 0: 3}, true)
	want := []ResetChange{{TopicPartition{"t", 0}, false, 0, 3}, {TopicPartition{"t", 1}, true, 50, 10}}
	if err != nil || !slices.Equal(plan, want) {
		t.Fatalf("dry run: %+v, %v; want %+v", plan, err, want)
	}
	if cm, _ := h.c.Committed("g", "t", 1); cm.Offset != 50 || h.c.HasReady() {
		t.Fatalf("dry run changed the commit to %d", cm.Offset)
	}
	if plan, err = h.c.ResetOffsets("g", "t", map[uint32]uint64{1: 10, 0: 3}, false); err != nil || len(plan) != 2 {
		t.Fatalf("reset: %v", err)
	}
	if cm, _ := h.c.Committed("g", "t", 1); cm.Offset != 10 {
		t.Fatalf("reset left %d", cm.Offset)
	}
	h.persist()
	wantErr(t, "delete", h.c.Delete("g"), nil)
	h.persist()
	_, err = h.c.Describe("g")
	wantErr(t, "describe deleted", err, ErrUnknownGroup)
	wantErr(t, "delete unknown", h.c.Delete("g"), ErrUnknownGroup)
	wantErr(t, "delete invalid", h.c.Delete("x/y"), ErrInvalidGroupName)
	_, err = h.c.ResetOffsets("bad name", "t", nil, false)
	wantErr(t, "reset invalid", err, ErrInvalidGroupName)
	h.restart()
	if len(h.c.Groups()) != 0 {
		t.Fatalf("deleted group restored: %+v", h.c.Groups())
	}
}

func TestResetSpec(t *testing.T) {
	b := PartitionBounds{Start: 10, End: 100, AtTime: 42}
	cases := []struct {
		in   string
		want uint64
		err  bool
	}{
		{"earliest", 10, false},
		{"latest", 100, false},
		{"50", 50, false},
		{"5", 10, false},    // clamped to the log start
		{"500", 100, false}, // clamped to the log end
		{"@1700000000000", 42, false},
		{"@2026-01-02T03:04:05Z", 42, false},
		{"", 0, true},
		{"-1", 0, true},
		{"@yesterday", 0, true},
		{"first", 0, true},
	}
	for _, tc := range cases {
		s, err := ParseResetSpec(tc.in)
		if tc.err {
			if !errors.Is(err, ErrInvalidRequest) {
				t.Errorf("%q: %v, want ErrInvalidRequest", tc.in, err)
			}
			continue
		}
		if err != nil || s.Resolve(b) != tc.want {
			t.Errorf("%q: %+v resolves to %d, %v; want %d", tc.in, s, s.Resolve(b), err, tc.want)
		}
	}
}

func TestLimits(t *testing.T) {
	cfg := testCfg
	cfg.MaxGroups, cfg.MaxMembers = 2, 2
	c := New(cfg)
	c.SetTopic("t", 1)
	join := func(g string) error {
		_, err := c.Join(0, JoinRequest{Group: g, Type: TypeFailover, Topics: []string{"t"}, SessionTimeout: time.Second * 5})
		return err
	}
	wantErr(t, "g1", join("g1"), nil)
	wantErr(t, "g2", join("g2"), nil)
	wantErr(t, "third group", join("g3"), ErrTooManyGroups)
	wantErr(t, "third group by commit", c.Commit("g3", "", 0, "t", 0, 1, ""), ErrTooManyGroups)
	wantErr(t, "g1 second member", join("g1"), nil)
	wantErr(t, "g1 third member", join("g1"), ErrTooManyMembers)
	wantErr(t, "long metadata", c.Commit("x", "", 0, "t", 0, 1, strings.Repeat("m", MaxMetadataLen+1)), ErrInvalidRequest)
}

func TestReadyAdvance(t *testing.T) {
	c := New(testCfg)
	c.SetTopic("t", 4)
	if c.HasReady() {
		t.Fatal("metadata alone wrote records")
	}
	a, _ := c.Join(0, JoinRequest{Group: "g", Type: TypeFailover, Topics: []string{"t"}, SessionTimeout: 5 * time.Second})
	for i := range 5 {
		_ = c.Commit("g", a.Member, a.MemberEpoch, "t", 0, uint64(i), "")
	}
	rd := c.Ready()
	kinds := map[RecordKind]int{}
	for _, r := range rd.Records {
		kinds[r.Kind]++
	}
	if kinds[KindGroup] != 1 || kinds[KindMember] != 1 || kinds[KindCommit] != 1 || rd.Records[2].Commit.Offset != 4 {
		t.Fatalf("records %+v: want one per key, the last commit", rd.Records)
	}
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.HasPrefix(r.(string), "BUG:") {
				t.Fatalf("second Ready: %v", r)
			}
		}()
		c.Ready()
	}()
	c.Advance()
	if c.HasReady() {
		t.Fatal("records left after Advance")
	}
}

// TestMemberIDs: client-chosen member ids are checked and unique; they
// keep a zombie of a deleted group out of the group created again under
// the same name (whose epochs start over).
func TestMemberIDs(t *testing.T) {
	c := New(testCfg)
	c.SetTopic("t", 1)
	join := func(id string) (Assignment, error) {
		return c.Join(0, JoinRequest{Group: "g", Type: TypeFailover, ClientID: "app", Topics: []string{"t"},
			SessionTimeout: time.Second, MemberID: id})
	}
	old, err := join("3f1c9a2e-0001")
	wantErr(t, "join with an id", err, nil)
	_, err = join("3f1c9a2e-0001")
	wantErr(t, "same id again", err, ErrInvalidRequest)
	_, err = join("bad id")
	wantErr(t, "invalid id", err, ErrInvalidRequest)
	gen, err := join("")
	wantErr(t, "generated id", err, nil)
	if gen.Member != "app#2" {
		t.Fatalf("generated id %q", gen.Member)
	}
	// Both time out (the first becomes a zombie); the group is deleted and
	// created again, and the epochs start over.
	c.Tick(2 * time.Second)
	wantErr(t, "delete", c.Delete("g"), nil)
	fresh, err := join("7d2b44c0-0002")
	wantErr(t, "join the new group", err, nil)
	if fresh.MemberEpoch > old.MemberEpoch {
		t.Fatalf("epochs did not start over (%d, %d): the test shows nothing", fresh.MemberEpoch, old.MemberEpoch)
	}
	err = c.Commit("g", old.Member, old.MemberEpoch, "t", 0, 1, "")
	wantErr(t, "zombie of the deleted group", err, ErrUnknownMember)
}

func TestStats(t *testing.T) {
	h := newHarness(t, map[string]uint32{"t": 4})
	a := h.mustJoin("g", TypeFailover, "a", "t")
	h.mustJoin("g", TypeFailover, "b", "t") // a must release two: reconciling
	wantErr(t, "commit", h.c.Commit("g", a.id, a.epoch, "t", 0, 1, ""), nil)
	wantErr(t, "fenced", h.c.Commit("g", "nobody", 1, "t", 0, 1, ""), ErrUnknownMember)
	wantErr(t, "commit", h.c.Commit("idle", "", 0, "t", 0, 1, ""), nil)
	st := h.c.Stats()
	want := Stats{Groups: [3]int{StateEmpty: 1, StateReconciling: 1}, Members: 2,
		Counters: Counters{Rebalances: 2, Commits: 2, Fenced: 1}}
	if st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
	h.tick(11 * time.Second)
	if st := h.c.Stats(); st.Expired != 2 || st.Members != 0 || st.Groups[StateEmpty] != 2 {
		t.Fatalf("after expiry %+v", st)
	}
}
