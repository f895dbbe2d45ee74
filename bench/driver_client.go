package bench

// The client driver: load through client.Producer and client.Consumer, as
// an application sends and reads (per-record Send with a callback, Poll),
// instead of the raw driver's pre-built batches over client.Conn.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

// Producer settings of the client driver.
const (
	// minClientBufferBytes is the least a Producer may hold unresolved;
	// otherwise four requests' worth per request slot. More only adds
	// queueing to the latency of an unthrottled run.
	minClientBufferBytes = 1 << 20
	// clientDeliveryTimeout fails records (and so the run) a server does
	// not take for this long.
	clientDeliveryTimeout = 30 * time.Second
)

func clientBufferBytes(cfg *Config) int {
	return max(minClientBufferBytes, 4*cfg.BatchBytes*cfg.InFlight)
}

// timeRing is a single-producer single-consumer FIFO of send times. A
// feeder pushes before each Send; the Producer's delivery goroutine pops in
// its callback. Per partition, results arrive in Send order (the
// Producer's contract), so the head is the record being resolved.
type timeRing struct {
	buf        []int64
	mask       uint64
	head, tail atomic.Uint64
}

func newTimeRing(minSize int) *timeRing {
	n := 1
	for n < minSize {
		n <<= 1
	}
	r := &timeRing{buf: make([]int64, n), mask: uint64(n - 1)}
	return r
}

func (r *timeRing) push(v int64) {
	t := r.tail.Load()
	for t-r.head.Load() == uint64(len(r.buf)) {
		runtime.Gosched() // full: only when more records are unresolved than the buffer allows
	}
	r.buf[t&r.mask] = v
	r.tail.Store(t + 1)
}

func (r *timeRing) pop() (int64, bool) {
	h := r.head.Load()
	if h == r.tail.Load() {
		return 0, false
	}
	v := r.buf[h&r.mask]
	r.head.Store(h + 1)
	return v, true
}

// feeder drives one client.Producer from one goroutine.
type feeder struct {
	cfg      *Config
	p        *client.Producer
	w        *worker
	interval time.Duration // with a rate: time between this feeder's records
	parts    []uint32
	next     int
	rings    map[uint32]*timeRing
	payload  []byte
	done     func(client.Result) // one func value for every record: no allocation per Send
	lost     atomic.Int64        // results with no send time: a broken ordering assumption
	fail     context.CancelCauseFunc

	lastSent, lastNow int64 // the delivery goroutine's clock cache
}

// clientProducers is a produce run through client.Producer: one Producer
// (with its own connections) per --producers, each fed by one goroutine.
type clientProducers struct {
	cfg     *Config
	feeders []*feeder
}

func startClientProducers(cfg *Config, parts []proto.PartitionInfo, m *meter) (*clientProducers, error) {
	cp := &clientProducers{cfg: cfg}
	// A Producer frees buffer space when a batch resolves, before its
	// callbacks run: leave the rings room for that lag.
	ringSize := 4*clientBufferBytes(cfg)/(cfg.MsgSize+32) + 64
	for _, a := range assign(parts, cfg.Producers, true) {
		p, err := client.NewProducer(cfg.Server, client.ProducerOptions{TLS: cfg.TLS,
			ClientID: clientID, SASL: cfg.SASL, Acks: clientAcks(cfg.Acks), Compression: cfg.Codec,
			Partitioner: client.ManualPartitioner{}, BatchBytes: cfg.BatchBytes, Linger: cfg.Linger,
			MaxInFlight: cfg.InFlight, MaxBufferedBytes: clientBufferBytes(cfg),
			MaxRequestBytes: max(1<<20, 2*cfg.BatchBytes), // room for a whole batch and its framing
			DeliveryTimeout: clientDeliveryTimeout, DisableIdempotence: !cfg.Idempotent,
		})
		if err != nil {
			cp.close()
			return nil, fmt.Errorf("bench: producer: %w", err)
		}
		f := &feeder{cfg: cfg, p: p, w: m.newWorker(), parts: a.parts,
			rings: map[uint32]*timeRing{}, payload: fillerPayload(cfg.MsgSize)}
		for _, part := range a.parts {
			f.rings[part] = newTimeRing(ringSize)
		}
		f.done = f.resolved
		cp.feeders = append(cp.feeders, f)
	}
	if cfg.Rate > 0 {
		for _, f := range cp.feeders {
			f.interval = max(1, time.Duration(float64(time.Second)*float64(len(cp.feeders))/cfg.Rate))
		}
	}
	return cp, nil
}

func clientAcks(a int8) client.Acks {
	switch a {
	case proto.AcksNone:
		return client.AcksNone
	case proto.AcksAll:
		return client.AcksAll
	}
	return client.AcksLeader
}

// close closes every Producer; run has flushed them, so every result is
// in and Close is quick.
func (cp *clientProducers) close() {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	for _, f := range cp.feeders {
		f.p.Close(ctx)
	}
}

func (cp *clientProducers) run(ctx context.Context, start time.Time) error {
	b := newBudget(cp.cfg, start)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, f := range cp.feeders {
		f.fail = cancel
		wg.Go(func() {
			if err := f.run(ctx, b, start); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	for _, f := range cp.feeders {
		if n := f.lost.Load(); n > 0 {
			return fmt.Errorf("bench: %d producer results arrived out of send order", n)
		}
	}
	return nil
}

// run sends records, a batch's worth per partition in turn, until the
// budget is spent, then flushes. Records of one such chunk share a send
// time (one clock read). With a rate, record k is due at start +
// k*interval and carries its due time (coordinated omission corrected).
func (f *feeder) run(ctx context.Context, b *budget, start time.Time) error {
	perBatch := f.cfg.recordsPerBatch()
	rec := client.Record{Topic: f.cfg.Topic, Value: f.payload}
	for k := int64(0); ctx.Err() == nil; {
		n := b.claim(perBatch)
		if n == 0 {
			break
		}
		rec.Partition = f.parts[f.next]
		f.next = (f.next + 1) % len(f.parts)
		rec.Timestamp = time.Now()
		for range n {
			if f.interval > 0 {
				rec.Timestamp = start.Add(time.Duration(k) * f.interval)
				if err := sleepUntil(ctx, rec.Timestamp); err != nil {
					return nil
				}
			}
			k++
			if err := f.send(ctx, &rec); err != nil {
				return err
			}
		}
	}
	if err := f.p.Flush(ctx); err != nil && ctx.Err() == nil {
		return fmt.Errorf("bench: flush: %w", err)
	}
	return nil
}

func (f *feeder) send(ctx context.Context, rec *client.Record) error {
	ts := rec.Timestamp.UnixNano()
	binary.LittleEndian.PutUint64(f.payload, uint64(ts))
	f.rings[rec.Partition].push(ts)
	if err := f.p.Send(ctx, *rec, f.done); err != nil && ctx.Err() == nil {
		return fmt.Errorf("bench: send: %w", err)
	}
	return nil
}

// resolved is the callback of every record, on the Producer's delivery
// goroutine: the only writer of f.w's histogram.
func (f *feeder) resolved(r client.Result) {
	sent, ok := f.rings[r.Partition].pop()
	if !ok {
		f.lost.Add(1)
		return
	}
	if r.Err != nil {
		f.w.errs.Add(1)
		f.fail(fmt.Errorf("bench: record failed: %w", r.Err))
		return
	}
	f.w.msgs.Add(1)
	f.w.bytes.Add(int64(f.cfg.MsgSize))
	if f.cfg.Acks != proto.AcksNone {
		if sent != f.lastSent { // a new chunk: read the clock once for it
			f.lastSent, f.lastNow = sent, time.Now().UnixNano()
		}
		f.w.recordUs((f.lastNow-sent)/1e3, 1)
	}
}

// pollReader reads its partitions through one client.Consumer until each
// reaches its end.
type pollReader struct {
	c      *client.Consumer
	topic  string
	e2e    bool
	w      *worker
	ends   map[uint32]*atomic.Uint64 // fixed at start; values set by setEnds
	active map[uint32]bool           // partitions still assigned; the reader's goroutine only
}

// clientConsumers is a consume run through client.Consumer.
type clientConsumers struct {
	readers []*pollReader
}

func startClientConsumers(ctx context.Context, cfg *Config, parts []proto.PartitionInfo, from, end map[uint32]uint64, m *meter) (*clientConsumers, error) {
	cc := &clientConsumers{}
	as := assign(parts, cfg.Consumers, false)
	cfg.Consumers = len(as)
	maxWait := fetchMaxWaitMs * time.Millisecond
	for _, a := range as {
		c, err := client.NewConsumer(cfg.Server, client.ConsumerOptions{ClientID: clientID, SASL: cfg.SASL, MaxWait: maxWait, TLS: cfg.TLS,
			PartitionMaxBytes: consumeFetchBytes})
		if err != nil {
			cc.close()
			return nil, fmt.Errorf("bench: consumer: %w", err)
		}
		r := &pollReader{c: c, topic: cfg.Topic, e2e: cfg.Mode == ModeE2E, w: m.newWorker(),
			ends: map[uint32]*atomic.Uint64{}, active: map[uint32]bool{}}
		cc.readers = append(cc.readers, r)
		if err := c.Assign(ctx, cfg.Topic, a.parts...); err != nil {
			cc.close()
			return nil, fmt.Errorf("bench: consumer: %w", err)
		}
		for _, p := range a.parts {
			if err := c.Seek(cfg.Topic, p, from[p]); err != nil {
				cc.close()
				return nil, fmt.Errorf("bench: consumer: %w", err)
			}
			e, ok := end[p]
			if !ok {
				e = math.MaxUint64
			}
			r.ends[p] = new(atomic.Uint64)
			r.ends[p].Store(e)
			r.active[p] = true
		}
	}
	return cc, nil
}

func (cc *clientConsumers) close() {
	for _, r := range cc.readers {
		r.c.Close()
	}
}

func (cc *clientConsumers) setEnds(end map[uint32]uint64) {
	for _, r := range cc.readers {
		for p, e := range r.ends {
			e.Store(end[p])
		}
	}
}

func (cc *clientConsumers) run(ctx context.Context, deadline time.Time) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, r := range cc.readers {
		wg.Go(func() {
			if err := r.run(ctx, deadline); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// pollSlice bounds one Poll, so a reader whose partitions went quiet
// still sees an end set after its last records arrived.
const pollSlice = 200 * time.Millisecond

func (r *pollReader) run(ctx context.Context, deadline time.Time) error {
	for r.retire(); len(r.active) > 0 && ctx.Err() == nil; r.retire() {
		if !deadline.IsZero() && time.Now().After(deadline) {
			return nil
		}
		asked := time.Now()
		pctx, cancel := context.WithTimeout(ctx, pollSlice)
		recs, err := r.c.Poll(pctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, context.DeadlineExceeded):
			continue // nothing new within the slice
		case err != nil:
			return fmt.Errorf("bench: poll: %w", err)
		}
		got := time.Now()
		if r.take(recs, got.UnixNano()) > 0 && !r.e2e {
			r.w.recordUs(got.Sub(asked).Microseconds(), 1)
		}
	}
	return nil
}

// take counts the records below their partition's end.
func (r *pollReader) take(recs []client.Record, nowNs int64) (n int64) {
	var bytes int64
	for i := range recs {
		rec := &recs[i]
		end, ok := r.ends[rec.Partition]
		if !ok || rec.Offset >= end.Load() {
			continue
		}
		n++
		bytes += int64(len(rec.Value))
		if ts, ok := sendTime(rec.Value); ok && r.e2e {
			r.w.recordUs((nowNs-ts)/1e3, 1)
		}
	}
	r.w.msgs.Add(n)
	r.w.bytes.Add(bytes)
	return n
}

// retire unassigns the partitions that reached their end.
func (r *pollReader) retire() {
	for p := range r.active {
		if pos, err := r.c.Position(r.topic, p); err == nil && pos >= r.ends[p].Load() {
			r.c.Unassign(r.topic, p)
			delete(r.active, p)
		}
	}
}
