package replica

import (
	"errors"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var errIO = errors.New("input/output error")

// Out-of-order completions on a flush=interval topic: each level is
// released at its own point, and nothing past a gap is.
func TestAcksByLevelOutOfOrderInterval(t *testing.T) {
	d := newDriver(t, intervalConfig(), Offsets{})
	a := d.plan(2, 100, AckLeader) // 0-1
	b := d.plan(3, 100, AckAll)    // 2-4
	c := d.plan(1, 100, AckNone)   // 5
	e := d.plan(1, 100, AckLeader) // 6

	d.r.AppendCompleted(c)
	d.turn()
	d.expectAcks("5:acks=0:ok") // acks=0 at its write completion: no wait for a
	d.r.AppendCompleted(e)
	d.r.AppendCompleted(b)
	d.turn()
	d.expectAcks("") // all wait behind a
	d.expectOffsets(Offsets{})

	d.r.AppendCompleted(a)
	rd := d.turn()
	d.expectAcks("0:acks=1:ok 6:acks=1:ok 2:acks=all:ok") // acks=1 at visibility, then the HW
	d.expectOffsets(Offsets{HighWatermark: 7, LogEnd: 7})
	if !rd.OffsetsChanged || rd.Offsets.LogEnd != 7 {
		t.Fatalf("Ready offsets %+v changed %v, want log end 7", rd.Offsets, rd.OffsetsChanged)
	}
	if rd.Flush {
		t.Fatal("flush=interval planned a flush without a tick")
	}
	if d.r.HasReady() {
		t.Fatal("HasReady after everything was handed out")
	}
}

// flush=sync: acks=1 never waits for the fdatasync, acks=all waits for the
// flush covering it; the HW is the flushed offset.
func TestAcksByLevelSync(t *testing.T) {
	d := newDriver(t, syncConfig(), Offsets{LogStart: 10, Flushed: 10, LogEnd: 10})
	a := d.plan(1, 50, AckAll)    // 10
	b := d.plan(1, 50, AckLeader) // 11
	c := d.plan(1, 50, AckNone)   // 12
	d.r.AppendCompleted(b)
	d.r.AppendCompleted(c)
	d.turn()
	d.expectAcks("12:acks=0:ok")
	if len(d.flushes) != 0 {
		t.Fatalf("flush planned with nothing visible: %v", d.flushes)
	}
	d.r.AppendCompleted(a)
	d.turn()
	d.expectAcks("11:acks=1:ok") // visible; acks=all waits for the flush
	d.expectOffsets(Offsets{LogStart: 10, HighWatermark: 10, Flushed: 10, LogEnd: 13})
	if len(d.flushes) != 1 || d.flushes[0] != 13 {
		t.Fatalf("flushes %v, want one up to 13", d.flushes)
	}
	d.flushDone()
	d.turn()
	d.expectAcks("10:acks=all:ok")
	d.expectOffsets(Offsets{LogStart: 10, HighWatermark: 13, Flushed: 13, LogEnd: 13})
}

// Group commit: every append completed in a turn shares one flush; while
// it is in flight no second one starts; the next covers what came since.
func TestGroupCommitPlanning(t *testing.T) {
	d := newDriver(t, syncConfig(), Offsets{})
	for i := 0; i < 5; i++ {
		d.r.AppendCompleted(d.plan(1, 10, AckAll))
	}
	d.turn()
	if len(d.flushes) != 1 || d.flushes[0] != 5 {
		t.Fatalf("flushes %v, want one up to 5", d.flushes)
	}
	for i := 0; i < 3; i++ {
		d.r.AppendCompleted(d.plan(2, 10, AckAll))
		d.turn()
	}
	if len(d.flushes) != 1 {
		t.Fatalf("flushes %v while one was in flight", d.flushes)
	}
	d.flushDone()
	d.turn()
	d.expectAcks("0:acks=all:ok 1:acks=all:ok 2:acks=all:ok 3:acks=all:ok 4:acks=all:ok")
	if len(d.flushes) != 2 || d.flushes[1] != 11 {
		t.Fatalf("flushes %v, want a second one up to 11", d.flushes)
	}
	d.flushDone()
	d.turn()
	d.expectAcks("5:acks=all:ok 7:acks=all:ok 9:acks=all:ok")
	d.turn()
	if len(d.flushes) != 2 {
		t.Fatalf("flush planned with nothing unflushed: %v", d.flushes)
	}
}

// flush=interval: a flush on the first turn after each interval, only
// when something is unflushed, one at a time; checkpoints follow flushes.
func TestIntervalFlushAndCheckpoint(t *testing.T) {
	d := newDriver(t, intervalConfig(), Offsets{})
	d.tick(1500 * time.Millisecond)
	d.turn()
	if len(d.flushes) != 0 || len(d.ckpts) != 0 {
		t.Fatalf("flush %v / checkpoint %v with nothing written", d.flushes, d.ckpts)
	}
	d.r.AppendCompleted(d.plan(4, 10, AckAll))
	d.turn()
	d.expectAcks("0:acks=all:ok") // HW = log end
	d.tick(500 * time.Millisecond)
	d.turn()
	if len(d.flushes) != 0 {
		t.Fatalf("flushed before the interval: %v", d.flushes)
	}
	if got := d.r.NextDeadline(); !got.Equal(t0.Add(2500 * time.Millisecond)) {
		t.Fatalf("next deadline %v, want t0+2.5s", got.Sub(t0))
	}
	d.tick(500 * time.Millisecond)
	d.turn()
	if len(d.flushes) != 1 || d.flushes[0] != 4 {
		t.Fatalf("flushes %v, want one up to 4", d.flushes)
	}
	d.r.AppendCompleted(d.plan(1, 10, AckLeader))
	d.tick(time.Second)
	d.turn()
	if len(d.flushes) != 1 {
		t.Fatalf("a second flush while one is in flight: %v", d.flushes)
	}
	d.flushDone()
	d.turn() // the due flush starts once the first completed
	if len(d.flushes) != 2 || d.flushes[1] != 5 {
		t.Fatalf("flushes %v, want a second up to 5", d.flushes)
	}
	if len(d.ckpts) != 0 {
		t.Fatalf("checkpoint %v asked before its interval", d.ckpts)
	}
	d.flushDone()
	d.tick(time.Second)
	d.turn()
	if len(d.ckpts) != 1 || d.ckpts[0] != 5 {
		t.Fatalf("checkpoints %v, want one at 5", d.ckpts)
	}
	d.tick(time.Second)
	d.turn()
	if len(d.ckpts) != 1 {
		t.Fatalf("checkpoint asked again with nothing newly flushed: %v", d.ckpts)
	}
}

// A failed write fences: every pending ack fails (each once its write is
// in), nothing at or after the failure becomes visible, appends and
// waiters are refused, no flush starts, until Reset.
func TestFailedWriteFences(t *testing.T) {
	d := newDriver(t, syncConfig(), Offsets{})
	a := d.plan(1, 10, AckAll)    // 0: visible, waits for the flush
	b := d.plan(1, 10, AckLeader) // 1: in flight when 2 fails
	c := d.plan(1, 10, AckAll)    // 2: fails
	e := d.plan(1, 10, AckLeader) // 3: completes before the failure
	f := d.plan(1, 10, AckNone)   // 4: completes after it
	if d.r.Wait(Wait{Token: 99, Offset: 0, MinBytes: 1, Deadline: t0.Add(time.Minute)}) != WakeNone {
		t.Fatal("waiter not registered")
	}
	d.r.AppendCompleted(a)
	d.r.AppendCompleted(e)
	d.turn() // flush up to 1 starts
	d.r.AppendFailed(c, errIO)
	d.turn()
	d.expectAcks("2:acks=all:err 3:acks=1:err 0:acks=all:err")
	d.expectWakes("99:fenced")
	if err := d.r.CheckAppend(AckLeader); !errors.Is(err, ErrFenced) || !strings.Contains(err.Error(), "input/output error") {
		t.Fatalf("CheckAppend on a fenced replica: %v", err)
	}
	if got := d.r.Wait(Wait{Token: 100, Offset: 1, MinBytes: 1, Deadline: t0.Add(time.Minute)}); got != WakeFenced {
		t.Fatalf("Wait on a fenced replica: %v", got)
	}
	if err := d.r.AppendCompleted(b); err != nil {
		t.Fatalf("append before the failure: %v", err)
	}
	if err := d.r.AppendCompleted(f); !errors.Is(err, ErrFenced) {
		t.Fatalf("append after the failure: %v, want ErrFenced", err)
	}
	d.turn()
	d.expectAcks("1:acks=1:err 4:acks=0:err")
	// b became visible (as storage makes it), nothing past the failure did.
	if got := d.r.Offsets().LogEnd; got != 2 {
		t.Fatalf("log end %d, want 2", got)
	}
	if err := d.r.Reset(Offsets{LogEnd: 2}); !errors.Is(err, ErrBusy) {
		t.Fatalf("Reset with the flush in flight: %v", err)
	}
	d.flushDone() // durable after all: the HW may move, acks stay failed
	d.turn()
	d.expectAcks("")
	if len(d.flushes) != 1 {
		t.Fatalf("flush planned on a fenced replica: %v", d.flushes)
	}
	if err := d.r.Reset(Offsets{Flushed: 1, LogEnd: 2}); err != nil {
		t.Fatal(err)
	}
	d.expectOffsets(Offsets{HighWatermark: 1, Flushed: 1, LogEnd: 2})
	g := d.plan(1, 10, AckAll)
	d.r.AppendCompleted(g)
	d.turn()
	d.flushDone()
	d.turn()
	d.expectAcks("2:acks=all:ok")
}

// A failed flush fences too: nothing in flight becomes visible.
func TestFailedFlushFences(t *testing.T) {
	d := newDriver(t, syncConfig(), Offsets{})
	a := d.plan(1, 10, AckAll)
	d.r.AppendCompleted(a)
	d.turn()
	b := d.plan(1, 10, AckLeader)
	d.r.FlushFailed(errIO)
	d.inFlight = false
	d.turn()
	d.expectAcks("0:acks=all:err")
	if err := d.r.AppendCompleted(b); !errors.Is(err, ErrFenced) {
		t.Fatalf("in-flight append after a failed flush: %v", err)
	}
	d.turn()
	d.expectAcks("1:acks=1:err")
	d.expectOffsets(Offsets{LogEnd: 1})
}

// Followers: the HW is the minimum over the in-sync replicas and holds
// while they are fewer than min_insync_replicas.
func TestHighWatermarkFollowers(t *testing.T) {
	cfg := intervalConfig()
	cfg.ID, cfg.MinInsync = 1, 2
	d := newDriver(t, cfg, Offsets{})
	d.r.SetISR([]ID{1, 2, 3})
	a := d.plan(10, 100, AckAll)
	b := d.plan(10, 100, AckLeader)
	d.r.AppendCompleted(a)
	d.r.AppendCompleted(b)
	d.turn()
	d.expectAcks("10:acks=1:ok") // acks=1: visible locally
	if hw := d.r.HighWatermark(); hw != 0 {
		t.Fatalf("HW %d with followers at 0", hw)
	}
	must(t, d.r.FollowerMatch(2, 20))
	must(t, d.r.FollowerMatch(3, 5))
	d.turn()
	d.expectAcks("")
	d.expectOffsets(Offsets{HighWatermark: 5, LogEnd: 20})
	must(t, d.r.FollowerMatch(3, 12))
	d.turn()
	d.expectAcks("0:acks=all:ok")
	if err := d.r.FollowerMatch(3, 21); !errors.Is(err, ErrBadOffsets) {
		t.Fatalf("match past the log end: %v", err)
	}

	d.r.SetISR([]ID{1}) // below min_insync_replicas
	if err := d.r.CheckAppend(AckAll); !errors.Is(err, ErrNotEnoughReplicas) {
		t.Fatalf("acks=all with one in-sync replica of 2: %v", err)
	}
	c := d.plan(5, 100, AckLeader)
	d.r.AppendCompleted(c)
	d.turn()
	d.expectAcks("20:acks=1:ok")
	if hw := d.r.HighWatermark(); hw != 12 {
		t.Fatalf("HW moved to %d with too few in-sync replicas", hw)
	}
	d.r.SetISR([]ID{2}) // 2 has 20: HW = min(25, 20)
	if hw := d.r.HighWatermark(); hw != 20 {
		t.Fatalf("HW %d, want 20", hw)
	}
	d.r.SetISR(nil)
	must(t, d.r.FollowerMatch(2, 25)) // out of the ISR: no effect
	if hw := d.r.HighWatermark(); hw != 20 {
		t.Fatalf("HW %d, want 20 (follower out of the ISR)", hw)
	}
	if got := d.r.ISR(nil); len(got) != 1 || got[0] != 1 {
		t.Fatalf("ISR %v", got)
	}
}

// flush=sync with a follower: the local match is the flushed offset.
func TestHighWatermarkSyncFollower(t *testing.T) {
	d := newDriver(t, syncConfig(), Offsets{})
	d.r.SetISR([]ID{7})
	d.r.AppendCompleted(d.plan(4, 10, AckAll))
	d.turn()
	must(t, d.r.FollowerMatch(7, 4))
	if hw := d.r.HighWatermark(); hw != 0 {
		t.Fatalf("HW %d before the local flush", hw)
	}
	d.flushDone()
	d.turn()
	d.expectAcks("0:acks=all:ok")
	d.expectOffsets(Offsets{HighWatermark: 4, Flushed: 4, LogEnd: 4})
}

func TestWaiters(t *testing.T) {
	d := newDriver(t, syncConfig(), Offsets{LogStart: 100, Flushed: 100, LogEnd: 100})
	dl := t0.Add(time.Second)
	for _, w := range []struct {
		w    Wait
		want WakeReason
	}{
		{Wait{Token: 1, Offset: 99, Seen: 100, MinBytes: 1, Deadline: dl}, WakeOutOfRange}, // below log start
		{Wait{Token: 2, Offset: 101, Seen: 100, MinBytes: 1, Deadline: dl}, WakeOutOfRange},
		{Wait{Token: 3, Offset: 100, Seen: 100, MinBytes: 1, Deadline: t0}, WakeDeadline},
		{Wait{Token: 4, Offset: 100, Seen: 100, MinBytes: 0, Deadline: dl}, WakeData},
		{Wait{Token: 5, Offset: 100, Seen: 100, MinBytes: 150, Deadline: dl}, WakeNone},
		{Wait{Token: 6, Offset: 100, Seen: 100, MinBytes: 1, Deadline: dl}, WakeNone},
		{Wait{Token: 7, Offset: 100, Seen: 100, MinBytes: 1, Deadline: t0.Add(time.Hour)}, WakeNone},
	} {
		if got := d.r.Wait(w.w); got != w.want {
			t.Fatalf("Wait(%+v) = %v, want %v", w.w, got, w.want)
		}
	}
	if !d.r.CancelWait(7) || d.r.CancelWait(7) {
		t.Fatal("CancelWait")
	}
	d.r.AppendCompleted(d.plan(1, 100, AckLeader))
	d.turn()
	d.expectWakes("") // visible but above the HW (flush=sync)
	d.flushDone()
	d.turn()
	d.expectWakes("6:data")
	d.r.AppendCompleted(d.plan(1, 100, AckLeader))
	d.turn()
	d.flushDone()
	d.turn()
	d.expectWakes("5:data") // 200 bytes ≥ 150; 6 is not woken again
	if got := d.r.Wait(Wait{Token: 8, Offset: 102, Seen: 102, MinBytes: 1, Deadline: dl}); got != WakeNone {
		t.Fatal(got)
	}
	d.tick(999 * time.Millisecond)
	d.turn()
	d.expectWakes("")
	if got := d.r.NextDeadline(); !got.Equal(dl) {
		t.Fatalf("next deadline %v, want the waiter's", got.Sub(t0))
	}
	d.tick(time.Millisecond)
	d.turn()
	d.expectWakes("8:deadline")
	d.tick(time.Second)
	d.turn()
	d.expectWakes("")
	if d.r.Waiters() != 0 {
		t.Fatalf("%d waiters left", d.r.Waiters())
	}
}

// A fetch below the log start is answered, not parked: registering it
// again and again never produces a wake-up (the reactor once re-parked and
// re-woke such a fetch until its max_wait).
func TestWaiterBelowLogStartNeverSpins(t *testing.T) {
	d := newDriver(t, intervalConfig(), Offsets{})
	for i := 0; i < 3; i++ {
		d.r.AppendCompleted(d.plan(10, 100, AckLeader))
	}
	d.r.LogStartMoved(10)
	for i := 0; i < 1000; i++ {
		if got := d.r.Wait(Wait{Token: 1, Offset: 5, MinBytes: 1, Deadline: t0.Add(time.Minute)}); got != WakeOutOfRange {
			t.Fatalf("Wait below log start: %v", got)
		}
	}
	// Parked at 12, then retention passes it: one wake-up, out of range.
	if got := d.r.Wait(Wait{Token: 2, Offset: 12, Seen: 30, MinBytes: 1000, Deadline: t0.Add(time.Minute)}); got != WakeNone {
		t.Fatal(got)
	}
	d.r.LogStartMoved(20)
	d.r.AppendCompleted(d.plan(10, 5000, AckLeader))
	d.turn()
	d.expectWakes("2:out-of-range")
	if d.r.Waiters() != 0 || d.r.HasReady() {
		t.Fatal("waiter still registered")
	}
	d.expectOffsets(Offsets{LogStart: 20, HighWatermark: 40, Flushed: 20, LogEnd: 40})
}

// A fetch whose read saw an older HW than the replica's now (read on one
// reactor, registered later through a mailbox) is told to read again at
// once; one that saw the current HW waits.
func TestWaiterSawOlderHighWatermark(t *testing.T) {
	d := newDriver(t, intervalConfig(), Offsets{})
	d.r.AppendCompleted(d.plan(5, 10, AckLeader)) // the read saw HW 5
	d.r.AppendCompleted(d.plan(1, 10, AckLeader)) // then this arrived
	w := Wait{Token: 1, Offset: 5, Seen: 5, MinBytes: 1, Deadline: t0.Add(time.Minute)}
	if got := d.r.Wait(w); got != WakeData {
		t.Fatalf("Wait with an old HW: %v, want data", got)
	}
	w.Offset, w.Seen = 6, 6
	if got := d.r.Wait(w); got != WakeNone {
		t.Fatalf("Wait with the current HW: %v", got)
	}
	d.turn()
	d.expectWakes("")
}

// A waiter at an offset between the HW and the log end counts only the
// bytes from its offset on.
func TestWaiterAboveHighWatermark(t *testing.T) {
	d := newDriver(t, syncConfig(), Offsets{})
	a := d.plan(1, 1000, AckLeader)
	b := d.plan(1, 10, AckLeader)
	d.r.AppendCompleted(a)
	d.r.AppendCompleted(b)
	if got := d.r.Wait(Wait{Token: 1, Offset: 1, MinBytes: 11, Deadline: t0.Add(time.Minute)}); got != WakeNone {
		t.Fatal(got)
	}
	d.turn()
	d.flushDone() // HW 2: 1010 bytes readable, but only 10 at offset 1
	d.turn()
	d.expectWakes("")
	d.r.AppendCompleted(d.plan(1, 1, AckLeader))
	d.turn()
	d.flushDone()
	d.turn()
	d.expectWakes("1:data")
}

func TestResetWakesWaiters(t *testing.T) {
	d := newDriver(t, intervalConfig(), Offsets{})
	d.r.AppendCompleted(d.plan(3, 10, AckLeader))
	d.r.Wait(Wait{Token: 1, Offset: 3, Seen: 3, MinBytes: 1, Deadline: t0.Add(time.Minute)})
	must(t, d.r.Reset(Offsets{LogEnd: 2}))
	d.turn()
	d.expectWakes("1:reset")
	d.expectOffsets(Offsets{HighWatermark: 2, LogEnd: 2})
}

func TestContractViolationsPanic(t *testing.T) {
	d := newDriver(t, syncConfig(), Offsets{})
	a := d.plan(1, 10, AckLeader)
	mustPanicBUG(t, func() { d.r.AppendPlanned(Append{Base: 5, Last: 5, Bytes: 1}) }) // gap
	mustPanicBUG(t, func() { d.r.AppendCompleted(7) })                                // unknown
	mustPanicBUG(t, func() { d.r.AppendPlanned(Append{Base: 1, Last: 1, Bytes: 1, Level: 2}) })
	d.r.AppendCompleted(a)
	d.turn()
	mustPanicBUG(t, func() { d.r.FlushCompleted(0) }) // not what was planned
	mustPanicBUG(t, func() { d.r.LogStartMoved(1) })  // past the HW (0: not flushed)
	d.r.Ready()
	mustPanicBUG(t, func() { d.r.Ready() })
	d.r.Advance()
	mustPanicBUG(t, func() { d.r.Advance() })
	if err := d.r.CheckAppend(Level(3)); !errors.Is(err, ErrBadLevel) {
		t.Fatal(err)
	}
	for _, cfg := range []Config{{}, {MinInsync: -1, Sync: true, CheckpointInterval: 1}, {Sync: true}} {
		if _, err := New(cfg, Offsets{}); !errors.Is(err, ErrBadConfig) {
			t.Fatalf("New(%+v): %v", cfg, err)
		}
	}
	if _, err := New(syncConfig(), Offsets{Flushed: 5, LogEnd: 4}); !errors.Is(err, ErrBadOffsets) {
		t.Fatal(err)
	}
}

// The offsets' invariant is checked: corrupt them and the next input
// panics.
func TestInvariantChecked(t *testing.T) {
	d := newDriver(t, intervalConfig(), Offsets{})
	d.r.AppendCompleted(d.plan(2, 10, AckLeader))
	d.r.off.HighWatermark = 3 // past the log end
	mustPanicBUG(t, func() { d.r.Tick(d.now); d.r.SetISR(nil) })
}

// replica sees offsets and completions, never files: no I/O package and
// nothing of ours among its imports.
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"errors": true, "fmt": true, "math": true, "time": true,
		// the producer snapshot codec (producer_snapshot.go): no I/O
		"encoding/binary": true, "hash/crc32": true, "slices": true}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pf, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range pf.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !allowed[path] {
				t.Errorf("%s imports %q", f, path)
			}
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A flush storage cannot plan yet (a rolled segment is being renamed into
// place) is deferred, not failed: nothing is fenced, acks=all waits, and
// the next Ready asks for the flush again, covering what came meanwhile;
// with flush=interval it stays due until it runs.
func TestFlushDeferred(t *testing.T) {
	d := newDriver(t, syncConfig(), Offsets{})
	d.r.AppendCompleted(d.plan(2, 10, AckAll))
	d.turn()
	d.r.FlushDeferred()
	d.inFlight = false
	d.r.AppendCompleted(d.plan(1, 10, AckAll))
	d.turn()
	d.expectAcks("")
	if len(d.flushes) != 2 || d.flushes[1] != 3 {
		t.Fatalf("flushes %v, want a second one up to 3 after the deferral", d.flushes)
	}
	d.flushDone()
	d.turn()
	d.expectAcks("0:acks=all:ok 2:acks=all:ok")
	d.expectOffsets(Offsets{HighWatermark: 3, Flushed: 3, LogEnd: 3})

	d = newDriver(t, intervalConfig(), Offsets{})
	d.r.AppendCompleted(d.plan(1, 10, AckLeader))
	d.tick(time.Second)
	d.turn()
	d.r.FlushDeferred()
	d.inFlight = false
	d.turn()
	if len(d.flushes) != 2 || d.flushes[1] != 1 {
		t.Fatalf("interval flushes %v, want the deferred one asked for again", d.flushes)
	}
	mustPanicBUG(t, func() { newDriver(t, syncConfig(), Offsets{}).r.FlushDeferred() })
}
