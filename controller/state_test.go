package controller

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// build applies cmds at indexes 1, 2, ... and fails on a rejection.
func build(t *testing.T, cmds ...Command) *State {
	t.Helper()
	s := NewState(0)
	for _, c := range cmds {
		apply(t, s, c)
	}
	return s
}

func apply(t *testing.T, s *State, c Command) {
	t.Helper()
	if err := s.Apply(s.Applied()+1, c); err != nil {
		t.Fatalf("apply %s %+v: %v", c.Type, c, err)
	}
	if err := s.CheckInvariants(); err != nil {
		t.Fatalf("after %s: %v", c.Type, err)
	}
}

func reg(id int32) Command {
	return Command{Type: CmdRegisterBroker, Broker: id, Addr: fmt.Sprintf("127.0.0.1:%d", 9400+10*id), LogsIntact: true}
}

func create(topic string, n, r int32) Command {
	return Command{Type: CmdCreateTopic, Topic: topic, Partitions: n, Replicas: r}
}

func fence(s *State, id int32) Command {
	b, _ := s.Broker(id)
	return Command{Type: CmdFenceBroker, Broker: id, BrokerEpoch: b.Epoch}
}

func part(t *testing.T, s *State, topic string, i int) Partition {
	t.Helper()
	tp, ok := s.Topic(topic)
	if !ok || i >= len(tp.Partitions) {
		t.Fatalf("no partition %s/%d", topic, i)
	}
	return tp.Partitions[i]
}

// TestPlacementEven checks that replicas and preferred leaders spread
// evenly over alive brokers, across several topics.
func TestPlacementEven(t *testing.T) {
	cases := []struct {
		brokers int32
		topics  [][2]int32 // partitions, replicas
	}{
		{1, [][2]int32{{4, 1}}},
		{3, [][2]int32{{6, 2}}},
		{3, [][2]int32{{1, 1}, {1, 1}, {1, 1}, {3, 3}}},
		{5, [][2]int32{{7, 3}, {3, 2}, {10, 1}}},
		{4, [][2]int32{{2, 4}, {2, 4}}},
	}
	for _, tc := range cases {
		s := NewState(0)
		for id := int32(1); id <= tc.brokers; id++ {
			apply(t, s, reg(id))
		}
		for i, tp := range tc.topics {
			apply(t, s, create(fmt.Sprintf("t%d", i), tp[0], tp[1]))
		}
		leaders, replicas := map[int32]int{}, map[int32]int{}
		s.forEachPartition(func(topic string, i int32, p *Partition) {
			leaders[p.Leader]++
			for _, r := range p.Replicas {
				replicas[r]++
			}
			if !slices.Equal(p.ISR, p.Replicas) || p.Leader != p.Replicas[0] {
				t.Errorf("%s/%d starts with %+v", topic, i, *p)
			}
		})
		if spread(leaders, tc.brokers) > 1 || spread(replicas, tc.brokers) > 1 {
			t.Errorf("%d brokers %v: leaders %v replicas %v, want within 1 of each other", tc.brokers, tc.topics, leaders, replicas)
		}
	}
}

func spread(counts map[int32]int, brokers int32) int {
	lo, hi := counts[1], counts[1]
	for id := int32(1); id <= brokers; id++ {
		lo, hi = min(lo, counts[id]), max(hi, counts[id])
	}
	return hi - lo
}

func TestPlacementOnlyAliveBrokers(t *testing.T) {
	s := build(t, reg(1), reg(2), reg(3))
	apply(t, s, fence(s, 2))
	err := s.Apply(s.Applied()+1, create("big", 1, 3))
	if !errors.Is(err, ErrNotEnoughBrokers) || !strings.Contains(err.Error(), "replication factor 3 > 2 live brokers") {
		t.Fatalf("R=3 over 2 live brokers: %v", err)
	}
	if _, ok := s.Topic("big"); ok {
		t.Fatal("refused topic exists")
	}
	apply(t, s, create("ok", 4, 2))
	s.forEachPartition(func(_ string, _ int32, p *Partition) {
		if slices.Contains(p.Replicas, 2) {
			t.Fatalf("fenced broker 2 placed: %+v", *p)
		}
	})
}

func TestFence(t *testing.T) {
	s := build(t, reg(1), reg(2), reg(3), create("a", 3, 2), create("solo", 1, 1))
	// a: [1 2] [3 1] [2 3]; solo: [1]
	stale := fence(s, 1)
	stale.BrokerEpoch--
	if err := s.Apply(s.Applied()+1, stale); !errors.Is(err, ErrStaleBrokerEpoch) {
		t.Fatalf("fence with a stale epoch: %v", err)
	}
	apply(t, s, fence(s, 1))
	if b, _ := s.Broker(1); b.Alive {
		t.Fatal("broker 1 alive after fence")
	}
	want := []Partition{
		{Replicas: []int32{1, 2}, Leader: 2, LeaderEpoch: 1, PartitionEpoch: 1, ISR: []int32{2}},
		{Replicas: []int32{3, 1}, Leader: 3, LeaderEpoch: 0, PartitionEpoch: 1, ISR: []int32{3}},
		{Replicas: []int32{2, 3}, Leader: 2, LeaderEpoch: 0, PartitionEpoch: 0, ISR: []int32{2, 3}},
	}
	for i, w := range want {
		if got := part(t, s, "a", i); fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("a/%d %+v, want %+v", i, got, w)
		}
	}
	// Last replica standing: offline, the ISR keeps the fenced broker.
	if got := part(t, s, "solo", 0); got.Leader != NoLeader || got.LeaderEpoch != 1 || !slices.Equal(got.ISR, []int32{1}) {
		t.Errorf("solo/0 %+v, want offline with ISR [1] at leader epoch 1", got)
	}
	if err := s.Apply(s.Applied()+1, fence(s, 1)); !errors.Is(err, ErrBrokerFenced) {
		t.Fatalf("second fence: %v", err)
	}
}

func TestReRegister(t *testing.T) {
	cases := []struct {
		name     string
		intact   bool
		fenced   bool // fenced before registering again
		soloWant Partition
	}{
		{"restart in session, logs intact", true, false,
			Partition{Replicas: []int32{1}, Leader: 1, LeaderEpoch: 1, PartitionEpoch: 1, ISR: []int32{1}}},
		{"fenced, back with logs", true, true,
			Partition{Replicas: []int32{1}, Leader: 1, LeaderEpoch: 2, PartitionEpoch: 2, ISR: []int32{1}}},
		{"fenced, back with an empty disk", false, true,
			Partition{Replicas: []int32{1}, Leader: NoLeader, LeaderEpoch: 1, PartitionEpoch: 2, ISR: []int32{}}},
		{"restart in session, empty disk", false, false,
			Partition{Replicas: []int32{1}, Leader: NoLeader, LeaderEpoch: 1, PartitionEpoch: 1, ISR: []int32{}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := build(t, reg(1), reg(2), reg(3), create("a", 3, 2), create("solo", 1, 1))
			if tc.fenced {
				apply(t, s, fence(s, 1))
			}
			r := reg(1)
			r.LogsIntact = tc.intact
			apply(t, s, r)
			if b, _ := s.Broker(1); !b.Alive || b.Epoch != s.Applied() {
				t.Fatalf("broker 1 %+v, want alive at epoch %d", b, s.Applied())
			}
			for i := range 3 {
				if p := part(t, s, "a", i); slices.Contains(p.ISR, 1) || p.Leader == 1 {
					t.Errorf("a/%d %+v still counts the restarted broker 1", i, p)
				}
			}
			if got := part(t, s, "solo", 0); fmt.Sprint(got) != fmt.Sprint(tc.soloWant) {
				t.Errorf("solo/0 %+v, want %+v", got, tc.soloWant)
			}
		})
	}
}

func TestISRChanges(t *testing.T) {
	base := func(t *testing.T) *State {
		s := build(t, reg(1), reg(2), reg(3), create("a", 1, 3)) // a/0: [1 2 3]
		apply(t, s, Command{Type: CmdShrinkISR, Topic: "a", PartitionEpoch: 0, Broker: 3})
		return s // a/0: ISR [1 2], partition epoch 1
	}
	b3 := func(s *State) uint64 { b, _ := s.Broker(3); return b.Epoch }
	cases := []struct {
		name string
		prep func(*State)
		cmd  func(*State) Command
		want error
	}{
		{"expand", nil, func(s *State) Command {
			return Command{Type: CmdExpandISR, Topic: "a", PartitionEpoch: 1, Broker: 3, BrokerEpoch: b3(s)}
		}, nil},
		{"expand at a stale partition epoch", nil, func(s *State) Command {
			return Command{Type: CmdExpandISR, Topic: "a", PartitionEpoch: 0, Broker: 3, BrokerEpoch: b3(s)}
		}, ErrStalePartitionEpoch},
		{"expand with a stale broker epoch", nil, func(s *State) Command {
			return Command{Type: CmdExpandISR, Topic: "a", PartitionEpoch: 1, Broker: 3, BrokerEpoch: b3(s) - 1}
		}, ErrStaleBrokerEpoch},
		{"expand a fenced broker", func(s *State) { _ = s.Apply(s.Applied()+1, fence(s, 3)) }, func(s *State) Command {
			return Command{Type: CmdExpandISR, Topic: "a", PartitionEpoch: 1, Broker: 3, BrokerEpoch: b3(s)}
		}, ErrBrokerFenced},
		{"expand a member", nil, func(s *State) Command {
			return Command{Type: CmdExpandISR, Topic: "a", PartitionEpoch: 1, Broker: 2, BrokerEpoch: 2}
		}, ErrAlreadyInISR},
		{"expand a non-replica", func(s *State) { _ = s.Apply(s.Applied()+1, reg(4)) }, func(s *State) Command {
			return Command{Type: CmdExpandISR, Topic: "a", PartitionEpoch: 1, Broker: 4, BrokerEpoch: s.Applied()}
		}, ErrNotReplica},
		{"shrink the leader", nil, func(s *State) Command {
			return Command{Type: CmdShrinkISR, Topic: "a", PartitionEpoch: 1, Broker: 1}
		}, ErrInvalid},
		{"elect outside the ISR (unclean)", nil, func(s *State) Command {
			return Command{Type: CmdElectLeader, Topic: "a", PartitionEpoch: 1, Broker: 3}
		}, ErrNotInISR},
		{"elect", nil, func(s *State) Command {
			return Command{Type: CmdElectLeader, Topic: "a", PartitionEpoch: 1, Broker: 2}
		}, nil},
		{"elect the leader", nil, func(s *State) Command {
			return Command{Type: CmdElectLeader, Topic: "a", PartitionEpoch: 1, Broker: 1}
		}, ErrAlreadyLeader},
		{"unknown partition", nil, func(s *State) Command {
			return Command{Type: CmdElectLeader, Topic: "a", Partition: 1, PartitionEpoch: 1, Broker: 2}
		}, ErrUnknownTopic},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := base(t)
			if tc.prep != nil {
				tc.prep(s)
			}
			before := part(t, s, "a", 0)
			err := s.Apply(s.Applied()+1, tc.cmd(s))
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			after := part(t, s, "a", 0)
			if err != nil && fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("rejected command changed %+v into %+v", before, after)
			}
			if err == nil && after.PartitionEpoch != before.PartitionEpoch+1 {
				t.Fatalf("partition epoch %d -> %d, want +1", before.PartitionEpoch, after.PartitionEpoch)
			}
			if err := s.CheckInvariants(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestAlterAndAddPartitions(t *testing.T) {
	s := build(t, reg(1), reg(2), create("a", 2, 1),
		Command{Type: CmdAlterTopic, Topic: "a", Configs: []ConfigEntry{{"flush", "sync"}}},
		Command{Type: CmdAddPartitions, Topic: "a", Partitions: 4, Replicas: 2})
	a, _ := s.Topic("a")
	if len(a.Configs) != 1 || a.Configs[0] != (ConfigEntry{"flush", "sync"}) || len(a.Partitions) != 4 {
		t.Fatalf("topic a %+v", a)
	}
	for i, p := range a.Partitions[2:] {
		if len(p.Replicas) != 2 || p.Leader != p.Replicas[0] || len(p.ISR) != 2 {
			t.Errorf("added partition %d %+v", i+2, p)
		}
	}
	if err := s.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

func TestRejectsInvalid(t *testing.T) {
	s := build(t, reg(1), create("a", 1, 1))
	cases := []struct {
		cmd  Command
		want error
	}{
		{Command{Type: CmdRegisterBroker, Broker: 0, Addr: "x:1"}, ErrInvalid},
		{Command{Type: CmdRegisterBroker, Broker: 2}, ErrInvalid},
		{create("a", 1, 1), ErrTopicExists},
		{create("bad/name", 1, 1), ErrInvalid},
		{create("b", 0, 1), ErrInvalid},
		{create("b", 1, 0), ErrInvalid},
		{Command{Type: CmdCreateTopic, Topic: "b", Partitions: 1, Replicas: 1,
			Configs: []ConfigEntry{{"z", "1"}, {"a", "2"}}}, ErrInvalid},
		{Command{Type: CmdDeleteTopic, Topic: "nope"}, ErrUnknownTopic},
		{Command{Type: CmdAlterTopic, Topic: "nope"}, ErrUnknownTopic},
		{Command{Type: CmdAlterTopic, Topic: "a", Configs: []ConfigEntry{{"z", "1"}, {"a", "2"}}}, ErrInvalid},
		{Command{Type: CmdAddPartitions, Topic: "nope", Partitions: 2, Replicas: 1}, ErrUnknownTopic},
		{Command{Type: CmdAddPartitions, Topic: "a", Partitions: 1, Replicas: 1}, ErrInvalid},
		{Command{Type: CmdAddPartitions, Topic: "a", Partitions: 2, Replicas: 2}, ErrNotEnoughBrokers},
		{Command{Type: CmdFenceBroker, Broker: 9}, ErrUnknownBroker},
		{Command{Type: 99}, ErrUnknownCommandType},
	}
	for _, tc := range cases {
		before, _, _ := ParseSnapshot(AppendSnapshot(nil, s))
		if err := s.Apply(s.Applied()+1, tc.cmd); !errors.Is(err, tc.want) {
			t.Errorf("%s %+v: %v, want %v", tc.cmd.Type, tc.cmd, err, tc.want)
		}
		before.applied = s.Applied() // only the applied index moves
		if !before.Equal(s) {
			t.Errorf("rejected %s changed the state", tc.cmd.Type)
		}
	}
}

// TestRandomHistory applies random commands (many rejected) and checks,
// after each, the invariants, that leader epochs never shrink and grow
// with every change of leader, and that a snapshot round-trips. Seeded;
// replay with -seed.
func TestRandomHistory(t *testing.T) {
	seed := seedOrRandom()
	t.Logf("seed %d (replay: go test ./controller/ -run TestRandomHistory -seed %d)", seed, seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	s := NewState(0)
	type epoch struct {
		leader int32
		epoch  int32
	}
	seen := map[string]epoch{}
	for step := range 3000 {
		c := randomCommand(rng, s)
		_ = s.Apply(s.Applied()+1, c)
		if err := s.CheckInvariants(); err != nil {
			t.Fatalf("seed %d step %d after %s %+v: %v", seed, step, c.Type, c, err)
		}
		s.forEachPartition(func(topic string, i int32, p *Partition) {
			k := fmt.Sprintf("%s/%d", topic, i)
			was, ok := seen[k]
			if ok && (p.LeaderEpoch < was.epoch || p.Leader != was.leader && p.LeaderEpoch == was.epoch) {
				t.Fatalf("seed %d step %d: %s leader %d epoch %d after leader %d epoch %d",
					seed, step, k, p.Leader, p.LeaderEpoch, was.leader, was.epoch)
			}
			seen[k] = epoch{p.Leader, p.LeaderEpoch}
		})
		if c.Type == CmdDeleteTopic {
			for k := range seen {
				if strings.HasPrefix(k, c.Topic+"/") {
					delete(seen, k)
				}
			}
		}
		if step%100 == 0 {
			if got, _, err := ParseSnapshot(AppendSnapshot(nil, s)); err != nil || !got.Equal(s) {
				t.Fatalf("seed %d step %d: snapshot round trip: %v", seed, step, err)
			}
		}
	}
}

// randomCommand picks a plausible command from s, sometimes stale.
func randomCommand(rng *rand.Rand, s *State) Command {
	broker := int32(1 + rng.IntN(5))
	topics := s.TopicNames()
	switch k := rng.IntN(10); {
	case k == 0:
		return Command{Type: CmdRegisterBroker, Broker: broker, Addr: "h:1", LogsIntact: rng.IntN(2) == 0}
	case k == 1:
		b, _ := s.Broker(broker)
		return Command{Type: CmdFenceBroker, Broker: broker, BrokerEpoch: b.Epoch}
	case k == 2:
		return create(fmt.Sprintf("t%d", rng.IntN(6)), int32(1+rng.IntN(3)), int32(1+rng.IntN(3)))
	case k == 3 && len(topics) > 0 && rng.IntN(4) == 0:
		return Command{Type: CmdDeleteTopic, Topic: topics[rng.IntN(len(topics))]}
	case len(topics) > 0:
		t := s.topics[topics[rng.IntN(len(topics))]]
		i := rng.IntN(len(t.Partitions))
		p := t.Partitions[i]
		r := p.Replicas[rng.IntN(len(p.Replicas))]
		b, _ := s.Broker(r)
		typ := []CommandType{CmdExpandISR, CmdExpandISR, CmdShrinkISR, CmdElectLeader}[rng.IntN(4)]
		return Command{Type: typ, Topic: t.Name, Partition: int32(i),
			PartitionEpoch: p.PartitionEpoch - int32(rng.IntN(2)), Broker: r, BrokerEpoch: b.Epoch}
	}
	return Command{Type: CmdRegisterBroker, Broker: broker, Addr: "h:1"}
}
