package ack

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

const debugProperty = false

var seedFlag = flag.Uint64("seed", 0, "seed of the randomized tests (0: a new one, printed)")

func testSeed(t *testing.T) uint64 {
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -seed %d)", seed, seed)
	return seed
}

// The model: a map offset → state, written from the contract in the
// package doc, not from the tracker's code.
type mState uint8

const (
	mFresh mState = iota
	mLocked
	mWaiting
	mDead
	mDone
)

type mRec struct {
	state    mState
	member   Member
	deadline int64 // locked: lock deadline; waiting: not before
	count    int
	lastErr  string
}

type model struct {
	cfg   Config
	start uint64
	recs  map[uint64]*mRec
	meta  metas
}

func (m *model) rec(off uint64) *mRec {
	r, ok := m.recs[off]
	if !ok {
		r = &mRec{}
		m.recs[off] = r
	}
	return r
}

func (m *model) floor() uint64 {
	f := m.start
	for m.rec(f).state == mDone {
		f++
	}
	return f
}

func (m *model) backoff(n int) time.Duration {
	if len(m.cfg.Backoff) == 0 || n == 0 {
		return 0
	}
	return m.cfg.Backoff[min(n, len(m.cfg.Backoff))-1]
}

func (m *model) acquire(mem Member, now int64, max int, logEnd uint64) []uint64 {
	var out []uint64
	f := m.floor()
	for off := f; off < logEnd && off < f+uint64(m.cfg.MaxUnacked) && len(out) < max; off++ {
		r := m.rec(off)
		ok := r.state == mFresh && m.meta[off].DeliverAt <= now || r.state == mWaiting && r.deadline <= now
		if !ok {
			continue
		}
		r.state, r.member, r.deadline = mLocked, mem, now+int64(m.cfg.AckTimeout)
		r.count++
		out = append(out, off)
	}
	return out
}

func (m *model) release(r *mRec, notBefore int64) {
	if m.cfg.MaxDeliveries > 0 && r.count >= m.cfg.MaxDeliveries {
		r.state = mDead
		return
	}
	r.state, r.deadline = mWaiting, notBefore
}

func (m *model) ack(mem Member, off uint64) error {
	r := m.rec(off)
	if off < m.start || r.state == mDone {
		return nil
	}
	if (r.state == mLocked || r.state == mWaiting) && r.member == mem && mem != 0 {
		r.state = mDone
		return nil
	}
	return ErrNotHeld
}

func (m *model) holds(mem Member, off uint64) bool {
	r := m.rec(off)
	return off >= m.start && r.state == mLocked && r.member == mem
}

func (m *model) nack(mem Member, off uint64, now int64, delay time.Duration, reason string) error {
	if !m.holds(mem, off) {
		return ErrNotHeld
	}
	r := m.rec(off)
	if reason != "" {
		r.lastErr = reason
	}
	if delay == UseBackoff {
		delay = m.backoff(r.count)
	}
	m.release(r, now+int64(delay))
	return nil
}

func (m *model) reject(mem Member, off uint64, reason string) error {
	if !m.holds(mem, off) {
		return ErrNotHeld
	}
	r := m.rec(off)
	if reason != "" {
		r.lastErr = reason
	}
	if m.cfg.MaxDeliveries > 0 {
		r.state = mDead
	} else {
		r.state = mDone
	}
	return nil
}

func (m *model) expire(now int64) int {
	n := 0
	for _, r := range m.recs {
		if r.state == mLocked && r.deadline <= now {
			m.release(r, now+int64(m.backoff(r.count)))
			n++
		}
	}
	return n
}

func (m *model) left(mem Member, now int64) int {
	n := 0
	for _, r := range m.recs {
		if r.member != mem {
			continue
		}
		if r.state == mLocked {
			m.release(r, now)
			n++
		}
		r.member = 0
	}
	return n
}

// crash: locks, backoffs, holders and last errors of live records are
// not durable.
func (m *model) crash() {
	for _, r := range m.recs {
		switch r.state {
		case mLocked, mWaiting:
			r.state, r.member, r.deadline, r.lastErr = mWaiting, 0, 0, ""
			if m.cfg.MaxDeliveries > 0 && r.count >= m.cfg.MaxDeliveries {
				r.state = mDead
			}
		}
	}
}

func sameErr(a, b error) bool {
	return (a == nil) == (b == nil) && (a == nil || errors.Is(a, b) || errors.Is(b, a))
}

// TestPropertyAgainstModel runs random acquire, ack, nack, reject,
// expire, leave, dead-letter confirmations and crash-restarts against a
// shared tracker and the model, and checks that both agree on every
// answer, every hand-out, the floor and the delivery counts; at each
// restart the restored tracker's durable state equals the live one's.
func TestPropertyAgainstModel(t *testing.T) {
	seed := testSeed(t)
	iters := 40
	if testing.Short() {
		iters = 8
	}
	deadline := time.Now().Add(6 * time.Second) // bounded under -race on a loaded machine
	for i := 0; i < iters && time.Now().Before(deadline); i++ {
		if err := runProperty(seed+uint64(i), 1500); err != nil {
			t.Fatalf("seed %d (replay with -seed %d, iteration %d): %v", seed+uint64(i), seed, i, err)
		}
	}
}

func runProperty(seed uint64, steps int) error {
	rng := rand.New(rand.NewPCG(seed, 0))
	cfg := baseConfig()
	cfg.AckTimeout = time.Duration(1+rng.IntN(5)) * time.Second
	cfg.MaxUnacked = 1 + rng.IntN(40)
	cfg.MaxDeliveries = rng.IntN(4)
	if rng.IntN(2) == 0 {
		cfg.Backoff = []time.Duration{500 * time.Millisecond, 2 * time.Second}
	}
	cfg.SnapshotEvery = 1 + rng.IntN(50)
	start := uint64(rng.IntN(3)) * 1000
	md := &model{cfg: cfg, start: start, recs: map[uint64]*mRec{}, meta: metas{}}
	if debugProperty {
		fmt.Printf("config %+v\n", cfg)
	}
	tr, err := New(cfg, start)
	if err != nil {
		return err
	}
	var disk []byte
	now := t0.UnixNano()
	logEnd := start
	members := []Member{1, 2, 3}
	deadOut := map[uint64]bool{} // dead letters handed out, not yet confirmed
	held := func() (Member, uint64) {
		// a record some member holds, or a random one
		for off := md.floor(); off < logEnd; off++ {
			if r := md.rec(off); r.state == mLocked && rng.IntN(3) == 0 {
				return r.member, off
			}
		}
		return members[rng.IntN(len(members))], start + uint64(rng.IntN(int(logEnd-start)+2))
	}
	collect := func() error {
		for _, dl := range persist(tr, &disk) {
			if r := md.rec(dl.Offset); r.state != mDead || r.count != dl.Deliveries || r.lastErr != dl.LastError {
				return fmt.Errorf("dead letter %+v, model %+v", dl, *r)
			}
			deadOut[dl.Offset] = true
		}
		return nil
	}
	for step := 0; step < steps; step++ {
		var what string
		switch op := rng.IntN(100); {
		case op < 10:
			n := uint64(rng.IntN(8))
			for off := logEnd; off < logEnd+n; off++ {
				if rng.IntN(8) == 0 {
					md.meta[off] = Meta{DeliverAt: now + int64(rng.IntN(5000))*int64(time.Millisecond)}
				}
			}
			logEnd += n
			what = "append"
		case op < 35:
			m, max := members[rng.IntN(len(members))], 1+rng.IntN(6)
			rs, err := tr.Acquire(nil, m, time.Unix(0, now), max, logEnd, md.meta)
			want := md.acquire(m, now, max, logEnd)
			if err != nil || !reflect.DeepEqual(offsets(rs), want) {
				return fmt.Errorf("step %d: acquire(%d, max %d, end %d) = %s %v, model %v", step, m, max, logEnd, fmtRanges(rs), err, want)
			}
			for _, r := range rs {
				if r.Deliveries != md.rec(r.Start).count {
					return fmt.Errorf("step %d: offset %d delivered %d times, model %d", step, r.Start, r.Deliveries, md.rec(r.Start).count)
				}
			}
			what = "acquire"
		case op < 55:
			m, off := held()
			if err, want := tr.Ack(m, off), md.ack(m, off); !sameErr(err, want) {
				return fmt.Errorf("step %d: ack(%d, %d) = %v, model %v", step, m, off, err, want)
			}
			what = "ack"
		case op < 62:
			m, off := held()
			delay := []time.Duration{0, UseBackoff, time.Second}[rng.IntN(3)]
			reason := []string{"", "e1", "e2"}[rng.IntN(3)]
			if err, want := tr.Nack(m, off, time.Unix(0, now), delay, reason), md.nack(m, off, now, delay, reason); !sameErr(err, want) {
				return fmt.Errorf("step %d: nack(%d, %d) = %v, model %v", step, m, off, err, want)
			}
			what = "nack"
		case op < 65:
			m, off := held()
			if err, want := tr.Reject(m, off, "rejected"), md.reject(m, off, "rejected"); !sameErr(err, want) {
				return fmt.Errorf("step %d: reject(%d, %d) = %v, model %v", step, m, off, err, want)
			}
			what = "reject"
		case op < 68:
			m, upTo := held()
			want := 0
			for off := start; off < upTo; off++ {
				if md.holds(m, off) {
					md.rec(off).state = mDone
					want++
				}
			}
			if n := tr.AckCumulative(m, upTo); n != want {
				return fmt.Errorf("step %d: ack cumulative(%d, %d) = %d, model %d", step, m, upTo, n, want)
			}
			what = "ack cumulative"
		case op < 80:
			now += int64(rng.IntN(3000)) * int64(time.Millisecond)
			if n, want := tr.Expire(time.Unix(0, now)), md.expire(now); n != want {
				return fmt.Errorf("step %d: expire = %d, model %d", step, n, want)
			}
			what = "expire"
		case op < 83:
			m := members[rng.IntN(len(members))]
			if n, want := tr.MemberLeft(m, time.Unix(0, now)), md.left(m, now); n != want {
				return fmt.Errorf("step %d: member %d left: released %d, model %d", step, m, n, want)
			}
			what = "leave"
		case op < 88:
			for off := range deadOut {
				if err := tr.DeadLettered(off); err != nil {
					return fmt.Errorf("step %d: dead lettered %d: %v", step, off, err)
				}
				md.rec(off).state = mDone
				delete(deadOut, off)
				break
			}
			what = "dead lettered"
		case op < 95:
			if err := collect(); err != nil {
				return fmt.Errorf("step %d: %v", step, err)
			}
			what = "persist"
		default:
			if err := collect(); err != nil {
				return fmt.Errorf("step %d: %v", step, err)
			}
			rebuilt, err := rebuild(cfg, disk)
			if err != nil {
				return fmt.Errorf("step %d: rebuild: %w", step, err)
			}
			if a, b := durable(tr), durable(rebuilt); a != b {
				return fmt.Errorf("step %d: rebuilt durable state\n%s\nlive\n%s", step, b, a)
			}
			if tr, err = Restore(cfg, disk); err != nil {
				return fmt.Errorf("step %d: restore: %w", step, err)
			}
			md.crash()
			clear(deadOut)
			if err := collect(); err != nil {
				return fmt.Errorf("step %d: after restart: %v", step, err)
			}
			what = "crash"
		}
		if debugProperty {
			fmt.Printf("step %d %s: floor %d, %s\n", step, what, tr.Floor(), durable(tr))
		}
		if f := md.floor(); tr.Floor() != f {
			return fmt.Errorf("step %d (%s): floor %d, model %d", step, what, tr.Floor(), f)
		}
		for off := tr.Floor(); off < logEnd; off++ {
			if got, want := tr.Deliveries(off), md.rec(off).count; got != want && md.rec(off).state != mDone {
				return fmt.Errorf("step %d (%s): offset %d delivered %d times, model %d", step, what, off, got, want)
			}
			if tr.Done(off) != (md.rec(off).state == mDone) {
				return fmt.Errorf("step %d (%s): offset %d done %v, model state %d", step, what, off, tr.Done(off), md.rec(off).state)
			}
		}
	}
	return nil
}

// durable renders a tracker's durable state (its snapshot).
func durable(tr *Tracker) string {
	s := tr.Snapshot()
	return fmt.Sprintf("floor %d done %v entries %+v", s.Floor, s.Done.ToArray(), s.Entries)
}
