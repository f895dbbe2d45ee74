package client_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
)

func produceShared(t *testing.T, addr, topic string, n int) {
	t.Helper()
	p := newProducer(t, addr, client.ProducerOptions{})
	for i := 0; i < n; i++ {
		if err := p.Send(testCtx(t), client.Record{Topic: topic, Partition: 0, Value: value(i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

func sharedOptions(group string) client.ConsumerOptions {
	// A session long enough for a loaded machine: these tests do not
	// expire members (a session expiry would release and redeliver).
	return client.ConsumerOptions{Group: group, Subscription: client.SubscriptionShared, SessionTimeout: 30 * time.Second,
		MaxWait: 50 * time.Millisecond}
}

// Three shared consumers of a one-partition topic each get a share of its
// records, and every record is handed out and acked exactly once when
// nothing fails.
func TestSharedThreeConsumersSplitAndAckOnce(t *testing.T) {
	s := newTestServer(t)
	createTopic(t, s.addr, "work", 1, nil)
	const n = 30000
	produceShared(t, s.addr, "work", n)
	var mu sync.Mutex
	seen := make([]int, n)
	per := make([]int, 3)
	acked := 0
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		c := newConsumer(t, s.addr, sharedOptions("workers"))
		if err := c.Subscribe(testCtx(t), "work"); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				recs, err := c.Poll(ctx)
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("poll: %v", err)
					}
					return
				}
				if err := c.Ack(ctx, recs...); err != nil {
					t.Errorf("ack: %v", err)
					return
				}
				mu.Lock()
				for _, r := range recs {
					seen[r.Offset]++
					if r.Deliveries != 1 {
						t.Errorf("offset %d delivered for the %d-th time", r.Offset, r.Deliveries)
					}
				}
				per[i] += len(recs)
				acked += len(recs)
				if acked >= n {
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for off, k := range seen {
		if k != 1 {
			t.Fatalf("offset %d received %d times", off, k)
		}
	}
	t.Logf("records per consumer: %v", per)
	for i, k := range per {
		if k < n/6 {
			t.Errorf("consumer %d got %d of %d records (per consumer: %v)", i, k, n, per)
		}
	}
}

// A consumer that closes while holding records it did not ack releases
// them at once: another consumer gets them, delivered a second time.
func TestSharedCloseRedeliversToOthers(t *testing.T) {
	s := newTestServer(t)
	createTopic(t, s.addr, "work", 1, nil)
	produceShared(t, s.addr, "work", 100)
	c1, err := client.NewConsumer(s.addr, sharedOptions("workers"))
	if err != nil {
		t.Fatal(err)
	}
	c2 := newConsumer(t, s.addr, sharedOptions("workers"))
	for _, c := range []*client.Consumer{c1, c2} {
		if err := c.Subscribe(testCtx(t), "work"); err != nil {
			t.Fatal(err)
		}
	}
	held, err := c1.Poll(testCtx(t))
	if err != nil || len(held) == 0 {
		t.Fatalf("first poll: %d records, %v", len(held), err)
	}
	if err := c2.Ack(testCtx(t), held[0]); err == nil {
		t.Fatal("a consumer acked a record another holds")
	}
	if err := c1.Ack(testCtx(t), held[0]); err != nil {
		t.Fatal(err)
	}
	c1.Close()
	want := map[uint64]bool{}
	for _, r := range held[1:] {
		want[r.Offset] = true
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(want) > 0 && time.Now().Before(deadline) {
		pctx, pcancel := context.WithTimeout(testCtx(t), time.Second)
		recs, err := c2.Poll(pctx)
		pcancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Offset == held[0].Offset {
				t.Fatalf("acked offset %d delivered again", r.Offset)
			}
			if want[r.Offset] {
				if r.Deliveries != 2 {
					t.Errorf("offset %d redelivered as delivery %d, want 2", r.Offset, r.Deliveries)
				}
				delete(want, r.Offset)
			}
		}
		if err := c2.Ack(testCtx(t), recs...); err != nil {
			t.Fatal(err)
		}
	}
	if len(want) > 0 {
		t.Fatalf("%d records the closed consumer held never reached the other", len(want))
	}
}

// key_shared keeps per-key order across three members with 1,000 keys,
// also when one member leaves halfway holding records it did not ack:
// for every key the acked offsets come in increasing order, and every
// record is acked exactly once.
func TestKeySharedPerKeyOrderAcrossLeave(t *testing.T) {
	s := newTestServer(t)
	createTopic(t, s.addr, "keyed", 1, nil)
	const n, keys = 20_000, 1000
	p := newProducer(t, s.addr, client.ProducerOptions{})
	for i := 0; i < n; i++ {
		rec := client.Record{Topic: "keyed", Partition: 0, Key: []byte(fmt.Sprintf("k%04d", i%keys)), Value: value(i)}
		if err := p.Send(testCtx(t), rec, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	opts := sharedOptions("ordered")
	opts.Subscription = client.SubscriptionKeyShared
	var mu sync.Mutex
	last := map[string]uint64{} // key → last acked offset + 1
	ackedOnce := make([]int, n)
	per := make([]int, 3)
	total := 0
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		c, err := client.NewConsumer(s.addr, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Subscribe(testCtx(t), "keyed"); err != nil {
			t.Fatal(err)
		}
		leaver := i == 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			for ctx.Err() == nil {
				recs, err := c.Poll(ctx)
				if err != nil {
					return
				}
				mu.Lock()
				leave := leaver && total >= n/3
				mu.Unlock()
				if leave {
					recs = recs[:len(recs)/2] // ack half, leave with the rest held
				}
				// Ack and record under one lock: the order of acks is the
				// order of processing.
				mu.Lock()
				err = c.Ack(ctx, recs...)
				if err == nil {
					for _, r := range recs {
						k := string(r.Key)
						if r.Offset+1 <= last[k] {
							t.Errorf("key %s: offset %d acked after offset %d", k, r.Offset, last[k]-1)
						}
						last[k] = r.Offset + 1
						ackedOnce[r.Offset]++
					}
					per[i] += len(recs)
					total += len(recs)
					if total >= n {
						cancel()
					}
				}
				mu.Unlock()
				if err != nil && ctx.Err() == nil {
					t.Errorf("ack: %v", err)
					return
				}
				if leave {
					return
				}
			}
		}()
	}
	wg.Wait()
	for off, k := range ackedOnce {
		if k != 1 {
			t.Fatalf("offset %d acked %d times (total %d)", off, k, total)
		}
	}
	t.Logf("records acked per member: %v", per)
	if per[1] < n/10 || per[2] < n/10 {
		t.Fatalf("keys did not spread over the members: %v", per)
	}
}

// Records with a delivery time (header ringmq-deliver-at, Unix ms) are
// never handed to a shared consumer before it; records without one go at
// once.
func TestSharedDelayedDeliveryNeverEarly(t *testing.T) {
	s := newTestServer(t)
	createTopic(t, s.addr, "later", 1, nil)
	p := newProducer(t, s.addr, client.ProducerOptions{})
	start := time.Now()
	due := map[uint64]time.Time{}
	delays := []time.Duration{0, 500 * time.Millisecond, time.Second, 2 * time.Second, 3 * time.Second}
	for i := 0; i < 50; i++ {
		d := delays[i%len(delays)]
		rec := client.Record{Topic: "later", Partition: 0, Value: value(i)}
		at := start.Add(d)
		if d > 0 {
			rec.Headers = []client.Header{{Key: "ringmq-deliver-at", Value: []byte(strconv.FormatInt(at.UnixMilli(), 10))}}
		}
		res, err := p.SendSync(testCtx(t), rec)
		if err != nil {
			t.Fatal(err)
		}
		due[res.Offset] = time.UnixMilli(at.UnixMilli())
	}
	c := newConsumer(t, s.addr, sharedOptions("later"))
	if err := c.Subscribe(testCtx(t), "later"); err != nil {
		t.Fatal(err)
	}
	for len(due) > 0 && time.Since(start) < 60*time.Second {
		pctx, cancel := context.WithTimeout(testCtx(t), time.Second)
		recs, err := c.Poll(pctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
		now := time.Now()
		for _, r := range recs {
			if now.Before(due[r.Offset]) {
				t.Errorf("offset %d delivered %v before its time", r.Offset, due[r.Offset].Sub(now))
			}
			if late := now.Sub(due[r.Offset]); late > 20*time.Second { // generous: a loaded machine
				t.Errorf("offset %d delivered %v after its time", r.Offset, late)
			}
			delete(due, r.Offset)
		}
		if err := c.Ack(testCtx(t), recs...); err != nil {
			t.Fatal(err)
		}
	}
	if len(due) > 0 {
		t.Fatalf("%d delayed records never delivered", len(due))
	}
}

// Poll with short contexts (as a loop with a poll timeout does) never
// strands records: an acquisition whose answer arrives after Poll's
// context ended is still read and returned (or released), so every record
// is acked well within ack_timeout (30 s).
func TestSharedShortPollsStrandNothing(t *testing.T) {
	s := newTestServer(t)
	createTopic(t, s.addr, "work", 1, nil)
	const n = 40000
	produceShared(t, s.addr, "work", n)
	var mu sync.Mutex
	acked := 0
	ctx, cancel := context.WithTimeout(testCtx(t), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		o := sharedOptions("short")
		o.ShareMaxRecords = 10000
		c := newConsumer(t, s.addr, o)
		if err := c.Subscribe(testCtx(t), "work"); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ctx.Err() == nil; k++ {
				pctx, pcancel := context.WithTimeout(ctx, time.Duration(1+k%50)*time.Millisecond)
				recs, err := c.Poll(pctx)
				pcancel()
				if err != nil {
					continue
				}
				if err := c.Ack(ctx, recs...); err != nil {
					t.Errorf("ack: %v", err)
					return
				}
				mu.Lock()
				acked += len(recs)
				if acked >= n {
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if acked != n {
		t.Fatalf("%d of %d records acked within 20 s (ack_timeout 30 s): acquired records were stranded", acked, n)
	}
}
