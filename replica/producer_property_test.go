package replica

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// TestProducerRetriesMatchModel replays seeded random retry schedules:
// idempotent producers send batches with up to five requests in flight,
// answers are delayed or lost, connections drop and every request not
// answered is retried in order, writes complete in any order or fail (a
// fence, then a reset), epochs are bumped, and the broker restarts from a
// producer snapshot plus the log after it. The model is the log itself:
// every record of every producer must be present exactly once and in
// order, every answer must name the offsets its batch really has, and a
// follower handed the same batches must hold the leader's state.
// Replay a failure with
//
//	go test ./replica -run TestProducerRetriesMatchModel -args -seed=N
func TestProducerRetriesMatchModel(t *testing.T) {
	var seeds []uint64
	for i := uint64(1); i <= 24; i++ {
		seeds = append(seeds, i)
	}
	seeds = append(seeds, uint64(time.Now().UnixNano()))
	steps := 20000
	if *seedFlag != 0 {
		seeds = []uint64{*seedFlag}
	}
	if testing.Short() {
		steps = 4000
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Logf("seed %d (replay: go test ./replica -run TestProducerRetriesMatchModel -args -seed=%d)", seed, seed)
			s := newRetrySim(t, seed)
			for s.step = 0; s.step < steps; s.step++ {
				s.do()
			}
			s.drain()
			s.t.Logf("%d steps: %d records in %d batches sent %d times (%d duplicates answered, %d in-flight retries refused, "+
				"%d out of order retried), %d drops, %d write failures, %d restarts, %d epoch bumps; log end %d",
				steps, s.stats.records, s.stats.batches, s.stats.sends, s.stats.dups, s.stats.inflightDups, s.stats.ooo,
				s.stats.drops, s.stats.failures, s.stats.restarts, s.stats.bumps, s.r.Offsets().LogEnd)
		})
	}
}

// cBatch is a producer's batch: records [first, first+count) of the
// producer, sent with epoch and seq.
type cBatch struct {
	first, count int
	epoch        int16
	seq          int32
	sent         bool // a request for it is outstanding on connection gen
	gen          int
	acked        bool
}

// simClient is an idempotent producer and its connection.
type simClient struct {
	id         int64
	epoch      int16
	nextSeq    int32
	records    int       // records created
	firstCount int       // the record count of its first batch, if not 0
	queue      []*cBatch // not yet acknowledged, in sequence order
	gen        int       // connection generation
	answers    []answer  // on the current connection, in order
	logged     int       // records seen in the log so far (the model)
}

// answer is the broker's answer to one request.
type answer struct {
	b          *cBatch
	gen        int
	base, last uint64
	err        error
}

// planned is an append in flight on the broker.
type planned struct {
	c          *simClient // nil: a batch that is not idempotent
	b          *cBatch
	gen        int
	pb         ProducerBatch
	base, last uint64
	done       bool
}

// logEntry is a batch in the log.
type logEntry struct {
	c     *simClient
	first int
	count int
	lb    LogBatch
}

type retrySim struct {
	t       *testing.T
	rng     *rand.Rand
	step    int
	cfg     Config
	r       *Replica
	fol     *Replica // a follower handed every batch the leader's log gets
	clients []*simClient
	planned []*planned // in offset order
	tokens  map[Token]*planned
	tok     Token
	log     []logEntry
	byBase  map[uint64]int // log index by base offset
	snap    []byte         // the last snapshot taken
	stats   struct {
		records, batches, sends, dups, inflightDups, ooo, drops, failures, restarts, bumps int
	}
}

func newRetrySim(t *testing.T, seed uint64) *retrySim {
	s := &retrySim{t: t, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), cfg: intervalConfig(),
		tokens: map[Token]*planned{}, byBase: map[uint64]int{}}
	r, err := New(s.cfg, Offsets{})
	if err != nil {
		t.Fatal(err)
	}
	s.r = r
	if s.fol, err = New(s.cfg, Offsets{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		c := &simClient{id: int64(100 + i)}
		if s.rng.IntN(2) == 0 {
			// A first batch of nearly 2^31 records: the sequence wraps
			// during the run.
			c.firstCount = math.MaxInt32 - s.rng.IntN(40)
		}
		s.clients = append(s.clients, c)
	}
	return s
}

func (s *retrySim) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("step %d: "+format, append([]any{s.step}, args...)...)
}

func (s *retrySim) do() {
	c := s.clients[s.rng.IntN(len(s.clients))]
	switch n := s.rng.IntN(100); {
	case n < 15:
		s.newBatch(c)
	case n < 40:
		s.send(c)
	case n < 60:
		s.complete(s.rng.IntN(200) == 0)
	case n < 72:
		s.turn()
	case n < 87:
		s.deliver(c)
	case n < 90:
		s.drop(c)
	case n < 92:
		s.appendPlain()
	case n < 94:
		s.takeSnapshot()
	case n < 95:
		s.restart()
	case n < 96:
		s.bump(c)
	default:
		s.reset()
	}
}

func (s *retrySim) newBatch(c *simClient) {
	if len(c.queue) >= 12 {
		return
	}
	b := &cBatch{first: c.records, count: 1 + s.rng.IntN(4), epoch: c.epoch, seq: c.nextSeq}
	if c.records == 0 && c.firstCount > 0 {
		b.count = c.firstCount
	}
	c.records += b.count
	c.nextSeq = addSeq(c.nextSeq, int32(b.count))
	c.queue = append(c.queue, b)
	s.stats.batches++
	s.stats.records += b.count
}

// send sends the first batch without an outstanding request. Like Kafka's
// client it sends only among the five batches from its oldest
// unacknowledged one: a retry must still be among the broker's remembered
// batches.
func (s *retrySim) send(c *simClient) {
	out := 0
	var next *cBatch
	for _, b := range c.queue[:min(len(c.queue), ProducerBatches)] {
		switch {
		case b.acked:
		case b.sent:
			out++
		case next == nil:
			next = b
		}
	}
	if next == nil || out >= ProducerBatches {
		return
	}
	next.sent, next.gen = true, c.gen
	s.stats.sends++
	pbat := ProducerBatch{ProducerID: c.id, Epoch: next.epoch, BaseSeq: next.seq, Count: int32(next.count), MaxTimestamp: int64(s.step)}
	err := s.r.CheckAppend(AckLeader)
	var dup Duplicate
	if err == nil {
		dup, err = s.r.CheckProducer(pbat)
	}
	switch {
	case err != nil:
		c.answers = append(c.answers, answer{b: next, gen: c.gen, err: err})
	case dup.Found:
		s.stats.dups++
		s.tok++
		s.tokens[s.tok] = &planned{c: c, b: next, gen: c.gen}
		s.r.AckDuplicate(s.tok, AckLeader, dup)
	default:
		s.plan(&planned{c: c, b: next, gen: c.gen, pb: pbat})
	}
}

func (s *retrySim) plan(p *planned) {
	p.base = s.r.next
	p.last = p.base + uint64(p.pb.Count) - 1
	s.tok++
	s.tokens[s.tok] = p
	s.planned = append(s.planned, p)
	s.r.AppendPlanned(Append{Base: p.base, Last: p.last, Bytes: 10, Level: AckLeader, Token: s.tok, Producer: p.pb})
}

// appendPlain appends a batch that is not idempotent.
func (s *retrySim) appendPlain() {
	if s.r.CheckAppend(AckLeader) != nil {
		return
	}
	s.plan(&planned{pb: ProducerBatch{ProducerID: NoProducer, Count: int32(1 + s.rng.IntN(3)), MaxTimestamp: int64(s.step)}})
}

// complete completes (or, if fail, fails) a random write in flight.
func (s *retrySim) complete(fail bool) {
	var open []*planned
	for _, p := range s.planned {
		if !p.done {
			open = append(open, p)
		}
	}
	if len(open) == 0 {
		return
	}
	p := open[s.rng.IntN(len(open))]
	p.done = true
	if fail {
		s.stats.failures++
		s.r.AppendFailed(p.base, errors.New("injected write failure"))
	} else {
		s.r.AppendCompleted(p.base)
	}
	s.sweep()
}

// sweep moves the appends the log end passed into the log, checking that
// each producer's records arrive exactly once and in order.
func (s *retrySim) sweep() {
	end := s.r.Offsets().LogEnd
	for len(s.planned) > 0 && s.planned[0].last < end {
		p := s.planned[0]
		s.planned = s.planned[1:]
		e := logEntry{c: p.c, lb: LogBatch{ProducerBatch: p.pb, BaseOffset: p.base, LastOffset: p.last}}
		if p.c != nil {
			e.first, e.count = p.b.first, p.b.count
			if p.b.first != p.c.logged {
				s.fatalf("producer %d: records %d-%d appended at offset %d, but the log holds its records up to %d: a duplicate or a gap",
					p.c.id, p.b.first, p.b.first+p.b.count-1, p.base, p.c.logged-1)
			}
			p.c.logged += p.b.count
		}
		s.byBase[p.base] = len(s.log)
		s.log = append(s.log, e)
		// The follower replicates it: the header goes in unchecked.
		s.fol.AppendPlanned(Append{Base: p.base, Last: p.last, Bytes: 10, Level: AckNone, Producer: p.pb})
		if err := s.fol.AppendCompleted(p.base); err != nil {
			s.fatalf("follower: %v", err)
		}
		s.fol.Ready()
		s.fol.Advance()
	}
}

func (s *retrySim) turn() {
	rd := s.r.Ready()
	for _, a := range rd.Acks {
		p := s.tokens[a.Token]
		delete(s.tokens, a.Token)
		if p.c == nil {
			continue
		}
		p.c.answers = append(p.c.answers, answer{b: p.b, gen: p.gen, base: a.Base, last: a.Last, err: a.Err})
	}
	s.r.Advance()
}

// deliver hands c its oldest answer; answers of a dropped connection are
// lost.
func (s *retrySim) deliver(c *simClient) {
	if len(c.answers) == 0 {
		return
	}
	a := c.answers[0]
	c.answers = c.answers[1:]
	if a.gen != c.gen || !a.b.sent || a.b.gen != a.gen {
		return
	}
	a.b.sent = false
	switch {
	case a.err == nil:
		s.checkOffsets(c, a)
		a.b.acked = true
		for len(c.queue) > 0 && c.queue[0].acked {
			c.queue = c.queue[1:]
		}
	case errors.Is(a.err, ErrDuplicateInFlight):
		s.stats.inflightDups++
	case errors.Is(a.err, ErrOutOfOrderSequence), errors.Is(a.err, ErrUnknownProducer):
		// Retriable only while an earlier batch is not acknowledged: it
		// may still land (Kafka's client does the same).
		if c.queue[0] == a.b {
			s.fatalf("producer %d: batch at sequence %d refused out of order with nothing before it unacknowledged: %v", c.id, a.b.seq, a.err)
		}
		s.stats.ooo++
	case errors.Is(a.err, ErrFenced), errors.Is(a.err, ErrReset):
	default:
		s.fatalf("producer %d: batch at sequence %d: unexpected error %v", c.id, a.b.seq, a.err)
	}
}

// checkOffsets: an answer names the offsets where its batch is in the log.
func (s *retrySim) checkOffsets(c *simClient, a answer) {
	i, ok := s.byBase[a.base]
	if !ok {
		s.fatalf("producer %d: records %d+%d acknowledged at %d-%d, where no batch starts in the log", c.id, a.b.first, a.b.count, a.base, a.last)
	}
	if e := s.log[i]; e.c != c || e.first != a.b.first || e.count != a.b.count || e.lb.LastOffset != a.last {
		s.fatalf("producer %d: records %d+%d acknowledged at %d-%d, where the log holds %d+%d", c.id, a.b.first, a.b.count, a.base, a.last, e.first, e.count)
	}
}

// drop closes c's connection: answers not yet read are lost, and every
// outstanding request is sent again in order.
func (s *retrySim) drop(c *simClient) {
	s.stats.drops++
	c.gen++
	c.answers = c.answers[:0]
	for _, b := range c.queue {
		b.sent = false
	}
}

// bump starts a new epoch (a producer restart) once c has nothing
// unacknowledged.
func (s *retrySim) bump(c *simClient) {
	if len(c.queue) > 0 || c.epoch == math.MaxInt16 {
		return
	}
	s.stats.bumps++
	c.epoch++
	c.nextSeq = 0
}

// reset reopens the log after a failure, once nothing is in flight.
func (s *retrySim) reset() {
	if s.r.Fenced() == nil || s.r.InFlight() > 0 {
		return
	}
	s.turn()
	end := s.r.Offsets().LogEnd
	if err := s.r.Reset(Offsets{LogEnd: end, Flushed: end, HighWatermark: end}); err != nil {
		s.fatalf("reset: %v", err)
	}
	s.planned = s.planned[:0] // what was not visible is gone
}

func (s *retrySim) takeSnapshot() {
	snap := s.r.Producers().Snapshot()
	s.snap = AppendProducerSnapshot(s.snap[:0], &snap)
}

// restart rebuilds the broker from the last snapshot and the log after
// it, checks the rebuilt state equals the live one, and drops every
// connection.
func (s *retrySim) restart() {
	if s.r.InFlight() > 0 || s.r.Fenced() != nil {
		return
	}
	s.stats.restarts++
	s.turn()
	end := s.r.Offsets().LogEnd
	r, err := New(s.cfg, Offsets{LogEnd: end, Flushed: end, HighWatermark: end})
	if err != nil {
		s.fatalf("new replica: %v", err)
	}
	if s.snap != nil {
		snap, _, err := ParseProducerSnapshot(s.snap)
		if err != nil {
			s.fatalf("parse snapshot: %v", err)
		}
		if err := r.Producers().Restore(&snap, end); err != nil {
			s.fatalf("restore: %v", err)
		}
	}
	for _, e := range s.log {
		if err := r.Producers().Replay(e.lb); err != nil {
			s.fatalf("replay: %v", err)
		}
	}
	want := s.r.Producers().Snapshot()
	if got := r.Producers().Snapshot(); !reflect.DeepEqual(got, want) {
		s.fatalf("state rebuilt from the snapshot and the log\n%+v\ndiffers from the live state\n%+v", got, want)
	}
	if got := s.fol.Producers().Snapshot(); !reflect.DeepEqual(got, want) {
		s.fatalf("follower's state\n%+v\ndiffers from the leader's\n%+v", got, want)
	}
	s.r = r
	for _, c := range s.clients {
		s.drop(c)
	}
}

// drain runs without faults until every batch is acknowledged; it must
// converge.
func (s *retrySim) drain() {
	for s.r.Fenced() != nil || s.r.InFlight() > 0 {
		s.complete(false)
		s.reset()
	}
	for round := 0; ; round++ {
		left := 0
		for _, c := range s.clients {
			left += len(c.queue)
		}
		if left == 0 {
			break
		}
		if round == 10_000 {
			s.fatalf("%d batches still unacknowledged after 10000 fault-free rounds", left)
		}
		for _, c := range s.clients {
			for i := 0; i < ProducerBatches; i++ {
				s.send(c)
			}
		}
		for s.r.InFlight() > 0 {
			s.complete(false)
		}
		s.turn()
		for _, c := range s.clients {
			for len(c.answers) > 0 {
				s.deliver(c)
			}
		}
	}
	for _, c := range s.clients {
		if c.logged != c.records {
			s.fatalf("producer %d: %d records created, %d in the log", c.id, c.records, c.logged)
		}
	}
	if got, want := s.fol.Producers().Snapshot(), s.r.Producers().Snapshot(); !reflect.DeepEqual(got, want) {
		s.fatalf("at the end, the follower's state\n%+v\ndiffers from the leader's\n%+v", got, want)
	}
}
