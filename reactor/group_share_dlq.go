package reactor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/group"
	"github.com/ringmq/ringmq/proto"
)

// Dead letters of shared subscriptions. A record delivered max_deliveries
// times and released again (or rejected) comes out of the coordinator's
// Ready as a ShareDeadLetter once the state saying so is durable. A worker
// goroutine appends it to the dead-letter topic <topic>.dlq (created on
// first use with the topic's partition count; same partition), as the
// original key, value and headers plus the dlqHeaders naming where it
// came from, through the broker's own listener with acks=all, then tells
// the coordinator, which marks it done (DeadLettered). A crash between the
// two appends it again after the restart: at least once; the headers name
// the original offset.

// Headers of a dead-lettered record. Never change.
const (
	dlqTopicHeader      = "ringmq-dlq-topic"
	dlqPartitionHeader  = "ringmq-dlq-partition"
	dlqOffsetHeader     = "ringmq-dlq-offset"
	dlqDeliveriesHeader = "ringmq-dlq-deliveries"
	dlqErrorHeader      = "ringmq-dlq-error"
	// DLQSuffix names a topic's dead-letter topic.
	DLQSuffix = ".dlq"
)

// dlqWorker appends dead letters in order, retrying each until it is
// appended or the driver stops.
type dlqWorker struct {
	d    *groupDriver
	mu   sync.Mutex
	q    []group.ShareDeadLetter
	sig  chan struct{}
	done chan dlqDone // to the coordinator goroutine
	prod *client.Producer
	adm  *client.Admin
	live bool // run started (guarded by mu)
}

type dlqDone struct {
	group  string
	tp     group.TopicPartition
	offset uint64
}

func newDLQWorker(d *groupDriver) *dlqWorker {
	return &dlqWorker{d: d, sig: make(chan struct{}, 1), done: make(chan dlqDone, 256)}
}

// deadLettered tells the coordinator a dead letter is appended.
func (d *groupDriver) deadLettered(dd dlqDone) {
	gp := d.parts[groupPartitionOf(dd.group, len(d.parts))]
	if gp.broken != nil {
		return
	}
	if err := gp.c.DeadLettered(dd.group, dd.tp, dd.offset); err != nil {
		d.s.log.Warn("dead letter appended but not confirmed (the group or partition is gone)", "group", dd.group,
			"topic", dd.tp.Topic, "partition", dd.tp.Partition, "offset", dd.offset, "err", err)
	}
}

// post queues dead letters (never blocks; copies them).
func (w *dlqWorker) post(dls []group.ShareDeadLetter) {
	if len(dls) == 0 {
		return
	}
	w.mu.Lock()
	if !w.live {
		w.live = true
		w.d.meta.wg.Add(1)
		go w.run()
	}
	w.q = append(w.q, dls...)
	w.mu.Unlock()
	select {
	case w.sig <- struct{}{}:
	default:
	}
}

func (w *dlqWorker) run() {
	defer w.d.meta.wg.Done()
	ctx := w.d.meta.ctx
	defer func() {
		if w.prod != nil {
			w.prod.Close(context.Background())
		}
		if w.adm != nil {
			w.adm.Close()
		}
	}()
	for ctx.Err() == nil {
		w.mu.Lock()
		var dl group.ShareDeadLetter
		have := len(w.q) > 0
		if have {
			dl = w.q[0]
		}
		w.mu.Unlock()
		if !have {
			select {
			case <-w.sig:
			case <-ctx.Done():
			}
			continue
		}
		if err := w.append(ctx, dl); err != nil {
			if ctx.Err() == nil {
				w.d.s.log.Warn("dead-letter append failed; retrying", "group", dl.Group, "topic", dl.Topic,
					"partition", dl.Partition, "offset", dl.Offset, "err", err)
				_ = sleepCtx(ctx, time.Second)
			}
			continue
		}
		w.mu.Lock()
		w.q = w.q[1:]
		w.mu.Unlock()
		select {
		case w.done <- dlqDone{dl.Group, group.TopicPartition{Topic: dl.Topic, Partition: uint32(dl.Partition)}, dl.Offset}:
		case <-ctx.Done():
		}
	}
}

// append copies the original record into the dead-letter topic.
func (w *dlqWorker) append(ctx context.Context, dl group.ShareDeadLetter) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	addr := w.d.s.Addr()
	var err error
	if w.adm == nil {
		if w.adm, err = client.NewAdmin(addr, client.Options{ClientID: "ringmq-dlq"}); err != nil {
			return err
		}
	}
	if w.prod == nil {
		if w.prod, err = client.NewProducer(addr, client.ProducerOptions{ClientID: "ringmq-dlq", Acks: client.AcksAll}); err != nil {
			return err
		}
	}
	orig, err := w.original(ctx, dl)
	if err != nil {
		return err
	}
	dlq := dl.Topic + DLQSuffix
	if !proto.ValidName([]byte(dlq)) {
		return fmt.Errorf("dead-letter topic name %q is not valid", dlq)
	}
	parts := w.d.s.topics.Load().byName[dl.Topic]
	n := uint32(1)
	if parts != nil {
		n = parts.partitions
	}
	if err := w.adm.CreateTopic(ctx, dlq, n, nil); err != nil && !errors.Is(err, proto.TopicExists) {
		return fmt.Errorf("create %s: %w", dlq, err)
	}
	rec := client.Record{Topic: dlq, Partition: uint32(dl.Partition) % max(n, 1), Key: orig.Key, Value: orig.Value,
		Headers: append(append([]client.Header(nil), orig.Headers...),
			client.Header{Key: dlqTopicHeader, Value: []byte(dl.Topic)},
			client.Header{Key: dlqPartitionHeader, Value: strconv.AppendInt(nil, int64(dl.Partition), 10)},
			client.Header{Key: dlqOffsetHeader, Value: strconv.AppendUint(nil, dl.Offset, 10)},
			client.Header{Key: dlqDeliveriesHeader, Value: strconv.AppendInt(nil, int64(dl.Deliveries), 10)},
			client.Header{Key: dlqErrorHeader, Value: []byte(dl.LastError)})}
	if !orig.Timestamp.IsZero() {
		rec.Timestamp = orig.Timestamp
	}
	_, err = w.prod.SendSync(ctx, rec)
	return err
}

// original reads the dead letter's record (a record retention removed is
// dead-lettered with no key and value: its headers still say which).
func (w *dlqWorker) original(ctx context.Context, dl group.ShareDeadLetter) (client.Record, error) {
	c, err := client.NewConsumer(w.d.s.Addr(), client.ConsumerOptions{ClientID: "ringmq-dlq", Start: client.StartAt(dl.Offset),
		MaxWait: 100 * time.Millisecond})
	if err != nil {
		return client.Record{}, err
	}
	defer c.Close()
	if err := c.Assign(ctx, dl.Topic, uint32(dl.Partition)); err != nil {
		return client.Record{}, err
	}
	for ctx.Err() == nil {
		recs, err := c.Poll(ctx)
		if err != nil {
			return client.Record{}, err
		}
		for _, r := range recs {
			if r.Offset == dl.Offset {
				return r, nil
			}
			if r.Offset > dl.Offset {
				return client.Record{}, nil // gone
			}
		}
	}
	return client.Record{}, ctx.Err()
}
