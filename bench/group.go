package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

// A consume run as members of a fresh consumer group (Config.Type):
// Consumers client.Consumers Subscribe to the topic. A failover or
// exclusive member counts what Poll returns; a shared or key_shared member
// also acks each Poll's records in one bulk Ack, and the latency recorded
// is that Ack's round trip (so the report's percentiles are of ack
// latency). The run ends when the topic's records up to the planned ends
// were counted (records past them are acked, not counted).

// DefaultShareBatch is what a shared member acquires per Poll: a third of
// the default max_unacked (10,000), so three members fill the window.
const DefaultShareBatch = 3000

type groupConsumers struct {
	cs     []*client.Consumer
	shared bool
	ws     []*worker
	want   int64
	got    atomic.Int64
}

func startGroupConsumers(ctx context.Context, cfg *Config, from, end map[uint32]uint64, m *meter) (*groupConsumers, error) {
	sub, err := client.ParseSubscription(cfg.Type)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	gc := &groupConsumers{shared: sub.Shared(), want: available(from, end)}
	name := "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	for range cfg.Consumers {
		c, err := client.NewConsumer(cfg.Server, client.ConsumerOptions{ClientID: clientID, Group: name, Subscription: sub,
			Start: client.StartEarliest(), MaxWait: fetchMaxWaitMs * time.Millisecond, PartitionMaxBytes: consumeFetchBytes,
			ShareMaxRecords: cfg.ShareBatch})
		if err != nil {
			gc.close()
			return nil, fmt.Errorf("bench: consumer: %w", err)
		}
		gc.cs = append(gc.cs, c)
		gc.ws = append(gc.ws, m.newWorker())
		if err := c.Subscribe(ctx, cfg.Topic); err != nil {
			gc.close()
			return nil, fmt.Errorf("bench: subscribe: %w", err)
		}
	}
	return gc, nil
}

func (gc *groupConsumers) close() {
	for _, c := range gc.cs {
		c.Close()
	}
}

func (gc *groupConsumers) setEnds(map[uint32]uint64) {}

func (gc *groupConsumers) run(ctx context.Context, deadline time.Time) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for i, c := range gc.cs {
		wg.Go(func() {
			if err := gc.member(ctx, c, gc.ws[i], deadline); err != nil {
				cancel(err)
			}
			if gc.got.Load() >= gc.want {
				cancel(nil) // the others may wait in Poll
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func (gc *groupConsumers) member(ctx context.Context, c *client.Consumer, w *worker, deadline time.Time) error {
	for ctx.Err() == nil && gc.got.Load() < gc.want {
		if !deadline.IsZero() && time.Now().After(deadline) {
			return nil
		}
		asked := time.Now()
		pctx, cancel := context.WithTimeout(ctx, pollSlice)
		recs, err := c.Poll(pctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, context.DeadlineExceeded):
			continue
		case err != nil:
			return fmt.Errorf("bench: poll: %w", err)
		}
		var bytes int64
		for i := range recs {
			bytes += int64(len(recs[i].Value))
		}
		got := time.Now()
		if gc.shared {
			if err := c.Ack(ctx, recs...); err != nil && !errors.Is(err, proto.RecordNotHeld) {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("bench: ack: %w", err)
			}
			w.recordUs(time.Since(got).Microseconds(), 1)
		} else if len(recs) > 0 {
			w.recordUs(got.Sub(asked).Microseconds(), 1)
		}
		before := gc.got.Add(int64(len(recs))) - int64(len(recs))
		n := min(int64(len(recs)), max(gc.want-before, 0)) // past the planned records: not counted
		w.msgs.Add(n)
		w.bytes.Add(bytes * n / max(int64(len(recs)), 1))
	}
	return nil
}
