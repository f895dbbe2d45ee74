package replica

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Unix(1_000_000, 0)

// driver is a fake reactor: it feeds a Replica and collects what its
// Readies return.
type driver struct {
	t        *testing.T
	r        *Replica
	now      time.Time
	acks     []Ack
	wakes    []Wake
	flushes  []uint64 // FlushUpTo of each flush started
	ckpts    []uint64
	inFlight bool
	last     Ready
}

func newDriver(t *testing.T, cfg Config, o Offsets) *driver {
	t.Helper()
	r, err := New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	d := &driver{t: t, r: r, now: t0}
	r.Tick(t0)
	return d
}

func syncConfig() Config     { return Config{Sync: true, CheckpointInterval: time.Second} }
func intervalConfig() Config { return Config{FlushInterval: time.Second} }

// plan plans an append of n offsets and size bytes; the token is its base.
func (d *driver) plan(n uint64, size int, level Level) uint64 {
	d.t.Helper()
	if err := d.r.CheckAppend(level); err != nil {
		d.t.Fatalf("CheckAppend(%v): %v", level, err)
	}
	base := d.r.next
	d.r.AppendPlanned(Append{Base: base, Last: base + n - 1, Bytes: size, Level: level, Token: Token(base)})
	return base
}

// turn runs the end of a loop turn: Ready, record, Advance.
func (d *driver) turn() Ready {
	d.t.Helper()
	rd := d.r.Ready()
	d.acks = append(d.acks, rd.Acks...)
	d.wakes = append(d.wakes, rd.Wakes...)
	if rd.Flush {
		if d.inFlight {
			d.t.Fatalf("a second flush planned while one is in flight")
		}
		d.inFlight = true
		d.flushes = append(d.flushes, rd.FlushUpTo)
	}
	if rd.Checkpoint {
		d.ckpts = append(d.ckpts, rd.CheckpointAt)
	}
	rd.Acks, rd.Wakes = slices.Clone(rd.Acks), slices.Clone(rd.Wakes)
	d.r.Advance()
	d.last = rd
	return rd
}

func (d *driver) flushDone() {
	d.t.Helper()
	if !d.inFlight {
		d.t.Fatal("no flush in flight")
	}
	d.inFlight = false
	d.r.FlushCompleted(d.flushes[len(d.flushes)-1])
}

func (d *driver) tick(dt time.Duration) {
	d.now = d.now.Add(dt)
	d.r.Tick(d.now)
}

// takeAcks returns the acks released since the last call, as
// "base:level:ok|err".
func (d *driver) takeAcks() string {
	var b []string
	for _, a := range d.acks {
		res := "ok"
		if a.Err != nil {
			res = "err"
			if !errors.Is(a.Err, ErrFenced) && !errors.Is(a.Err, ErrReset) && !errors.Is(a.Err, ErrNotLeader) {
				d.t.Fatalf("ack %d: error %v does not wrap ErrFenced", a.Base, a.Err)
			}
		}
		b = append(b, fmt.Sprintf("%d:%v:%s", a.Base, a.Level, res))
	}
	d.acks = d.acks[:0]
	return strings.Join(b, " ")
}

func (d *driver) takeWakes() string {
	var b []string
	for _, w := range d.wakes {
		b = append(b, fmt.Sprintf("%d:%v", w.Token, w.Reason))
	}
	d.wakes = d.wakes[:0]
	return strings.Join(b, " ")
}

func (d *driver) expectAcks(want string) {
	d.t.Helper()
	if got := d.takeAcks(); got != want {
		d.t.Fatalf("acks released: got %q, want %q", got, want)
	}
}

func (d *driver) expectWakes(want string) {
	d.t.Helper()
	if got := d.takeWakes(); got != want {
		d.t.Fatalf("wakes: got %q, want %q", got, want)
	}
}

func (d *driver) expectOffsets(want Offsets) {
	d.t.Helper()
	if got := d.r.Offsets(); got != want {
		d.t.Fatalf("offsets: got %+v, want %+v", got, want)
	}
}

// mustPanicBUG runs fn and checks it panics with a "BUG:" message.
func mustPanicBUG(t *testing.T, fn func()) {
	t.Helper()
	defer func() {
		t.Helper()
		p := recover()
		if s, ok := p.(string); !ok || !strings.HasPrefix(s, "BUG:") {
			t.Fatalf("panic %v, want a BUG: message", p)
		}
	}()
	fn()
}
