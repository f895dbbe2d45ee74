package client_test

import (
	"context"
	"errors"
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
	return client.ConsumerOptions{Group: group, Subscription: client.SubscriptionShared, SessionTimeout: 2 * time.Second,
		MaxWait: 50 * time.Millisecond}
}

// Three shared consumers of a one-partition topic each get a share of its
// records, and every record is handed out and acked exactly once when
// nothing fails.
func TestSharedThreeConsumersSplitAndAckOnce(t *testing.T) {
	s := newTestServer(t)
	createTopic(t, s.addr, "work", 1, nil)
	const n = 6000
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
