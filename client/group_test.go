package client_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

// assignments records a consumer's OnAssigned/OnRevoked calls.
type assignments struct {
	mu      sync.Mutex
	held    map[client.TopicPartition]bool
	revoked int
}

func (a *assignments) options(group string) client.ConsumerOptions {
	a.held = map[client.TopicPartition]bool{}
	return client.ConsumerOptions{Group: group, SessionTimeout: time.Second, MaxWait: 100 * time.Millisecond,
		OnAssigned: func(tps []client.TopicPartition) {
			a.mu.Lock()
			defer a.mu.Unlock()
			for _, tp := range tps {
				a.held[tp] = true
			}
		},
		OnRevoked: func(tps []client.TopicPartition) {
			a.mu.Lock()
			defer a.mu.Unlock()
			for _, tp := range tps {
				delete(a.held, tp)
				a.revoked++
			}
		}}
}

func (a *assignments) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.held)
}

// Two members of a failover group split a topic's partitions; records
// produced before and while the second joins are each read once (the
// first commits what it revokes before releasing it); when the second
// closes (leaving the group) the first gets everything back.
func TestGroupSubscribeSplitsAndHandsOver(t *testing.T) {
	s := newTestServer(t)
	createTopic(t, s.addr, "orders", 4, nil)
	p := newProducer(t, s.addr, client.ProducerOptions{})
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := p.SendSync(testCtx(t), client.Record{Topic: "orders", Partition: uint32(i % 4), Value: value(i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(0, 200)
	var a1, a2 assignments
	c1 := newConsumer(t, s.addr, a1.options("split"))
	if err := c1.Subscribe(testCtx(t), "orders"); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	var mu sync.Mutex
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	var wg sync.WaitGroup
	read := func(c *client.Consumer) {
		defer wg.Done()
		for ctx.Err() == nil {
			pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
			recs, err := c.Poll(pctx)
			pcancel()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) &&
				!errors.Is(err, client.ErrConsumerClosed) {
				t.Errorf("poll: %v", err)
				return
			}
			mu.Lock()
			for _, r := range recs {
				seen[string(r.Value)]++
			}
			mu.Unlock()
			if len(recs) > 0 {
				if err := c.Commit(ctx); err != nil && ctx.Err() == nil {
					t.Errorf("commit: %v", err)
				}
			}
		}
	}
	wg.Add(1)
	go read(c1)
	waitUntil(t, "the first member holds all 4", func() bool { return a1.count() == 4 })
	c2 := newConsumer(t, s.addr, a2.options("split"))
	if err := c2.Subscribe(testCtx(t), "orders"); err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go read(c2)
	produce(200, 400)
	waitUntil(t, "2 partitions each", func() bool { return a1.count() == 2 && a2.count() == 2 })
	waitUntil(t, "every record read", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == 400
	})
	mu.Lock()
	for v, n := range seen {
		if n != 1 {
			t.Errorf("%s read %d times", v, n)
		}
	}
	mu.Unlock()
	a1.mu.Lock()
	if a1.revoked != 2 {
		t.Errorf("the first member was revoked %d partitions, want 2", a1.revoked)
	}
	a1.mu.Unlock()
	cancel()
	wg.Wait()
	c2.Close()
	ctx2 := testCtx(t)
	waitUntil(t, "the first member holds all 4 again", func() bool {
		pctx, pcancel := context.WithTimeout(ctx2, 100*time.Millisecond)
		defer pcancel()
		c1.Poll(pctx)
		return a1.count() == 4
	})
}

func TestGroupSubscribeExclusiveRefused(t *testing.T) {
	s := newTestServer(t)
	createTopic(t, s.addr, "orders", 2, nil)
	opts := client.ConsumerOptions{Group: "ex", Subscription: client.SubscriptionExclusive, SessionTimeout: time.Second}
	c1 := newConsumer(t, s.addr, opts)
	if err := c1.Subscribe(testCtx(t), "orders"); err != nil {
		t.Fatal(err)
	}
	c2 := newConsumer(t, s.addr, opts)
	err := c2.Subscribe(testCtx(t), "orders")
	if !errors.Is(err, proto.SubscriptionHeld) {
		t.Fatalf("second exclusive subscriber: %v", err)
	}
	if err := c2.Subscribe(testCtx(t), "missing"); !errors.Is(err, proto.UnknownTopic) {
		t.Fatalf("subscribe to a missing topic: %v", err)
	}
	c1.Close()
	if err := c2.Subscribe(testCtx(t), "orders"); err != nil {
		t.Fatalf("after the holder closed (left): %v", err)
	}
	if _, err := client.ParseSubscription("round_robin"); err == nil {
		t.Fatal("ParseSubscription(round_robin) accepted")
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(20 * time.Millisecond) // the condition's polling interval
	}
}
