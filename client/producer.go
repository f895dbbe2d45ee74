package client

// # Producer contract
//
// A Producer batches records per partition and sends them to each
// partition's leader (from Metadata; see cluster.go) in pipelined Produce
// requests, one connection per leader shard (reactor) asked for with
// Options.RequestShard, so a request only names partitions its
// connection's reactor owns.
//
//   - Send, Produce and SendSync accept a record or return an error; an
//     accepted record gets exactly one Result, whatever happens to the
//     server or the Producer — Flush and Close return only once every
//     record accepted before them has its Result.
//   - Results arrive through one goroutine, in the order the batches
//     complete; records of one batch complete together, in order. A
//     callback must not block for long: it delays every later result.
//   - A batch closes when it reaches BatchBytes, when Linger has passed
//     since its first record, or on Flush/Close; it is sent as soon as its
//     partition and its connection are free. Linger 0 sends at
//     once, and records still batch up while requests are in flight.
//   - Idempotence (the default; DisableIdempotence turns it off, and
//     acks=0 never uses it): the producer asks the server for a producer
//     id on its first request (InitProducer) and stamps every batch with
//     it, an epoch and the partition's next sequence number, so the server
//     stores a retried batch once and answers a retry with the original
//     offsets. Up to five requests per partition are in flight (each
//     carrying one batch of it), never a batch five or more past the
//     partition's oldest unresolved one (the server remembers five); after
//     a failure nothing new is sent to the partition until its requests in
//     flight are answered, and the failed batches are sent again in order.
//     OUT_OF_ORDER_SEQUENCE or UNKNOWN_PRODUCER_ID for a batch with an
//     earlier one unresolved is retried; for the oldest one it means the
//     server lost the partition's state for this producer (records a power
//     cut took back, an expired producer): the partition starts a new
//     epoch at sequence 0 (Kafka's KIP-360) and its unresolved batches are
//     renumbered and sent again, in order. PRODUCER_FENCED fails the batch.
//   - Without idempotence at most one request per partition is in flight;
//     it carries every batch of the partition ready to go (back to back,
//     up to MaxRequestBytes), so a partition's records are stored in the
//     order Send accepted them, retries included. MaxInFlight bounds the
//     requests in flight per connection, across partitions.
//   - A request that fails with a retriable error (proto.ErrRetriable,
//     NOT_LEADER and FENCED_LEADER_EPOCH among them, a lost connection, a
//     failed dial, a request timeout, a partition without a leader:
//     ErrNoLeader) is retried with exponential backoff after a metadata
//     refresh (which finds the new leader), until DeliveryTimeout has
//     passed since the batch was opened; other errors fail its records at
//     once. UnknownTopic and UnknownPartition are retried only while
//     fresh metadata still lists the partition (a restarting server refuses
//     partitions it has not opened yet). Without idempotence delivery is at
//     least once: a batch the server appended just before the connection
//     dropped is stored again by the retry.
//   - Keys are placed by Partitioner (HashPartitioner: KeyPartition, the
//     FNV-1a hash of the key modulo the partition count, stable across
//     versions); keyless records stick to one partition per batch.
//   - Send waits while MaxBufferedBytes of records are unresolved.
//
// A Producer is safe for concurrent use.

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringmq/ringmq/proto"
)

// ProducerOptions configure a Producer. Zero fields take the defaults
// named beside them.
type ProducerOptions struct {
	ClientID    string
	Acks        Acks        // AcksLeader
	Compression proto.Codec // CodecNone
	Partitioner Partitioner // HashPartitioner

	BatchBytes       int           // 64 KiB: a batch closes at this size (uncompressed)
	Linger           time.Duration // 0: send batches as soon as a request slot is free
	MaxInFlight      int           // 5 requests per connection
	MaxRequestBytes  int           // 1 MiB: batches per request; keep below the server's max_frame_bytes
	MaxBufferedBytes int           // 64 MiB of records accepted and not yet resolved

	RequestTimeout  time.Duration // 30 s: one request, also sent as its timeout_ms
	DeliveryTimeout time.Duration // 2 min: a record not stored by then fails
	RetryBackoff    time.Duration // 50 ms, doubling per attempt up to MaxRetryBackoff
	MaxRetryBackoff time.Duration // 1 s
	DialTimeout     time.Duration // DefaultDialTimeout
	// OnDial is told the outcome of every connection attempt (see Options).
	OnDial func(addr string, err error)
	// SASL authenticates every connection (see Options).
	SASL SASL
	// TLS, when set, makes every connection TLS (see Options.TLS).
	TLS *tls.Config
	// DisableIdempotence turns idempotence off: no producer id, one
	// request per partition in flight, and a retry of a batch the server
	// appended stores it again (at least once).
	DisableIdempotence bool
}

func (o ProducerOptions) withDefaults() ProducerOptions {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if o.Partitioner == nil {
		o.Partitioner = HashPartitioner{}
	}
	def(&o.BatchBytes, 64<<10)
	def(&o.MaxInFlight, 5)
	def(&o.MaxRequestBytes, 1<<20)
	def(&o.MaxBufferedBytes, 64<<20)
	defDur(&o.RequestTimeout, 30*time.Second)
	defDur(&o.DeliveryTimeout, 2*time.Minute)
	defDur(&o.RetryBackoff, 50*time.Millisecond)
	defDur(&o.MaxRetryBackoff, time.Second)
	return o
}

// recordOverhead is a generous bound on a record's framing inside a batch.
const recordOverhead = 32

// requestOverhead bounds a request's bytes besides its batches.
const requestOverhead = 1 << 10

// Producer sends records; see the contract at the top of this file.
type Producer struct {
	opts ProducerOptions
	cl   *cluster

	ctx    context.Context // canceled when Close gives up: in-flight requests end
	cancel context.CancelFunc
	wake   chan struct{} // capacity 1: the sender has work
	quit   chan struct{} // closed by Close when nothing is left
	closed chan struct{} // closed when Close has finished
	wg     sync.WaitGroup

	mu        sync.Mutex
	queues    map[partKey]*partQueue
	sticky    map[string]uint32 // topic → its current sticky partition
	inflight  map[connKey]int   // connection → requests in flight
	turns     map[connKey]*connTurns
	turnCV    *sync.Cond // on mu: a connection's turn moved
	results   []delivery // resolved batches waiting for the delivery goroutine
	resultsCV *sync.Cond
	pending   int             // records accepted and not yet delivered
	buffered  int             // their bytes
	space     chan struct{}   // closed when buffered drops; nil when nobody waits
	idle      []chan struct{} // closed when pending reaches 0
	flushing  int             // Flush calls in progress: close open batches now
	closing   bool            // Close called: Send refuses
	aborted   error           // Close gave up: everything left fails with it

	idem bool       // idempotent: batches carry the producer id (producer_idem.go)
	pid  producerID // the id, once the server gave one

	stats producerCounters
}

// NewProducer returns a producer for the cluster at addr: "host:port", or
// a comma-separated list of nodes to bootstrap from (any one that answers
// names the others). It does not connect until the first Send.
func NewProducer(addr string, opts ProducerOptions) (*Producer, error) {
	opts = opts.withDefaults()
	if opts.Compression > proto.CodecZstd {
		return nil, fmt.Errorf("client: unknown compression codec %d", opts.Compression)
	}
	cl, err := newCluster(addr, Options{ClientID: opts.ClientID, OnDial: opts.OnDial, SASL: opts.SASL, TLS: opts.TLS}, opts.DialTimeout)
	if err != nil {
		return nil, err
	}
	p := &Producer{
		opts: opts, cl: cl, idem: !opts.DisableIdempotence && opts.Acks != AcksNone,
		wake: make(chan struct{}, 1), quit: make(chan struct{}), closed: make(chan struct{}),
		queues: make(map[partKey]*partQueue), sticky: make(map[string]uint32), inflight: make(map[connKey]int),
		turns: make(map[connKey]*connTurns),
	}
	p.resultsCV = sync.NewCond(&p.mu)
	p.turnCV = sync.NewCond(&p.mu)
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Add(2)
	go p.senderLoop()
	go p.deliveryLoop()
	return p, nil
}

// Send accepts rec for sending and calls fn (which may be nil) with its
// Result once it is stored or has failed. It returns an error, and never
// calls fn, if rec is not accepted: the producer is closing, the topic is
// unknown, the record is too large, or ctx ended while Send waited for
// buffer space or metadata.
func (p *Producer) Send(ctx context.Context, rec Record, fn func(Result)) error {
	if fn == nil {
		fn = func(Result) {}
	}
	p.mu.Lock()
	closing := p.closing
	p.mu.Unlock()
	if closing {
		return ErrProducerClosed
	}
	t, err := p.cl.topic(ctx, rec.Topic)
	if err != nil {
		return err
	}
	size := recordSize(&rec)
	if limit := p.opts.MaxRequestBytes - requestOverhead - proto.BatchHeaderSize; size > limit {
		return fmt.Errorf("%w: %d bytes, limit %d (MaxRequestBytes)", ErrRecordTooLarge, size, limit)
	}
	if rec.Timestamp.IsZero() {
		rec.Timestamp = time.Now()
	}
	return p.accept(ctx, t, &rec, size, fn)
}

// Produce is Send returning a Future instead of taking a callback. A record
// that is not accepted resolves the Future at once with the error.
func (p *Producer) Produce(ctx context.Context, rec Record) *Future {
	f := &Future{done: make(chan struct{})}
	if err := p.Send(ctx, rec, f.resolve); err != nil {
		f.resolve(Result{Partition: rec.Partition, Offset: NoOffset, Err: err})
	}
	return f
}

// SendSync sends rec and waits for its Result; the error is Result.Err. If
// ctx ends first it returns ctx.Err(), and the record may still be stored.
func (p *Producer) SendSync(ctx context.Context, rec Record) (Result, error) {
	f := p.Produce(ctx, rec)
	select {
	case <-f.done:
		return f.res, f.res.Err
	case <-ctx.Done():
		return Result{Offset: NoOffset, Err: ctx.Err()}, ctx.Err()
	}
}

// Future is the Result of one record, once it is known.
type Future struct {
	done chan struct{}
	res  Result
}

func (f *Future) resolve(r Result) {
	f.res = r
	close(f.done)
}

// Done is closed once the Result is known.
func (f *Future) Done() <-chan struct{} { return f.done }

// Wait blocks until the Result is known and returns it.
func (f *Future) Wait() Result {
	<-f.done
	return f.res
}

// Flush closes every open batch and waits until every record accepted
// before (or during) the call has its Result, or until ctx ends.
func (p *Producer) Flush(ctx context.Context) error {
	p.mu.Lock()
	if p.pending == 0 {
		p.mu.Unlock()
		return nil
	}
	p.flushing++
	ch := make(chan struct{})
	p.idle = append(p.idle, ch)
	p.mu.Unlock()
	p.kick()
	defer func() {
		p.mu.Lock()
		p.flushing--
		p.mu.Unlock()
	}()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting records, sends what is buffered and waits for every
// Result. If ctx ends first, every record still unresolved fails with
// ErrProducerClosed (requests in flight are abandoned: their records may
// still have been stored) and Close returns the ctx error. Every Result is
// delivered before Close returns. Later calls wait for the first to finish.
func (p *Producer) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		<-p.closed
		return nil
	}
	p.closing = true
	p.wakeSpaceWaiters()
	p.mu.Unlock()
	err := p.Flush(ctx)
	if err != nil {
		err = fmt.Errorf("%w: gave up on unsent records: %w", ErrProducerClosed, err)
		p.abort(err)
	}
	close(p.quit)
	p.kick()
	p.mu.Lock()
	p.resultsCV.Broadcast()
	p.mu.Unlock()
	p.wg.Wait()
	p.cancel()
	p.cl.close()
	close(p.closed)
	return err
}

// abort fails everything queued, cancels the requests in flight, and waits
// until every record has its Result.
func (p *Producer) abort(err error) {
	p.mu.Lock()
	p.aborted = err
	for _, q := range p.queues {
		if q.open != nil {
			p.closeOpen(q)
		}
		for _, b := range q.ready {
			p.resolve(b, 0, err)
		}
		q.ready = nil
	}
	ch := make(chan struct{})
	if p.pending == 0 {
		close(ch)
	} else {
		p.idle = append(p.idle, ch)
	}
	p.mu.Unlock()
	p.cancel()
	<-ch
}

// kick wakes the sender goroutine.
func (p *Producer) kick() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// accept waits for buffer space, partitions rec and appends it to its
// partition's open batch.
func (p *Producer) accept(ctx context.Context, t *topicMeta, rec *Record, size int, fn func(Result)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.buffered > 0 && p.buffered+size > p.opts.MaxBufferedBytes && !p.closing {
		if p.space == nil {
			p.space = make(chan struct{})
		}
		ch := p.space
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			p.mu.Lock()
			return ctx.Err()
		}
		p.mu.Lock()
	}
	if p.closing {
		return ErrProducerClosed
	}
	part, err := p.partition(t, rec, size)
	if err != nil {
		return err
	}
	p.append(p.queue(t.name, part), rec, size, fn)
	return nil
}

// partition picks rec's partition. p.mu is held.
func (p *Producer) partition(t *topicMeta, rec *Record, size int) (uint32, error) {
	n := t.partitions()
	part := p.opts.Partitioner.Partition(rec, n)
	if part == Sticky {
		cur, ok := p.sticky[t.name]
		if !ok || cur >= n {
			cur = rand.Uint32N(n)
			p.sticky[t.name] = cur
		}
		if q := p.queues[partKey{t.name, cur}]; q != nil && q.open != nil && !q.open.fits(size, p.opts.BatchBytes) {
			p.closeOpen(q) // moves the sticky partition on
			cur = p.sticky[t.name]
		}
		return cur, nil
	}
	if part < 0 || part >= int64(n) {
		return 0, fmt.Errorf("client: partition %d of %q (%d partitions): %w", part, t.name, n, proto.UnknownPartition)
	}
	return uint32(part), nil
}

// wakeSpaceWaiters releases Sends waiting for buffer space. p.mu is held.
func (p *Producer) wakeSpaceWaiters() {
	if p.space != nil {
		close(p.space)
		p.space = nil
	}
}

func recordSize(r *Record) int {
	n := recordOverhead + len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value) + 10
	}
	return n
}

// ProducerStats counts what a Producer has done since it was created.
type ProducerStats struct {
	Requests uint64 // produce requests sent (or attempted)
	Batches  uint64 // batches sent, retries included
	Records  uint64 // records resolved
	Retries  uint64 // batches requeued after a retriable error
	Failed   uint64 // records resolved with an error
}

type producerCounters struct {
	requests, batches, records, retries, failed atomic.Uint64
}

// Stats returns the producer's counters.
func (p *Producer) Stats() ProducerStats {
	c := &p.stats
	return ProducerStats{
		Requests: c.requests.Load(), Batches: c.batches.Load(), Records: c.records.Load(),
		Retries: c.retries.Load(), Failed: c.failed.Load(),
	}
}
