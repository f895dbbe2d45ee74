package replica

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

var seedFlag = flag.Uint64("seed", 0, "replay TestReplicaMatchesModel and TestProducerRetriesMatchModel with this seed only")

// TestReplicaMatchesModel drives a Replica with seeded random inputs, as a
// reactor would with writes completing in any order, failures, flushes,
// ticks, followers, waiters, retention and resets, and checks after every
// turn that its acks, wakes, flushes and offsets are exactly what a naive
// model recomputing everything from the list of appends says. Replay a
// failure with
//
//	go test ./replica -run TestReplicaMatchesModel -args -seed=N
func TestReplicaMatchesModel(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, uint64(time.Now().UnixNano())}
	steps := 3000
	if *seedFlag != 0 {
		seeds = []uint64{*seedFlag}
	}
	if testing.Short() {
		steps = 1000
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Logf("seed %d (replay: go test ./replica -run TestReplicaMatchesModel -args -seed=%d)", seed, seed)
			p := newPropRun(t, seed)
			for p.step = 0; p.step < steps; p.step++ {
				p.do()
			}
			p.turn()
			p.t.Logf("%d steps: %d appends, %d acks, %d wakes, %d flushes, %d fences, final offsets %+v",
				steps, p.stats.appends, p.stats.acks, p.stats.wakes, p.stats.flushes, p.stats.fences, p.r.Offsets())
		})
	}
}

// mAppend is the model's record of one planned append.
type mAppend struct {
	base, last uint64
	bytes      uint64
	level      Level
	token      Token
	done       bool // write completion reported
	acked      bool
	ackErr     bool
}

type mWaiter struct {
	offset, need, start uint64
	deadline            time.Time
}

type mFollower struct {
	match uint64
	inISR bool
}

// model is the naive specification: it keeps every append since the last
// reset and recomputes the offsets from them.
type model struct {
	cfg       Config
	appends   []mAppend
	start0    uint64 // log end at the last reset
	logStart  uint64
	flushed   uint64
	hw        uint64
	fenceIdx  int // appends[fenceIdx:] never become visible
	fenced    bool
	low       int // appends[:low] are all acked
	visN      int
	flushing  bool
	flushUpTo uint64
	flushDue  bool
	nextFlush time.Time
	followers map[ID]*mFollower
	waiters   map[Token]*mWaiter
	now       time.Time
	// Expected outcomes, cumulative: token → error or not; token → reason.
	acks  map[Token]bool
	wakes map[Token]WakeReason
}

// vis is the number of visible appends: the completed prefix before the
// fence.
func (m *model) vis() int {
	// visN caches the answer: it only grows (a fence is never below it), until a reset.
	for m.visN < len(m.appends) && m.visN < m.fenceIdx && m.appends[m.visN].done {
		m.visN++
	}
	return m.visN
}

func (m *model) leo() uint64 {
	if v := m.vis(); v > 0 {
		return m.appends[v-1].last + 1
	}
	return m.start0
}

func (m *model) next() uint64 {
	if n := len(m.appends); n > 0 {
		return m.appends[n-1].last + 1
	}
	return m.start0
}

func (m *model) isr() int {
	n := 1
	for _, f := range m.followers {
		if f.inISR {
			n++
		}
	}
	return n
}

// readable is how many bytes of appends wholly below the HW hold offsets
// at or after off.
func (m *model) readable(off uint64) uint64 {
	var n uint64
	vis := m.vis()
	i := sort.Search(vis, func(i int) bool { return m.appends[i].last >= off })
	for _, a := range m.appends[i:vis] {
		if a.last >= off && a.last < m.hw {
			n += a.bytes
		}
	}
	return n
}

// settle recomputes the HW and releases every ack and wakes every waiter
// whose condition holds now.
func (m *model) settle() {
	if m.isr() >= m.cfg.MinInsync {
		c := m.leo()
		if m.cfg.Sync {
			c = m.flushed
		}
		for _, f := range m.followers {
			if f.inISR {
				c = min(c, f.match)
			}
		}
		m.hw = max(m.hw, c)
	}
	vis := m.vis()
	for m.low < len(m.appends) && m.appends[m.low].acked {
		m.low++
	}
	for i := m.low; i < len(m.appends); i++ {
		a := &m.appends[i]
		if a.acked {
			continue
		}
		ok := false
		switch a.level {
		case AckNone:
			ok = a.done
		case AckLeader:
			ok = i < vis
		case AckAll:
			ok = i < vis && a.last < m.hw
		}
		switch {
		case m.fenced && a.done:
			a.acked, a.ackErr = true, true
		case ok:
			a.acked = true
		}
		if a.acked {
			m.acks[a.token] = a.ackErr
		}
	}
	for tok, w := range m.waiters {
		if m.readable(w.offset) >= w.start+w.need {
			m.wakeOne(tok, WakeData)
		}
	}
}

func (m *model) wakeOne(tok Token, why WakeReason) {
	delete(m.waiters, tok)
	m.wakes[tok] = why
}

func (m *model) wakeAll(why WakeReason) {
	for tok := range m.waiters {
		m.wakeOne(tok, why)
	}
}

func (m *model) fence(at int) {
	m.fenced = true
	m.fenceIdx = min(m.fenceIdx, at)
	m.wakeAll(WakeFenced)
}

type propRun struct {
	t       *testing.T
	seed    uint64
	step    int
	rng     *rand.Rand
	r       *Replica
	m       *model
	tok     Token
	acks    map[Token]bool // released by the replica: token → error
	wakes   map[Token]WakeReason
	nextCk  uint64 // the flushed offset of the last checkpoint
	stats   struct{ appends, acks, wakes, flushes, fences int }
	history []string // the last inputs, for the failure message
}

func newPropRun(t *testing.T, seed uint64) *propRun {
	rng := rand.New(rand.NewPCG(seed, 0x7e91))
	cfg := Config{ID: 1, Sync: rng.IntN(2) == 0, FlushInterval: time.Duration(1+rng.IntN(3)) * 300 * time.Millisecond,
		MinInsync: 1 + rng.IntN(2)}
	start := uint64(rng.IntN(3)) * 1000
	o := Offsets{LogStart: start, Flushed: start, LogEnd: start}
	r, err := New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	p := &propRun{t: t, seed: seed, rng: rng, r: r, acks: map[Token]bool{}, wakes: map[Token]WakeReason{}}
	p.m = &model{cfg: cfg, start0: start, logStart: start, flushed: start, hw: start, fenceIdx: 1 << 30,
		followers: map[ID]*mFollower{}, waiters: map[Token]*mWaiter{}, acks: map[Token]bool{}, wakes: map[Token]WakeReason{}}
	p.m.cfg.CheckpointInterval = cfg.FlushInterval
	for id := ID(2); id < ID(2+rng.IntN(3)); id++ {
		p.m.followers[id] = &mFollower{}
	}
	now := t0
	p.m.now, p.m.nextFlush = now, now.Add(cfg.FlushInterval)
	r.Tick(now)
	p.m.settle()
	return p
}

func (p *propRun) fatalf(format string, args ...any) {
	p.t.Helper()
	p.t.Fatalf("seed %d step %d: %s\nlast inputs:\n%v\nreplay: go test ./replica -run TestReplicaMatchesModel -args -seed=%d",
		p.seed, p.step, fmt.Sprintf(format, args...), p.history, p.seed)
}

func (p *propRun) log(format string, args ...any) {
	if len(p.history) == 20 {
		p.history = p.history[1:]
	}
	p.history = append(p.history, fmt.Sprintf(format, args...))
}

// notDone picks an append whose write is still in flight, or -1.
func (p *propRun) notDone() int {
	var idx []int
	for i := range p.m.appends {
		if !p.m.appends[i].done {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return -1
	}
	return idx[p.rng.IntN(len(idx))]
}

func (p *propRun) do() {
	m := p.m
	switch k := p.rng.IntN(1000) / 10; {
	case k < 25:
		p.plan()
	case k < 50:
		if i := p.notDone(); i >= 0 {
			p.complete(i)
		}
	case k < 52:
		if i := p.notDone(); i >= 0 && p.rng.IntN(6) == 0 {
			a := &m.appends[i]
			p.log("fail %d", a.base)
			p.r.AppendFailed(a.base, errors.New("injected"))
			a.done = true
			m.fence(i)
			p.stats.fences++
		}
	case k < 67:
		p.turn()
	case k < 74:
		if m.flushing {
			p.log("flush done %d", m.flushUpTo)
			p.r.FlushCompleted(m.flushUpTo)
			m.flushing = false
			m.flushed = max(m.flushed, m.flushUpTo)
		}
	case k < 75:
		if m.flushing && p.rng.IntN(3) == 0 {
			p.log("flush failed")
			p.r.FlushFailed(errors.New("injected"))
			m.flushing = false
			m.fence(m.vis()) // nothing in flight becomes visible
			p.stats.fences++
		}
	case k < 82:
		p.tick(time.Duration(p.rng.IntN(400)) * time.Millisecond)
	case k < 87:
		p.follower()
	case k < 94:
		p.wait()
	case k < 96:
		p.cancel()
	case k < 98:
		if m.hw > m.logStart {
			start := m.logStart + uint64(p.rng.IntN(int(m.hw-m.logStart)+1))
			p.log("log start %d", start)
			p.r.LogStartMoved(start)
			m.logStart, m.flushed = start, max(m.flushed, start)
			for tok, w := range m.waiters {
				if w.offset < start {
					m.wakeOne(tok, WakeOutOfRange)
				}
			}
		}
	default:
		p.reset() // most likely soon after a fence: the others do nothing then
	}
	m.settle()
	p.checkOffsets()
}

func (p *propRun) plan() {
	m := p.m
	level := []Level{AckNone, AckLeader, AckAll}[p.rng.IntN(3)]
	err := p.r.CheckAppend(level)
	var want error
	switch {
	case m.fenced:
		want = ErrFenced
	case level == AckAll && m.isr() < m.cfg.MinInsync:
		want = ErrNotEnoughReplicas
	}
	if !errors.Is(err, want) || (want == nil) != (err == nil) {
		p.fatalf("CheckAppend(%v) = %v, want %v", level, err, want)
	}
	if err != nil {
		return
	}
	p.tok++
	base := m.next()
	a := mAppend{base: base, last: base + uint64(p.rng.IntN(4)), bytes: uint64(1 + p.rng.IntN(500)), level: level, token: p.tok}
	p.log("plan %d-%d %v", a.base, a.last, level)
	p.r.AppendPlanned(Append{Base: a.base, Last: a.last, Bytes: int(a.bytes), Level: level, Token: a.token})
	m.appends = append(m.appends, a)
	p.stats.appends++
}

func (p *propRun) complete(i int) {
	m := p.m
	a := &m.appends[i]
	p.log("complete %d", a.base)
	err := p.r.AppendCompleted(a.base)
	a.done = true
	if never := i >= m.fenceIdx; never != (err != nil) {
		p.fatalf("AppendCompleted(%d) = %v, past the fence: %v", a.base, err, never)
	}
}

func (p *propRun) tick(dt time.Duration) {
	m := p.m
	m.now = m.now.Add(dt)
	p.log("tick +%v", dt)
	p.r.Tick(m.now)
	if !m.cfg.Sync && !m.now.Before(m.nextFlush) {
		covered := m.flushed
		if m.flushing {
			covered = m.flushUpTo
		}
		m.flushDue = m.flushDue || m.leo() > covered
		m.nextFlush = m.now.Add(m.cfg.FlushInterval)
	}
	for tok, w := range m.waiters {
		if !w.deadline.After(m.now) {
			m.wakeOne(tok, WakeDeadline)
		}
	}
}

func (p *propRun) follower() {
	m := p.m
	if len(m.followers) == 0 {
		return
	}
	id := ID(2 + p.rng.IntN(len(m.followers)))
	f := m.followers[id]
	if p.rng.IntN(3) == 0 {
		var isr []ID
		for fid, ff := range m.followers {
			ff.inISR = p.rng.IntN(3) > 0
			if ff.inISR {
				isr = append(isr, fid)
			}
		}
		p.log("isr %v", isr)
		p.r.SetISR(isr)
		return
	}
	leo := m.leo()
	match := f.match + uint64(p.rng.IntN(int(leo-min(f.match, leo))+1))
	if p.rng.IntN(10) == 0 {
		match = leo + 1
		if err := p.r.FollowerMatch(id, match); !errors.Is(err, ErrBadOffsets) {
			p.fatalf("follower match past the log end: %v", err)
		}
		return
	}
	p.log("follower %d match %d", id, match)
	if err := p.r.FollowerMatch(id, match); err != nil {
		p.fatalf("FollowerMatch: %v", err)
	}
	f.match = match
}

func (p *propRun) wait() {
	m := p.m
	p.tok++
	leo := m.leo()
	off := m.logStart + uint64(p.rng.IntN(int(leo-m.logStart)+3))
	if off >= 2 && p.rng.IntN(5) == 0 {
		off -= 2
	}
	seen := m.hw
	if seen > 0 && p.rng.IntN(8) == 0 {
		seen -= 1 + uint64(p.rng.IntN(int(min(seen, 3))))
	}
	w := Wait{Token: p.tok | 1<<62, Offset: off, Seen: seen, MinBytes: p.rng.IntN(800) - 50,
		Deadline: m.now.Add(time.Duration(p.rng.IntN(2000)-100) * time.Millisecond)}
	want := WakeNone
	switch {
	case off < m.logStart || off > leo:
		want = WakeOutOfRange
	case m.fenced:
		want = WakeFenced
	case !w.Deadline.After(m.now):
		want = WakeDeadline
	case w.MinBytes <= 0 || seen < m.hw:
		want = WakeData
	}
	p.log("wait %d at %d for %d bytes", w.Token, off, w.MinBytes)
	if got := p.r.Wait(w); got != want {
		p.fatalf("Wait(%+v) = %v, want %v", w, got, want)
	}
	if want == WakeNone {
		m.waiters[w.Token] = &mWaiter{offset: off, need: uint64(w.MinBytes), start: m.readable(off), deadline: w.Deadline}
	}
}

func (p *propRun) cancel() {
	for tok := range p.m.waiters {
		p.log("cancel %d", tok)
		if !p.r.CancelWait(tok) {
			p.fatalf("CancelWait(%d) found nothing", tok)
		}
		delete(p.m.waiters, tok)
		return
	}
}

func (p *propRun) reset() {
	m := p.m
	if !m.fenced || m.flushing || p.notDone() >= 0 {
		return
	}
	leo := m.leo()
	low := max(m.flushed, m.logStart)
	end := low + uint64(p.rng.IntN(int(leo-low)+1)) // a torn tail may be cut
	o := Offsets{LogStart: m.logStart, Flushed: m.flushed, LogEnd: end}
	p.log("reset %+v", o)
	if err := p.r.Reset(o); err != nil {
		p.fatalf("Reset: %v", err)
	}
	for i := range m.appends {
		if a := &m.appends[i]; !a.acked {
			a.acked, a.ackErr = true, true
			m.acks[a.token] = true
		}
	}
	m.wakeAll(WakeReset)
	m.appends, m.low, m.visN, m.start0, m.fenced, m.fenceIdx, m.flushDue = nil, 0, 0, end, false, 1<<30, false
	m.hw = m.logStart
	for _, f := range m.followers {
		f.match = min(f.match, end)
	}
}

// turn runs a Ready and checks it against the model.
func (p *propRun) turn() {
	m := p.m
	wantFlush := !m.flushing && !m.fenced && m.leo() > m.flushed && (m.cfg.Sync || m.flushDue)
	rd := p.r.Ready()
	p.log("turn")
	for _, a := range rd.Acks {
		if _, dup := p.acks[a.Token]; dup {
			p.fatalf("ack %d released twice", a.Token)
		}
		p.acks[a.Token] = a.Err != nil
		p.stats.acks++
	}
	for _, w := range rd.Wakes {
		if _, dup := p.wakes[w.Token]; dup {
			p.fatalf("waiter %d woken twice", w.Token)
		}
		p.wakes[w.Token] = w.Reason
		p.stats.wakes++
	}
	if rd.Flush != wantFlush || (rd.Flush && rd.FlushUpTo != m.leo()) {
		p.fatalf("flush %v up to %d, want %v up to %d (flushed %d, in flight %v, fenced %v)",
			rd.Flush, rd.FlushUpTo, wantFlush, m.leo(), m.flushed, m.flushing, m.fenced)
	}
	if rd.Flush {
		m.flushing, m.flushUpTo, m.flushDue = true, rd.FlushUpTo, false
		p.stats.flushes++
	}
	if rd.Checkpoint {
		if rd.CheckpointAt != m.flushed || rd.CheckpointAt <= p.nextCk {
			p.fatalf("checkpoint at %d, flushed %d, last checkpoint %d", rd.CheckpointAt, m.flushed, p.nextCk)
		}
		p.nextCk = rd.CheckpointAt
	}
	p.r.Advance()
	p.compare()
}

func (p *propRun) compare() {
	m := p.m
	if len(p.acks) != len(m.acks) {
		p.fatalf("%d acks released, model says %d", len(p.acks), len(m.acks))
	}
	for tok, isErr := range m.acks {
		got, ok := p.acks[tok]
		if !ok || got != isErr {
			p.fatalf("ack %d: released %v error %v, model says error %v", tok, ok, got, isErr)
		}
	}
	if len(p.wakes) != len(m.wakes) {
		p.fatalf("%d waiters woken, model says %d", len(p.wakes), len(m.wakes))
	}
	for tok, why := range m.wakes {
		if got := p.wakes[tok]; got != why {
			p.fatalf("waiter %d woken %v, model says %v", tok, got, why)
		}
	}
	if p.r.Waiters() != len(m.waiters) {
		p.fatalf("%d waiters registered, model says %d", p.r.Waiters(), len(m.waiters))
	}
}

func (p *propRun) checkOffsets() {
	m := p.m
	want := Offsets{LogStart: m.logStart, HighWatermark: m.hw, Flushed: m.flushed, LogEnd: m.leo()}
	if got := p.r.Offsets(); got != want {
		p.fatalf("offsets %+v, model says %+v", got, want)
	}
}
