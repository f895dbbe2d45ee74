package group

import (
	"errors"
	"flag"
	"slices"
	"testing"
	"time"
)

var (
	seedFlag = flag.Int64("seed", 0, "replay the randomized tests with this seed (0: a new one)")
	rewrite  = flag.Bool("rewrite", false, "rewrite the golden files under testdata")
)

func seedOrRandom() int64 {
	if *seedFlag != 0 {
		return *seedFlag
	}
	return time.Now().UnixNano()
}

var testCfg = Config{MinSessionTimeout: time.Second, MaxSessionTimeout: time.Minute, HeartbeatInterval: time.Second}

// harness drives a Coordinator like the server will: every input, then
// Ready, its records appended (encoded) to a log, Advance.
type harness struct {
	t   testing.TB
	c   *Coordinator
	now time.Duration
	log []byte
	// tenure is, per partition, its current owner's ownership in epochs.
	tenure map[commitKey]tenure
}

// tenure: member owned the partition from epoch since, and could commit
// it up to epoch last.
type tenure struct {
	member      string
	since, last uint32
}

func newHarness(t testing.TB, topics map[string]uint32) *harness {
	h := &harness{t: t, c: New(testCfg)}
	for name, n := range topics {
		h.c.SetTopic(name, n)
	}
	h.persist()
	return h
}

// persist appends Ready's records to the log and checks the invariants.
func (h *harness) persist() {
	h.t.Helper()
	if err := h.c.check(); err != nil {
		h.t.Fatalf("BUG: invariants at %v: %v", h.now, err)
	}
	h.checkTenures()
	if !h.c.HasReady() {
		return
	}
	rd := h.c.Ready()
	for i := range rd.Records {
		h.log = AppendRecord(h.log, &rd.Records[i])
	}
	h.c.Advance()
}

// records parses the whole log.
func (h *harness) records() []Record {
	h.t.Helper()
	var recs []Record
	for rest := h.log; len(rest) > 0; {
		r, next, err := ParseRecord(rest)
		if err != nil {
			h.t.Fatalf("log at %d: %v", len(h.log)-len(rest), err)
		}
		recs = append(recs, r)
		rest = next
	}
	return recs
}

// restart replaces the coordinator with one restored from the log.
func (h *harness) restart() { h.restartFrom(h.records()) }

// restartFrom is restart with the log already parsed.
func (h *harness) restartFrom(recs []Record) {
	h.t.Helper()
	c, err := Restore(testCfg, h.c.topics, recs, h.now)
	if err != nil {
		h.t.Fatalf("restore: %v", err)
	}
	if c.HasReady() {
		h.t.Fatalf("restored coordinator has records to write: %+v", c.Ready().Records)
	}
	h.c = c
}

func (h *harness) join(group string, typ Type, client string, topics ...string) (Assignment, error) {
	h.t.Helper()
	a, err := h.c.Join(h.now, JoinRequest{Group: group, Type: typ, ClientID: client, Addr: "127.0.0.1:" + client,
		Topics: topics, SessionTimeout: 10 * time.Second})
	h.persist()
	return a, err
}

func (h *harness) mustJoin(group string, typ Type, client string, topics ...string) *consumer {
	h.t.Helper()
	a, err := h.join(group, typ, client, topics...)
	if err != nil {
		h.t.Fatalf("join %s %s: %v", group, client, err)
	}
	cl := &consumer{group: group, id: a.Member}
	cl.take(a)
	return cl
}

// consumer is a well-behaved client: it reads what it is assigned, and on
// its next heartbeat releases what it was told to revoke.
type consumer struct {
	group  string
	id     string
	epoch  uint32
	holds  []TopicPartition // assigned + revoking: what it may still read
	revoke []TopicPartition
	dead   bool
}

func (cl *consumer) take(a Assignment) {
	cl.epoch = a.MemberEpoch
	cl.holds = slices.SortedFunc(slices.Values(append(slices.Clone(a.Assigned), a.Revoke...)), tpLess)
	cl.revoke = a.Revoke
}

func (h *harness) heartbeat(cl *consumer) error {
	h.t.Helper()
	owned := slices.DeleteFunc(slices.Clone(cl.holds), func(tp TopicPartition) bool { return slices.Contains(cl.revoke, tp) })
	a, err := h.c.Heartbeat(h.now, HeartbeatRequest{Group: cl.group, Member: cl.id, MemberEpoch: cl.epoch, Owned: owned})
	h.persist()
	if err != nil {
		return err
	}
	cl.take(a)
	return nil
}

func (h *harness) mustHeartbeat(cl *consumer) {
	h.t.Helper()
	if err := h.heartbeat(cl); err != nil {
		h.t.Fatalf("heartbeat %s: %v", cl.id, err)
	}
}

func (h *harness) tick(d time.Duration) {
	h.t.Helper()
	h.now += d
	h.c.Tick(h.now)
	h.persist()
}

func tps(topic string, parts ...uint32) []TopicPartition {
	out := make([]TopicPartition, len(parts))
	for i, p := range parts {
		out[i] = TopicPartition{topic, p}
	}
	return out
}

func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		t.Fatalf("%s: %v, want %v", what, err, want)
	}
}

// checkTenures: no partition is owned by two members in overlapping
// epochs. A new owner's tenure starts after the epochs in which the
// previous one could commit.
func (h *harness) checkTenures() {
	h.t.Helper()
	if h.tenure == nil {
		h.tenure = map[commitKey]tenure{}
	}
	for name, g := range h.c.groups {
		for id, m := range g.members {
			for tp, since := range m.owned {
				k := commitKey{name, tp}
				prev, ok := h.tenure[k]
				if ok && prev.member != id && since <= prev.last {
					h.t.Fatalf("at %v %s/%s: %s owns it from epoch %d, %s could commit it up to epoch %d",
						h.now, name, tp, id, since, prev.member, prev.last)
				}
				if ok && prev.member == id && prev.since == since {
					prev.last = max(prev.last, m.epoch)
					h.tenure[k] = prev
					continue
				}
				h.tenure[k] = tenure{member: id, since: since, last: m.epoch}
			}
		}
	}
}
