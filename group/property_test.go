package group

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestProperty drives the coordinator with seeded random joins, leaves,
// heartbeats, crashes, pauses (zombie members), commits, topic growth and
// restarts from the records, and checks after every step:
//   - no partition is held by two members at once, every member may
//     commit what it holds, and successive owners of a partition have
//     disjoint epoch ranges;
//   - a commit never goes backwards (a zombie's stale commit is refused);
//   - after a quiet period every partition of a subscribed topic is owned
//     by a live member and every group is stable;
//   - the state restored from the records equals the live state.
//
// Replay a failure with -seed N.
func TestProperty(t *testing.T) {
	seed := seedOrRandom()
	t.Logf("seed %d (replay with -run TestProperty -seed %d)", seed, seed)
	steps := 4000
	if testing.Short() {
		steps = 1000
	}
	// A loaded machine (the race detector, parallel builds) may run fewer
	// steps; the log says how many, and -seed N replays them.
	budget := time.Now().Add(8 * time.Second)
	s := newPropSim(t, seed)
	done := 0
	for done < steps && (done < 500 || time.Now().Before(budget)) {
		s.step(done)
		done++
	}
	s.quiet()
	s.restart()
	t.Logf("%d of %d steps: %d joins (%d refused), %d leaves, %d crashes, %d pauses, %d restarts, %d commits (%d fenced)",
		done, steps, s.stats.joins, s.stats.refused, s.stats.leaves, s.stats.crashes, s.stats.pauses,
		s.stats.restarts, s.stats.commits, s.stats.fenced)
}

type propGroup struct {
	name   string
	typ    Type
	topics []string
}

var propGroups = []propGroup{
	{"g1", TypeFailover, []string{"a", "b"}},
	{"g2", TypeFailover, []string{"a"}},
	{"x", TypeExclusive, []string{"b"}},
}

type propClient struct {
	*consumer
	typ    Type
	topics []string
	paused bool
	nextHB time.Duration
	pos    map[TopicPartition]uint64
}

type propSim struct {
	t       *testing.T
	rng     *rand.Rand
	h       *harness
	clients []*propClient
	// committed is the oracle: the last accepted commit per group and partition.
	committed map[commitKey]uint64
	nextName  int
	stats     struct{ joins, refused, leaves, crashes, pauses, restarts, commits, fenced int }
}

func newPropSim(t *testing.T, seed int64) *propSim {
	s := &propSim{t: t, rng: rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15)), committed: map[commitKey]uint64{}}
	s.h = newHarness(t, map[string]uint32{"a": 1 + s.rng.Uint32N(8), "b": 1 + s.rng.Uint32N(4)})
	return s
}

func (s *propSim) live() []*propClient {
	return slices.DeleteFunc(slices.Clone(s.clients), func(c *propClient) bool { return c.dead })
}

func (s *propSim) step(i int) {
	s.h.now += time.Duration(50+s.rng.IntN(300)) * time.Millisecond
	s.h.c.Tick(s.h.now)
	s.h.persist()
	switch r := s.rng.IntN(100); {
	case r < 6:
		s.join(propGroups[s.rng.IntN(len(propGroups))])
	case r < 8:
		s.leave()
	case r < 10:
		s.crash()
	case r < 13:
		s.pause()
	case r < 40:
		s.commit()
	case r < 41:
		topic := []string{"a", "b"}[s.rng.IntN(2)]
		s.h.c.SetTopic(topic, s.h.c.topics[topic]+1+s.rng.Uint32N(2))
		s.h.persist()
	case r < 42:
		s.restart()
	}
	s.heartbeats()
	s.check()
	if i%500 == 499 {
		s.quiet()
	}
}

func (s *propSim) join(pg propGroup) {
	if len(s.live()) >= 10 {
		return
	}
	s.nextName++
	name := fmt.Sprintf("c%d", s.nextName)
	a, err := s.h.join(pg.name, pg.typ, name, pg.topics...)
	if err != nil {
		if !errors.Is(err, ErrExclusiveHeld) {
			s.t.Fatalf("join %s to %s: %v", name, pg.name, err)
		}
		s.stats.refused++
		return
	}
	s.stats.joins++
	cl := &propClient{consumer: &consumer{group: pg.name, id: a.Member}, typ: pg.typ, topics: pg.topics,
		nextHB: s.h.now + time.Second, pos: map[TopicPartition]uint64{}}
	cl.take(a)
	s.clients = append(s.clients, cl)
	s.resume(cl)
}

func (s *propSim) pick(paused bool) *propClient {
	var cands []*propClient
	for _, c := range s.live() {
		if c.paused == paused {
			cands = append(cands, c)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	return cands[s.rng.IntN(len(cands))]
}

func (s *propSim) leave() {
	cl := s.pick(false)
	if cl == nil {
		return
	}
	for _, tp := range cl.holds {
		s.commitOne(cl, tp)
	}
	if err := s.h.c.Leave(cl.group, cl.id); err != nil && !errors.Is(err, ErrUnknownMember) {
		s.t.Fatalf("leave %s: %v", cl.id, err)
	}
	s.h.persist()
	cl.dead = true
	s.stats.leaves++
}

func (s *propSim) crash() {
	if cl := s.pick(false); cl != nil {
		cl.dead = true
		s.stats.crashes++
	}
}

// pause makes a member a zombie (a GC pause, a partition from the broker);
// unpausing one lets it commit what it thinks it holds, then heartbeat.
func (s *propSim) pause() {
	if cl := s.pick(false); cl != nil {
		cl.paused = true
		s.stats.pauses++
		return
	}
	if cl := s.pick(true); cl != nil {
		cl.paused = false
		for _, tp := range cl.holds {
			s.commitOne(cl, tp)
		}
		cl.nextHB = s.h.now
	}
}

func (s *propSim) commit() {
	cl := s.pick(false)
	if cl == nil {
		return
	}
	if s.rng.IntN(5) == 0 {
		s.commitStray(cl)
		return
	}
	if len(cl.holds) > 0 {
		s.commitOne(cl, cl.holds[s.rng.IntN(len(cl.holds))])
	}
}

// commitStray: a buggy client commits any partition of its topics, held
// or not. Only the partition's owner may succeed.
func (s *propSim) commitStray(cl *propClient) {
	topic := cl.topics[s.rng.IntN(len(cl.topics))]
	n := s.h.c.topics[topic]
	tp := TopicPartition{topic, s.rng.Uint32N(n)}
	off := 1 + uint64(s.rng.IntN(100))
	err := s.h.c.Commit(cl.group, cl.id, cl.epoch, tp.Topic, tp.Partition, off, "")
	s.h.persist()
	s.stats.commits++
	if err != nil {
		if !errors.Is(err, ErrFenced) && !errors.Is(err, ErrUnknownMember) {
			s.t.Fatalf("commit by %s of %s: %v", cl.id, tp, err)
		}
		s.stats.fenced++
		return
	}
	if owner := s.h.c.groups[cl.group].owner[tp]; owner != cl.id {
		s.t.Fatalf("at %v %s committed %s/%s, owned by %q", s.h.now, cl.id, cl.group, tp, owner)
	}
	s.committed[commitKey{cl.group, tp}] = off // the owner's own choice
	if _, ok := cl.pos[tp]; ok {
		cl.pos[tp] = off
	}
}

// commitOne commits a little past the client's position. An accepted
// commit must not be below the last accepted one.
func (s *propSim) commitOne(cl *propClient, tp TopicPartition) {
	off := cl.pos[tp] + 1 + uint64(s.rng.IntN(100))
	err := s.h.c.Commit(cl.group, cl.id, cl.epoch, tp.Topic, tp.Partition, off, "")
	s.h.persist()
	s.stats.commits++
	if err != nil {
		if !errors.Is(err, ErrFenced) && !errors.Is(err, ErrUnknownMember) {
			s.t.Fatalf("commit by %s of %s: %v", cl.id, tp, err)
		}
		s.stats.fenced++
		return
	}
	k := commitKey{cl.group, tp}
	if prev, ok := s.committed[k]; ok && off < prev {
		s.t.Fatalf("at %v %s committed %s back from %d to %d", s.h.now, cl.id, tp, prev, off)
	}
	s.committed[k] = off
	cl.pos[tp] = off
}

// heartbeats: every running client heartbeats each second; one that was
// removed joins again as a new member.
func (s *propSim) heartbeats() {
	for _, cl := range s.live() {
		if cl.paused || s.h.now < cl.nextHB {
			continue
		}
		cl.nextHB = s.h.now + time.Second
		for _, tp := range cl.revoke { // flush commits before release
			s.commitOne(cl, tp)
		}
		err := s.h.heartbeat(cl.consumer)
		if errors.Is(err, ErrUnknownMember) {
			cl.dead = true
			s.join(propGroups[slices.IndexFunc(propGroups, func(g propGroup) bool { return g.name == cl.group })])
			continue
		}
		if err != nil {
			s.t.Fatalf("heartbeat %s: %v", cl.id, err)
		}
		s.resume(cl)
	}
}

// resume sets the position of newly held partitions to the last commit.
func (s *propSim) resume(cl *propClient) {
	for tp := range cl.pos {
		if !slices.Contains(cl.holds, tp) {
			delete(cl.pos, tp)
		}
	}
	for _, tp := range cl.holds {
		if _, ok := cl.pos[tp]; !ok {
			cm, _ := s.h.c.Committed(cl.group, tp.Topic, tp.Partition)
			cl.pos[tp] = cm.Offset
		}
	}
}

// check: among the clients the coordinator still counts as members, no
// partition is held twice, each may commit what it holds, and the
// coordinator's commits match the oracle.
func (s *propSim) check() {
	holder := map[commitKey]string{}
	for _, cl := range s.live() {
		g := s.h.c.groups[cl.group]
		if g == nil || g.members[cl.id] == nil {
			continue
		}
		for _, tp := range cl.holds {
			k := commitKey{cl.group, tp}
			if other, ok := holder[k]; ok {
				s.t.Fatalf("at %v %s/%s is held by %s and %s", s.h.now, cl.group, tp, other, cl.id)
			}
			holder[k] = cl.id
			if err := s.h.c.CanCommit(cl.group, cl.id, cl.epoch, tp.Topic, tp.Partition); err != nil {
				s.t.Fatalf("at %v %s holds %s/%s but may not commit: %v", s.h.now, cl.id, cl.group, tp, err)
			}
		}
	}
	for k, off := range s.committed {
		if cm, ok := s.h.c.Committed(k.group, k.tp.Topic, k.tp.Partition); !ok || cm.Offset != off {
			s.t.Fatalf("commit %s/%s is %d (%v), the oracle says %d", k.group, k.tp, cm.Offset, ok, off)
		}
	}
}

// quiet lets the running clients heartbeat, without other changes, for a
// session timeout and four heartbeats: zombies time out (one step late at
// most), the rebalance that follows may make an owner revoke (told at its
// next heartbeat, released at the one after) and the new owner learns of
// it at its next; then every partition of every subscribed topic is owned
// by a running member and every group is stable.
func (s *propSim) quiet() {
	end := s.h.now + 10*time.Second + 4*time.Second + 400*time.Millisecond
	for s.h.now < end {
		s.h.now += 100 * time.Millisecond
		s.h.c.Tick(s.h.now)
		s.h.persist()
		s.heartbeats()
		s.check()
	}
	for _, pg := range propGroups {
		g := s.h.c.groups[pg.name]
		if g == nil || len(g.members) == 0 {
			continue
		}
		if st := g.state(); st != StateStable {
			d, _ := s.h.c.Describe(pg.name)
			s.t.Fatalf("at %v group %s is %v after a quiet period: %+v", s.h.now, pg.name, st, d)
		}
		held := map[TopicPartition]bool{}
		for _, cl := range s.live() {
			if cl.group == pg.name && !cl.paused {
				for _, tp := range cl.holds {
					held[tp] = true
				}
			}
		}
		for _, topic := range pg.topics {
			for p := range s.h.c.topics[topic] {
				if tp := (TopicPartition{topic, p}); !held[tp] {
					s.t.Fatalf("at %v group %s: %s is held by no running member (owner %q)", s.h.now, pg.name, tp, g.owner[tp])
				}
			}
		}
	}
}

// restart restores a coordinator from the log, checks it equals the live
// one (also as a compacted log), and carries on with it.
func (s *propSim) restart() {
	live := s.h.c.Records()
	recs := s.h.records()
	compacted := map[string]Record{}
	for _, r := range Compact(recs, true) {
		compacted[r.Key()] = r
	}
	byKey := map[string]Record{}
	for _, r := range live {
		byKey[r.Key()] = r
	}
	if !maps.EqualFunc(byKey, compacted, func(a, b Record) bool { return reflect.DeepEqual(a, b) }) {
		s.t.Fatalf("compacted log differs from the live state:\n log  %+v\n live %+v", compacted, byKey)
	}
	s.h.restartFrom(recs)
	if got := s.h.c.Records(); !reflect.DeepEqual(got, live) {
		s.t.Fatalf("restored state differs:\n got  %+v\n want %+v", got, live)
	}
	s.stats.restarts++
}

// TestPropertyReplays: one seed runs the same twice (the coordinator and
// the simulation are deterministic), so a printed seed replays a failure.
func TestPropertyReplays(t *testing.T) {
	seed := seedOrRandom()
	t.Logf("seed %d", seed)
	var logs [2][]byte
	for i := range logs {
		s := newPropSim(t, seed)
		for j := range 300 {
			s.step(j)
		}
		logs[i] = s.h.log
	}
	if !reflect.DeepEqual(logs[0], logs[1]) {
		t.Fatalf("seed %d wrote %d then %d bytes of records", seed, len(logs[0]), len(logs[1]))
	}
}
