package bench

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

const produceTimeoutMs = 30_000

// budget hands out the messages of a run: a count shared by every sender,
// or everything until a deadline.
type budget struct {
	left     atomic.Int64
	deadline time.Time // zero: by count
}

func newBudget(cfg *Config, start time.Time) *budget {
	b := &budget{}
	if cfg.Duration > 0 {
		b.deadline = start.Add(cfg.Duration)
	} else {
		b.left.Store(cfg.Messages)
	}
	return b
}

// claim takes up to n messages; 0 means the run is over.
func (b *budget) claim(n int) int {
	if !b.deadline.IsZero() {
		if time.Now().Before(b.deadline) {
			return n
		}
		return 0
	}
	for {
		left := b.left.Load()
		if left <= 0 {
			return 0
		}
		k := min(int64(n), left)
		if b.left.CompareAndSwap(left, left-k) {
			return int(k)
		}
	}
}

// producers is a produce run: connections, each with InFlight senders.
type producers struct {
	cfg     *Config
	conns   []*client.Conn
	senders []*sender
}

// startProducers connects one client per producer, each to the shard of
// its partitions, and prepares its senders.
func startProducers(ctx context.Context, cfg *Config, parts []proto.PartitionInfo, m *meter) (*producers, error) {
	p := &producers{cfg: cfg}
	as := assign(parts, cfg.Producers, true)
	total := len(as) * cfg.InFlight
	for _, a := range as {
		c, err := dial(ctx, cfg, a.shard)
		if err != nil {
			p.close()
			return nil, err
		}
		p.conns = append(p.conns, c)
		for slot := range cfg.InFlight {
			s := newSender(cfg, c, a.parts, slot, total, m.newWorker())
			if err := s.initProducer(ctx); err != nil {
				p.close()
				return nil, err
			}
			p.senders = append(p.senders, s)
		}
	}
	return p, nil
}

func (p *producers) close() {
	for _, c := range p.conns {
		c.Close()
	}
}

// run sends until the budget is spent; with acks 0 it then waits until
// every connection has written what it queued.
func (p *producers) run(ctx context.Context, start time.Time) error {
	b := newBudget(p.cfg, start)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, s := range p.senders {
		s.budget = b
		wg.Go(func() {
			if err := s.run(ctx, start); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	if p.cfg.Acks == proto.AcksNone {
		return p.barrier(ctx)
	}
	return nil
}

// barrier makes sure acks-0 requests left the client: a connection writes
// frames in order, so an answer to a later request means they did.
func (p *producers) barrier(ctx context.Context) error {
	for _, c := range p.conns {
		if _, err := c.Metadata(ctx, &proto.MetadataRequest{Topics: []string{p.cfg.Topic}}); err != nil {
			return fmt.Errorf("bench: produce: %w", err)
		}
	}
	return nil
}

// sender is one request-in-flight slot of a producer connection.
type sender struct {
	cfg      *Config
	conn     *client.Conn
	budget   *budget
	w        *worker
	parts    []uint32
	next     int
	tpl      *template
	comp     []byte        // compressed batch buffer
	interval time.Duration // with a rate: time between this sender's records
	req      proto.ProduceRequest
	// An idempotent sender is a producer of its own (its requests to a
	// partition are one at a time, so its sequences stay in order):
	// its id and epoch, and the next sequence per entry of parts.
	pid   int64
	epoch int16
	seqs  []int32
}

func newSender(cfg *Config, c *client.Conn, parts []uint32, slot, senders int, w *worker) *sender {
	s := &sender{
		cfg: cfg, conn: c, w: w, parts: parts,
		next: slot % len(parts), tpl: newTemplate(cfg.recordsPerBatch(), cfg.MsgSize),
	}
	if cfg.Rate > 0 {
		s.interval = time.Duration(float64(time.Second) * float64(senders) / cfg.Rate)
		s.interval = max(s.interval, 1)
	}
	s.req = proto.ProduceRequest{Acks: cfg.Acks, TimeoutMs: produceTimeoutMs,
		Topics: []proto.ProduceTopic{{Name: []byte(cfg.Topic), Partitions: make([]proto.ProducePartition, 1)}}}
	return s
}

// initProducer gets the sender a producer id when the run is idempotent.
func (s *sender) initProducer(ctx context.Context) error {
	s.pid, s.epoch = proto.NoProducerID, -1
	if !s.cfg.Idempotent || s.cfg.Acks == proto.AcksNone {
		return nil
	}
	resp, err := s.conn.InitProducer(ctx, &proto.InitProducerRequest{ProducerID: proto.NoProducerID, Epoch: -1})
	if err != nil {
		return fmt.Errorf("bench: idempotent producer (--idempotence=false to go without): %w", err)
	}
	s.pid, s.epoch, s.seqs = resp.ProducerID, resp.Epoch, make([]int32, len(s.parts))
	return nil
}

func (s *sender) run(ctx context.Context, start time.Time) error {
	if s.interval > 0 {
		return s.runPaced(ctx, start)
	}
	for ctx.Err() == nil {
		n := s.budget.claim(s.tpl.capacity())
		if n == 0 {
			return nil
		}
		sent := time.Now()
		ok, err := s.send(ctx, n, sent.UnixNano(), 0)
		if err != nil {
			return err
		}
		if ok && s.cfg.Acks != proto.AcksNone {
			s.w.recordUs(time.Since(sent).Microseconds(), int64(n))
		}
	}
	return nil
}

// runPaced sends this sender's share of the rate: record k is due at
// start + k*interval. A batch goes out when it is full or when its first
// record has waited Linger; each record's latency counts from its due time,
// so a server that falls behind shows up in the latency (no coordinated
// omission).
func (s *sender) runPaced(ctx context.Context, start time.Time) error {
	capacity := s.tpl.capacity()
	for k := int64(0); ctx.Err() == nil; {
		firstDue := start.Add(time.Duration(k) * s.interval)
		sendAt := firstDue.Add(min(time.Duration(capacity-1)*s.interval, s.cfg.Linger))
		if err := sleepUntil(ctx, sendAt); err != nil {
			return nil
		}
		due := int(time.Since(firstDue)/s.interval) + 1
		n := s.budget.claim(min(due, capacity))
		if n == 0 {
			return nil
		}
		ok, err := s.send(ctx, n, firstDue.UnixNano(), int64(s.interval))
		if err != nil {
			return err
		}
		if ok && s.cfg.Acks != proto.AcksNone {
			acked := time.Now()
			for i := range n {
				s.w.recordUs(acked.Sub(firstDue.Add(time.Duration(i)*s.interval)).Microseconds(), 1)
			}
		}
		k += int64(n)
	}
	return nil
}

// send produces n records to the sender's next partition and waits for
// the ack; ok reports they were acknowledged (or, acks 0, queued). Records
// a partition refuses count as errors; a failed request ends the run.
func (s *sender) send(ctx context.Context, n int, firstNs, stepNs int64) (ok bool, err error) {
	i := s.next
	s.next = (s.next + 1) % len(s.parts)
	var batch []byte
	if s.seqs == nil {
		batch = s.tpl.stamp(n, firstNs, stepNs)
	} else {
		batch = s.tpl.stampProducer(n, firstNs, stepNs, s.pid, s.epoch, s.seqs[i])
	}
	if s.cfg.Codec != proto.CodecNone {
		s.comp = proto.CompressBatch(s.comp[:0], batch, s.cfg.Codec)
		batch = s.comp
	}
	part := s.parts[i]
	s.req.Topics[0].Partitions[0] = proto.ProducePartition{Partition: part, Records: batch}
	resp, err := s.conn.Produce(ctx, &s.req)
	switch {
	case err != nil && ctx.Err() != nil:
		return false, nil // the run is ending
	case err != nil:
		return false, fmt.Errorf("bench: produce to partition %d: %w", part, err)
	case resp != nil && resp.Topics[0].Partitions[0].Error != proto.None:
		s.w.errs.Add(int64(n))
		return false, nil
	}
	if s.seqs != nil { // a refused batch was not stored: its sequence goes to the next one
		s.seqs[i] = nextSeq(s.seqs[i], int32(n))
	}
	s.w.msgs.Add(int64(n))
	s.w.bytes.Add(int64(n * s.cfg.MsgSize))
	return true, nil
}

// nextSeq is the sequence n records after seq: it wraps after
// math.MaxInt32 to 0, as the server's does.
func nextSeq(seq, n int32) int32 {
	if seq > math.MaxInt32-n {
		return n - (math.MaxInt32 - seq) - 1
	}
	return seq + n
}

// sleepUntil waits until t or until ctx ends (then it returns ctx.Err()).
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
