package group

import (
	"errors"
	"testing"
	"time"
)

// TestThreeMembersOneDies is the end-to-end scenario as a unit
// test: three failover members of a 12-partition topic get 4 partitions
// each; after one dies (stops heartbeating), the other two own all 12
// within the session timeout plus one heartbeat interval; at no moment
// do two live members hold the same partition, and no two owners of a
// partition have overlapping epochs (the harness checks that after every
// input).
func TestThreeMembersOneDies(t *testing.T) {
	h := newHarness(t, map[string]uint32{"t": 12})
	var cls []*consumer
	for _, name := range []string{"a", "b", "c"} {
		cls = append(cls, h.mustJoin("g", TypeFailover, name, "t"))
	}
	step := func() {
		h.tick(100 * time.Millisecond)
		for _, cl := range cls {
			if !cl.dead && h.now%time.Second == 0 {
				h.mustHeartbeat(cl)
			}
		}
		checkNoDoubleHolders(t, h, cls)
	}
	for h.now < 5*time.Second {
		step()
	}
	d, err := h.c.Describe("g")
	if err != nil {
		t.Fatal(err)
	}
	if d.State != StateStable || len(d.Members) != 3 {
		t.Fatalf("after 5 s: %+v", d)
	}
	for i, m := range d.Members {
		if len(m.Assigned) != 4 || len(cls[i].holds) != 4 {
			t.Fatalf("member %s: assigned %v, client holds %v; want 4 each", m.ID, m.Assigned, cls[i].holds)
		}
	}

	cls[1].dead = true
	died := h.now
	session, interval := 10*time.Second, time.Second
	for h.now < died+session+interval {
		step()
	}
	total := 0
	for _, cl := range []*consumer{cls[0], cls[2]} {
		total += len(cl.holds)
		if len(cl.holds) != 6 {
			t.Errorf("%s holds %v, want 6 partitions", cl.id, cl.holds)
		}
	}
	if d, _ := h.c.Describe("g"); total != 12 || len(d.Members) != 2 || d.State != StateStable {
		t.Fatalf("%v after the death: clients hold %d partitions; group %+v", h.now-died, total, d)
	}
	if err := h.c.CanCommit("g", cls[1].id, cls[1].epoch, "t", cls[1].holds[0].Partition); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("dead member's commit: %v, want ErrUnknownMember", err)
	}
}

// checkNoDoubleHolders: no partition is held (read or being released) by
// two live members at once, and whatever a live member holds it may
// commit at the epoch it was told.
func checkNoDoubleHolders(t *testing.T, h *harness, cls []*consumer) {
	t.Helper()
	holder := map[TopicPartition]string{}
	for _, cl := range cls {
		if cl.dead {
			continue
		}
		for _, tp := range cl.holds {
			if other, ok := holder[tp]; ok {
				t.Fatalf("at %v %s is held by %s and %s", h.now, tp, other, cl.id)
			}
			holder[tp] = cl.id
			if err := h.c.CanCommit(cl.group, cl.id, cl.epoch, tp.Topic, tp.Partition); err != nil {
				t.Fatalf("at %v %s holds %s but may not commit: %v", h.now, cl.id, tp, err)
			}
		}
	}
}
