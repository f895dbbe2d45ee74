package group

import (
	"errors"
	"testing"
	"time"

	"github.com/ringmq/ringmq/group/ack"
)

var wall0 = time.Unix(1_700_000_000, 0)

func (h *harness) acquire(cl *consumer, tp TopicPartition, max int, logEnd uint64) []ack.Range {
	h.t.Helper()
	rs, err := h.c.ShareAcquire(wall0.Add(h.now), cl.group, cl.id, cl.epoch, tp, max, 0, logEnd, nil)
	if err != nil {
		h.t.Fatalf("acquire %s: %v", cl.id, err)
	}
	h.persist()
	return rs
}

func (h *harness) ackRange(cl *consumer, tp TopicPartition, op ShareOp, start, end uint64) error {
	h.t.Helper()
	_, err := h.c.ShareAcknowledge(wall0.Add(h.now), cl.group, cl.id, cl.epoch,
		ShareAck{TopicPartition: tp, Op: op, Start: start, End: end})
	h.persist()
	return err
}

// Three shared members of a one-partition topic split it, every record is
// handed out once and acked once, and the floor survives a restart.
func TestSharedThreeMembersSplitOnePartition(t *testing.T) {
	h := newHarness(t, map[string]uint32{"t": 1})
	tp := TopicPartition{"t", 0}
	var cls []*consumer
	for _, name := range []string{"a", "b", "c"} {
		cl := h.mustJoin("g", TypeShared, name, "t")
		if len(cl.holds) != 1 || cl.holds[0] != tp {
			t.Fatalf("member %s assigned %v, want [t/0]", name, cl.holds)
		}
		cls = append(cls, cl)
	}
	const n = 3000
	seen := make([]int, n)
	per := map[string]int{}
	for round := 0; round < n; round++ {
		cl := cls[round%3]
		rs := h.acquire(cl, tp, 7, n)
		for _, r := range rs {
			for off := r.Start; off < r.End; off++ {
				seen[off]++
				per[cl.id]++
			}
			if err := h.ackRange(cl, tp, ShareAccept, r.Start, r.End); err != nil {
				t.Fatal(err)
			}
		}
		if round == n/2 {
			h.restart()
		}
	}
	for off, k := range seen {
		if k != 1 {
			t.Fatalf("offset %d handed out %d times", off, k)
		}
	}
	for id, k := range per {
		if k < n/4 || k > n/2 {
			t.Errorf("member %s got %d of %d", id, k, n)
		}
	}
	if st := h.c.ShareStats("g")[tp]; st.Floor != n || st.InFlight != 0 {
		t.Fatalf("stats %+v, want floor %d and nothing in flight", st, n)
	}
	h.restart()
	if st := h.c.ShareStats("g")[tp]; st.Floor != n {
		t.Fatalf("floor after restart %d, want %d", st.Floor, n)
	}
}

// A member that leaves releases what it holds at once: the next member
// gets those records with their delivery count raised; a restart releases
// every lock and keeps the counts; an acked record is never handed out
// again.
func TestSharedLeaveAndRestartRedeliver(t *testing.T) {
	h := newHarness(t, map[string]uint32{"t": 1})
	tp := TopicPartition{"t", 0}
	a := h.mustJoin("g", TypeShared, "a", "t")
	b := h.mustJoin("g", TypeShared, "b", "t")
	rs := h.acquire(a, tp, 10, 100)
	if len(rs) != 1 || rs[0] != (ack.Range{Start: 0, End: 10, Deliveries: 1}) {
		t.Fatalf("a acquired %v", rs)
	}
	if err := h.ackRange(a, tp, ShareAccept, 0, 4); err != nil {
		t.Fatal(err)
	}
	if err := h.ackRange(b, tp, ShareAccept, 4, 5); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("b acked a's record: %v, want ErrNotHeld", err)
	}
	if err := h.c.Leave("g", a.id); err != nil {
		t.Fatal(err)
	}
	h.persist()
	rs = h.acquire(b, tp, 3, 100)
	if len(rs) != 1 || rs[0] != (ack.Range{Start: 4, End: 7, Deliveries: 2}) {
		t.Fatalf("b acquired %v after a left, want [4, 7) second delivery", rs)
	}
	h.restart()
	b.epoch = h.c.groups["g"].members[b.id].epoch
	rs = h.acquire(b, tp, 10, 100)
	if len(rs) < 1 || rs[0] != (ack.Range{Start: 4, End: 7, Deliveries: 3}) {
		t.Fatalf("after restart b acquired %v, want [4, 7) third delivery first", rs)
	}
	if _, err := h.join("g", TypeFailover, "c", "t"); !errors.Is(err, ErrTypeMismatch) {
		t.Fatalf("failover join of a shared group: %v, want ErrTypeMismatch", err)
	}
	if _, err := h.c.ShareAcquire(wall0, "g", b.id, b.epoch+1, tp, 1, 0, 100, nil); !errors.Is(err, ErrFenced) {
		t.Fatalf("acquire at a future epoch: %v, want ErrFenced", err)
	}
}

// A session timeout releases the dead member's records, and a record
// whose lock expires goes to another member.
func TestSharedExpiry(t *testing.T) {
	h := newHarness(t, map[string]uint32{"t": 1})
	tp := TopicPartition{"t", 0}
	a := h.mustJoin("g", TypeShared, "a", "t")
	b := h.mustJoin("g", TypeShared, "b", "t")
	h.acquire(a, tp, 5, 100)
	h.now += h.c.cfg.Share.AckTimeout + time.Millisecond
	if err := h.heartbeat(b); err != nil {
		t.Fatal(err)
	}
	h.c.ExpireShares(wall0.Add(h.now))
	h.persist()
	rs := h.acquire(b, tp, 5, 100)
	if len(rs) != 1 || rs[0] != (ack.Range{Start: 0, End: 5, Deliveries: 2}) {
		t.Fatalf("after a's locks expired b acquired %v", rs)
	}
	h.now += 10*time.Second + time.Millisecond // a's session (b heartbeats)
	h.c.Tick(h.now)
	h.persist()
	if _, ok := h.c.groups["g"].members[a.id]; ok {
		t.Fatal("a still a member after its session")
	}
}
