package storage

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

var seedFlag = flag.Uint64("seed", 0, "replay TestLogMatchesModel with this seed only")

// TestLogMatchesModel runs seeded random sequences of appends, reads,
// seeks by time, rolls, flushes, checkpoints, retention, clean reopens and
// crash reopens against the in-memory model. Replay a failure with
//
//	go test ./storage -run TestLogMatchesModel -args -seed=N
func TestLogMatchesModel(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, uint64(time.Now().UnixNano())}
	steps := 400
	if *seedFlag != 0 {
		seeds = seeds[:0:0]
		seeds = append(seeds, *seedFlag)
	}
	if testing.Short() {
		steps = 100
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			p := newPropRun(t, seed)
			defer p.st.Close()
			for p.step = 0; p.step < steps; p.step++ {
				p.do()
			}
			p.checkAll()
		})
	}
}

type propRun struct {
	t     *testing.T
	seed  uint64
	step  int
	rng   *rand.Rand
	cfg   LogConfig
	opts  StoreOptions
	dir   string
	st    *Store
	l     *Log
	m     *model
	d     SyncDriver
	clock int64
	views []View
}

func newPropRun(t *testing.T, seed uint64) *propRun {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	cfg := testConfig()
	cfg.SegmentBytes = []int64{1024, 2048, 4096, 16384}[rng.IntN(4)]
	cfg.IndexIntervalBytes = []int{0, 100, 1000, 4096}[rng.IntN(4)]
	cfg.SegmentMs = []int64{0, 500, 5000}[rng.IntN(3)]
	cfg.RetentionMs = []int64{-1, 2000, 10000}[rng.IntN(3)]
	cfg.RetentionBytes = []int64{-1, 3000, 20000}[rng.IntN(3)]
	cfg.Preallocate = rng.IntN(2) == 0
	p := &propRun{t: t, seed: seed, rng: rng, cfg: cfg, dir: crashTempDir(t), m: newModel(cfg), clock: 1000}
	if rng.IntN(2) == 0 {
		p.opts.ArchiveDir = crashTempDir(t)
		p.cfg.ArchiveAfter = time.Duration(1+rng.IntN(5)) * time.Second
	}
	p.st = openTestStore(t, p.dir, p.opts)
	l, err := p.st.CreateLog("t", 0, p.cfg)
	p.check(err)
	p.l = l
	return p
}

func (p *propRun) fatalf(format string, args ...any) {
	p.t.Helper()
	p.t.Fatalf("seed %d step %d (config %+v): %s\nreplay: go test ./storage -run TestLogMatchesModel -args -seed=%d",
		p.seed, p.step, p.cfg, fmt.Sprintf(format, args...), p.seed)
}

func (p *propRun) check(err error) {
	p.t.Helper()
	if err != nil {
		p.fatalf("%v", err)
	}
}

func (p *propRun) do() {
	p.t.Helper()
	switch r := p.rng.IntN(100); {
	case r < 50:
		p.append()
	case r < 65:
		p.read()
	case r < 72:
		p.seek()
	case r < 75:
		p.check(rollNow(p.l))
		p.m.roll()
	case r < 80:
		p.check(p.d.Flush(p.l))
	case r < 83:
		p.check(p.l.WriteCheckpoint())
	case r < 90:
		p.retention()
	case r < 95:
		p.reopen(true)
	default:
		p.reopen(false)
	}
	if p.l.LogStart() != p.m.start() || p.l.LogEnd() != p.m.next {
		p.fatalf("log [%d, %d), model [%d, %d) segs %+v", p.l.LogStart(), p.l.LogEnd(), p.m.start(), p.m.next, p.l.Segments(nil))
	}
}

func (p *propRun) append() {
	p.t.Helper()
	var b []byte
	for range 1 + p.rng.IntN(3) {
		p.clock += int64(p.rng.IntN(200)) - 40 // mostly forward, sometimes back
		ts := p.clock
		if p.rng.IntN(10) == 0 {
			ts += int64(p.rng.IntN(5000)) // a producer clock far ahead
		}
		b = append(b, randomBatch(p.rng, 4, 120, ts)...)
	}
	_, err := p.d.Append(p.l, b)
	if int64(len(b)) > p.cfg.SegmentBytes {
		if !errors.Is(err, ErrBatchTooLarge) {
			p.fatalf("append of %d bytes into %d-byte segments: %v", len(b), p.cfg.SegmentBytes, err)
		}
		return
	}
	p.check(err)
	p.m.append(b)
}

func (p *propRun) read() {
	p.t.Helper()
	span := p.m.next - p.m.start() + 3
	off := p.m.start() + p.rng.Uint64N(span) - 1
	if p.m.start() == 0 && off == ^uint64(0) {
		off = 0
	}
	maxBytes := p.rng.IntN(3000)
	want, ok := p.m.read(off, maxBytes)
	var err error
	p.views, err = p.l.Read(off, maxBytes, p.views[:0])
	if !ok {
		if !errors.Is(err, ErrOffsetOutOfRange) {
			p.fatalf("Read(%d) outside [%d, %d]: %v", off, p.m.start(), p.m.next, err)
		}
		return
	}
	p.check(err)
	var got []byte
	for i := range p.views {
		got = append(got, p.views[i].Bytes()...)
	}
	p.views = ReleaseViews(p.views)
	if !bytes.Equal(got, want) {
		p.fatalf("Read(%d, %d): %d bytes, model %d", off, maxBytes, len(got), len(want))
	}
}

func (p *propRun) seek() {
	p.t.Helper()
	ts := p.clock - int64(p.rng.IntN(3000)) + 100
	got, err := p.l.SeekTime(ts)
	p.check(err)
	if want := p.m.seek(ts); got != want {
		p.fatalf("SeekTime(%d) = %d, model %d", ts, got, want)
	}
}

// retention flushes first (only flushed segments are deleted) and lets
// archive moves finish, so the model needs no notion of either.
func (p *propRun) retention() {
	p.t.Helper()
	p.check(p.d.Flush(p.l))
	p.l.bg.Wait()
	now := p.clock + int64(p.rng.IntN(12000))
	p.check(p.l.EnforceRetention(time.UnixMilli(now)))
	p.m.retention(now)
}

func (p *propRun) reopen(clean bool) {
	p.t.Helper()
	if clean {
		p.check(p.l.Close())
		p.check(p.st.Close())
	} else {
		p.st.crash()
	}
	var err error
	p.st, err = OpenStore(p.dir, p.opts)
	p.check(err)
	if p.st.WasClean() != clean {
		p.fatalf("WasClean %v after a clean=%v stop", p.st.WasClean(), clean)
	}
	p.l, err = p.st.OpenExistingLog("t", 0, p.cfg)
	p.check(err)
	p.checkAll()
}

// checkAll compares the whole log and its segments with the model.
func (p *propRun) checkAll() {
	p.t.Helper()
	var want []byte
	for _, b := range p.m.batches {
		want = append(want, b.data...)
	}
	if got := readAllBatches(p.t, p.l, p.l.LogStart()); !bytes.Equal(got, want) {
		p.fatalf("log holds %d bytes, model %d", len(got), len(want))
	}
	segs := p.l.Segments(nil)
	if len(segs) != len(p.m.segs) {
		p.fatalf("%d segments, model %d", len(segs), len(p.m.segs))
	}
	for i, s := range segs {
		ms := p.m.segs[i]
		if s.Base != ms.base || s.Bytes != ms.bytes || (s.Bytes > 0 && s.MaxTimestamp != ms.maxTs) {
			p.fatalf("segment %d: %+v, model %+v", i, s, ms)
		}
	}
}
