package reactor

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

// shareAcquire acquires records, asking again while nothing is available
// (the coordinator hands out records once it has read their metadata) up
// to a deadline.
func shareAcquire(t *testing.T, c *client.Conn, g, id string, epoch uint32, topic string, max uint32) []proto.ShareRange {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.ShareAcquire(ringtest.Ctx(t), &proto.ShareAcquireRequest{Group: g, MemberID: id, MemberEpoch: epoch,
			Topic: topic, MaxRecords: max})
		if err != nil {
			t.Fatalf("acquire %s: %v", id, err)
		}
		if len(resp.Ranges) > 0 || time.Now().After(deadline) {
			return resp.Ranges
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronization: the loop checks the answer
	}
}

func shareAck(t *testing.T, c *client.Conn, g, id string, epoch uint32, topic string, acks ...proto.ShareAck) []proto.ErrorCode {
	t.Helper()
	resp, err := c.ShareAck(ringtest.Ctx(t), &proto.ShareAckRequest{Group: g, MemberID: id, MemberEpoch: epoch,
		Topic: topic, Acks: acks})
	if err != nil {
		t.Fatalf("ack %s: %v", id, err)
	}
	return resp.Results
}

// Two shared members split a partition's records, acks of records a member
// does not hold are refused, a member that leaves releases what it holds
// to the other at once (delivery count raised), and a broker restart keeps
// every confirmed ack and the delivery counts.
func TestShareAcquireAckLeaveRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := groupTestConfig(t, dir)
	srv := startServer(t, cfg)
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "jobs", 1)
	for i := 0; i < 30; i++ {
		produceOne(t, c, "jobs", 0, []byte("x"))
	}
	a := join(t, c, "w", proto.GroupTypeShared, "a", "jobs")
	b := join(t, c, "w", proto.GroupTypeShared, "b", "jobs")
	if !has(a.Assigned, "jobs", 0) || !has(b.Assigned, "jobs", 0) {
		t.Fatalf("shared members not both assigned jobs/0: %+v %+v", a.Assigned, b.Assigned)
	}
	if got := shareAcquire(t, c, "w", "a", a.MemberEpoch, "jobs", 10); len(got) != 1 || got[0] != (proto.ShareRange{Start: 0, End: 10, Deliveries: 1}) {
		t.Fatalf("a acquired %+v", got)
	}
	if got := shareAcquire(t, c, "w", "b", b.MemberEpoch, "jobs", 10); len(got) != 1 || got[0] != (proto.ShareRange{Start: 10, End: 20, Deliveries: 1}) {
		t.Fatalf("b acquired %+v", got)
	}
	res := shareAck(t, c, "w", "b", b.MemberEpoch, "jobs",
		proto.ShareAck{Op: proto.ShareAccept, Start: 10, End: 20}, proto.ShareAck{Op: proto.ShareAccept, Start: 0, End: 1})
	if res[0] != proto.None || res[1] != proto.RecordNotHeld {
		t.Fatalf("b's acks answered %v, want [NONE RECORD_NOT_HELD]", res)
	}
	if _, err := c.ShareAcquire(ringtest.Ctx(t), &proto.ShareAcquireRequest{Group: "w", MemberID: "b", MemberEpoch: b.MemberEpoch + 1,
		Topic: "jobs", MaxRecords: 1}); !errors.Is(err, proto.FencedMemberEpoch) {
		t.Fatalf("acquire at another epoch: %v, want FENCED_MEMBER_EPOCH", err)
	}
	if err := c.LeaveGroup(ringtest.Ctx(t), &proto.LeaveGroupRequest{Group: "w", MemberID: "a"}); err != nil {
		t.Fatal(err)
	}
	if got := shareAcquire(t, c, "w", "b", b.MemberEpoch, "jobs", 5); len(got) != 1 || got[0] != (proto.ShareRange{Start: 0, End: 5, Deliveries: 2}) {
		t.Fatalf("after a left b acquired %+v, want [0, 5) second delivery", got)
	}
	desc, err := c.ShareDescribe(ringtest.Ctx(t), &proto.ShareDescribeRequest{Group: "w"})
	if err != nil || len(desc.Partitions) != 1 {
		t.Fatalf("describe: %v %+v", err, desc)
	}
	if p := desc.Partitions[0]; p.Floor != 0 || p.InFlight != 5 || p.LogEnd != 30 || p.Redeliveries != 5 {
		t.Fatalf("describe: %+v, want floor 0, 5 in flight, log end 30, 5 redeliveries", p)
	}

	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	srv = startServer(t, cfg)
	c = ringtest.Dial(t, srv.Addr(), client.Options{})
	// b was restored with a full session: it gets everything not acked,
	// the records it held first (third delivery), never 10..19.
	got := shareAcquire(t, c, "w", "b", b.MemberEpoch, "jobs", 100)
	want := []proto.ShareRange{{Start: 0, End: 5, Deliveries: 3}, {Start: 5, End: 10, Deliveries: 2}, {Start: 20, End: 30, Deliveries: 1}}
	if len(got) != len(want) {
		t.Fatalf("after restart b acquired %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("after restart b acquired %+v, want %+v", got, want)
		}
	}
}

// A poison record (always nacked) reaches the dead-letter topic after
// exactly max_deliveries deliveries, with headers naming where it came
// from, also across a broker restart in the middle; the other records
// are acked once.
func TestSharePoisonRecordDeadLettered(t *testing.T) {
	dir := t.TempDir()
	cfg := groupTestConfig(t, dir)
	cfg.Groups.MaxDeliveries = 3
	srv := startServer(t, cfg)
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "jobs", 1)
	for i := 0; i < 5; i++ {
		produceOne(t, c, "jobs", 0, []byte(fmt.Sprintf("job-%d", i)))
	}
	c.Close()
	const poison = 2
	seen := 0 // deliveries of the poison record
	consume := func(addr string, until func() bool) {
		t.Helper()
		cons, err := client.NewConsumer(addr, client.ConsumerOptions{Group: "w", Subscription: client.SubscriptionShared,
			SessionTimeout: 30 * time.Second, MaxWait: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		if err := cons.Subscribe(ringtest.Ctx(t), "jobs"); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for !until() && time.Now().Before(deadline) {
			pctx, cancel := context.WithTimeout(ringtest.Ctx(t), 300*time.Millisecond)
			recs, err := cons.Poll(pctx)
			cancel()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatal(err)
			}
			for _, r := range recs {
				if r.Offset != poison {
					if err := cons.Ack(ringtest.Ctx(t), r); err != nil {
						t.Fatal(err)
					}
					continue
				}
				seen++
				if r.Deliveries != seen {
					t.Errorf("poison record's delivery %d counted as %d", seen, r.Deliveries)
				}
				if err := cons.Nack(ringtest.Ctx(t), 0, "cannot parse", r); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	consume(srv.Addr(), func() bool { return seen >= 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	srv = startServer(t, cfg)
	dlq := func() []client.Record {
		cons, err := client.NewConsumer(srv.Addr(), client.ConsumerOptions{MaxWait: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		if err := cons.Assign(ringtest.Ctx(t), "jobs.dlq", 0); err != nil {
			return nil // not created yet
		}
		pctx, cancel := context.WithTimeout(ringtest.Ctx(t), 200*time.Millisecond)
		defer cancel()
		recs, _ := cons.Poll(pctx)
		return recs
	}
	var dead []client.Record
	consume(srv.Addr(), func() bool {
		dead = dlq()
		return len(dead) > 0
	})
	if seen != 3 {
		t.Fatalf("poison record delivered %d times, want max_deliveries = 3", seen)
	}
	if len(dead) != 1 || string(dead[0].Value) != "job-2" {
		t.Fatalf("dead-letter topic holds %+v, want the one poison record", dead)
	}
	want := map[string]string{"ringmq-dlq-topic": "jobs", "ringmq-dlq-partition": "0", "ringmq-dlq-offset": "2",
		"ringmq-dlq-deliveries": "3", "ringmq-dlq-error": "cannot parse"}
	for _, h := range dead[0].Headers {
		if v, ok := want[h.Key]; ok {
			if string(h.Value) != v {
				t.Errorf("header %s = %q, want %q", h.Key, h.Value, v)
			}
			delete(want, h.Key)
		}
	}
	if len(want) > 0 {
		t.Errorf("dead letter lacks headers %v", want)
	}
	c = ringtest.Dial(t, srv.Addr(), client.Options{})
	deadline := time.Now().Add(10 * time.Second)
	for {
		desc, err := c.ShareDescribe(ringtest.Ctx(t), &proto.ShareDescribeRequest{Group: "w"})
		if err != nil {
			t.Fatal(err)
		}
		if p := desc.Partitions[0]; p.Floor == 5 && p.DeadLetters == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ack state %+v, want floor 5 and one dead letter", desc.Partitions)
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
}
