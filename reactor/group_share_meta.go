package reactor

import (
	"context"
	"errors"
	"hash/fnv"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/group"
	"github.com/ringmq/ringmq/group/ack"
)

// What a shared subscription's tracker must know of each record before it
// hands it out: its key hash (key_shared) and its delivery time (delayed
// delivery). The partition belongs to a reactor, so the coordinator does
// not read it: per partition with a shared subscription a reader
// goroutine consumes it through the broker's own listener (a plain
// client, as a coordinator on another broker of a cluster would) and
// posts each run of records' Meta to the coordinator goroutine, which
// keeps them in a window from the lowest ack floor of the groups with
// members on. ShareAcquire hands out nothing past what the window knows.
// The reader stays at most max_unacked records ahead of the highest such
// floor. A group whose floor lies outside the window (it comes back after
// the others moved on) restarts the reader at its floor.

// DeliverAtHeader is the reserved record header that carries a record's
// earliest delivery time for shared and key_shared subscriptions: Unix
// milliseconds in decimal ASCII. Other subscriptions and plain fetches
// ignore it.
const DeliverAtHeader = "ringmq-deliver-at"

// metaWindow is the Meta of the records [start, start+len(metas)) of one
// partition. Owned by the coordinator goroutine.
type metaWindow struct {
	start uint64
	metas []ack.Meta
	limit atomic.Uint64 // the reader reads no further than this (lowest floor + max_unacked)
	gen   uint64        // the current reader's generation (runs of older ones are dropped)
	stop  context.CancelFunc
}

func (w *metaWindow) end() uint64 { return w.start + uint64(len(w.metas)) }

// Meta implements ack.Source.
func (w *metaWindow) Meta(off uint64) ack.Meta {
	if off < w.start || off >= w.end() {
		return ack.Meta{}
	}
	return w.metas[off-w.start]
}

// metaRun is a reader's news: the Meta of [start, start+len(metas)).
type metaRun struct {
	tp    group.TopicPartition
	gen   uint64
	start uint64
	metas []ack.Meta
}

// metaReaders runs the reader goroutines.
type metaReaders struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ch     chan metaRun
}

func newMetaReaders() *metaReaders {
	m := &metaReaders{ch: make(chan metaRun, 64)}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m
}

func (m *metaReaders) stop() {
	m.cancel()
	m.wg.Wait()
}

// window returns the partition's window for a tracker whose floor is at
// floor, starting a reader there on first use, or again when the window
// does not cover the floor (a group far behind or ahead of the others).
func (d *groupDriver) window(tp group.TopicPartition, floor uint64) *metaWindow {
	w := d.windows[tp]
	if w == nil {
		w = &metaWindow{}
		d.windows[tp] = w
	}
	if w.stop == nil || floor < w.start || floor > w.end()+uint64(d.cfg.Share.MaxUnacked) {
		if w.stop != nil {
			w.stop()
		}
		w.gen++
		w.start, w.metas = floor, nil
		w.limit.Store(floor + uint64(d.cfg.Share.MaxUnacked))
		ctx, cancel := context.WithCancel(d.meta.ctx)
		w.stop = cancel
		d.meta.wg.Add(1)
		go d.readMetas(ctx, tp, w.gen, floor, &w.limit)
	}
	return w
}

// addMetas takes a reader's run and trims the window below the lowest
// ack floor of the partition's groups.
func (d *groupDriver) addMetas(r metaRun) {
	w := d.windows[r.tp]
	if w == nil || r.gen != w.gen {
		return
	}
	if r.start > w.end() { // the log start moved past what was known
		w.start, w.metas = r.start, w.metas[:0]
	}
	if skip := w.end() - r.start; skip < uint64(len(r.metas)) {
		w.metas = append(w.metas, r.metas[skip:]...)
	}
	d.trimWindow(r.tp, w)
}

// trimWindow drops the Meta below the lowest ack floor of the
// partition's groups and lets the reader go on to that floor +
// max_unacked. Every turn (acks move floors) and on each reader run.
func (d *groupDriver) trimWindow(tp group.TopicPartition, w *metaWindow) {
	low, high, ok := d.floors(tp)
	if !ok {
		return // no group with members reads it: keep what is known
	}
	if low > w.start {
		n := min(low-w.start, uint64(len(w.metas)))
		w.metas = append(w.metas[:0], w.metas[n:]...)
		w.start += n
	}
	w.limit.Store(max(high, w.start) + uint64(d.cfg.Share.MaxUnacked))
}

// trimWindows runs trimWindow over every window (each turn).
func (d *groupDriver) trimWindows() {
	for tp, w := range d.windows {
		d.trimWindow(tp, w)
	}
}

// floors are the lowest and highest ack floors of tp over the groups with
// members of every coordinator partition.
func (d *groupDriver) floors(tp group.TopicPartition) (low, high uint64, found bool) {
	for _, gp := range d.parts {
		l, h, ok := gp.c.ShareFloors(tp)
		if !ok {
			continue
		}
		if !found || l < low {
			low = l
		}
		if !found || h > high {
			high = h
		}
		found = true
	}
	return low, high, found
}

// readMetas consumes the partition from from on and posts the Meta of its
// records, staying below the window's limit, until the driver stops.
func (d *groupDriver) readMetas(ctx context.Context, tp group.TopicPartition, gen, from uint64, limit *atomic.Uint64) {
	defer d.meta.wg.Done()
	c, err := client.NewConsumer(d.s.Addr(), client.ConsumerOptions{ClientID: "ringmq-share-meta",
		Start: client.StartAt(from), MaxWait: 200 * time.Millisecond})
	if err != nil {
		d.s.log.Error("shared subscription: metadata reader", "topic", tp.Topic, "partition", tp.Partition, "err", err)
		return
	}
	defer c.Close()
	for ctx.Err() == nil {
		if err := c.Assign(ctx, tp.Topic, tp.Partition); err == nil {
			break
		}
		if sleepCtx(ctx, 100*time.Millisecond) != nil {
			return
		}
	}
	next := from
	for ctx.Err() == nil {
		if next >= limit.Load() {
			if sleepCtx(ctx, 10*time.Millisecond) != nil {
				return
			}
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		recs, err := c.Poll(pctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			if ctx.Err() == nil && sleepCtx(ctx, 100*time.Millisecond) != nil {
				return
			}
			continue
		}
		if len(recs) == 0 {
			continue
		}
		start := recs[0].Offset
		run := metaRun{tp: tp, gen: gen, start: start, metas: make([]ack.Meta, recs[len(recs)-1].Offset+1-start)}
		for _, r := range recs {
			run.metas[r.Offset-start] = recordMeta(&r)
		}
		next = recs[len(recs)-1].Offset + 1
		select {
		case d.meta.ch <- run:
		case <-ctx.Done():
			return
		}
	}
}

// recordMeta is the key hash (FNV-1a of the key; no key: 0) and delivery
// time (the DeliverAtHeader) of a record.
func recordMeta(r *client.Record) ack.Meta {
	m := ack.Meta{AppendTime: r.Timestamp.UnixNano()}
	if r.Key != nil {
		h := fnv.New32a()
		h.Write(r.Key)
		m.KeyHash = h.Sum32()
	}
	for _, hd := range r.Headers {
		if hd.Key == DeliverAtHeader {
			if ms, err := strconv.ParseInt(string(hd.Value), 10, 64); err == nil && ms > 0 {
				m.DeliverAt = time.UnixMilli(ms).UnixNano()
			}
		}
	}
	return m
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
