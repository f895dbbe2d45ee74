package ring

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestTimeoutFires: a timeout completes with -ETIME no earlier than asked.
// The caller's timespec is overwritten with an hour right after Prepare and
// before Submit: the ring must have kept its own copy.
func TestTimeoutFires(t *testing.T) {
	defer runtime.UnlockOSThread()
	r := newTestRing(t, 8)
	ts := unix.NsecToTimespec(int64(30 * time.Millisecond))
	start := time.Now()
	r.PrepareTimeout(&ts, 0, 1)
	ts = unix.Timespec{Sec: 3600}
	c := collectOne(t, r, 1)
	if elapsed := time.Since(start); c.res != -int32(unix.ETIME) || elapsed < 30*time.Millisecond {
		t.Fatalf("timeout res %d after %v, want -ETIME after >= 30ms", c.res, elapsed)
	}
}

// TestTimeoutCount: a timeout with count 2 completes with res 0 as soon as
// two other operations have completed, long before its time.
func TestTimeoutCount(t *testing.T) {
	defer runtime.UnlockOSThread()
	r := newTestRing(t, 8)
	ts := unix.Timespec{Sec: 60}
	r.PrepareTimeout(&ts, 2, 1)
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	r.PrepareNop(2)
	got := collect(t, r, 1)
	if len(got) != 1 || got[0].ud != 2 {
		t.Fatalf("after one nop: %+v", got)
	}
	r.PrepareNop(3)
	got = collect(t, r, 2)
	var sawTimeout bool
	for _, c := range got {
		if c.ud == 1 {
			sawTimeout = c.res == 0
		}
	}
	if !sawTimeout {
		t.Fatalf("after two nops: %+v, want the timeout with res 0", got)
	}
}

// TestSubmitAndWaitTimeout: waiting with nothing in flight returns nil
// after about the timeout.
func TestSubmitAndWaitTimeout(t *testing.T) {
	defer runtime.UnlockOSThread()
	r := newTestRing(t, 8)
	start := time.Now()
	if err := r.SubmitAndWait(1, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if e := time.Since(start); e < 20*time.Millisecond || e > 2*time.Second {
		t.Fatalf("waited %v for a 20ms timeout", e)
	}
	if n := r.ForEachCQE(func(uint64, int32, uint32) {}); n != 0 {
		t.Fatalf("%d completions from nothing", n)
	}
}

// TestMsgRing: a message from ring A appears on ring B, owned by another
// goroutine blocked in SubmitAndWait with no timeout, with the given user
// data and result; A sees its own completion.
func TestMsgRing(t *testing.T) {
	defer runtime.UnlockOSThread()
	a := newTestRing(t, 8)
	type got struct {
		c   []completion
		err error
	}
	fdc, done := make(chan int), make(chan got)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		b, err := New(8, testOpts)
		if err != nil {
			close(fdc)
			done <- got{err: err}
			return
		}
		defer b.Close()
		fdc <- b.Fd()
		var cs []completion
		err = b.SubmitAndWait(1, 0)
		b.ForEachCQE(func(ud uint64, res int32, flags uint32) { cs = append(cs, completion{ud, res, flags}) })
		done <- got{cs, err}
	}()
	bfd, ok := <-fdc
	if !ok {
		t.Fatal((<-done).err)
	}
	a.PrepareMsgRing(bfd, 42, 0xdead_beef_cafe, 7)
	if c := collectOne(t, a, 7); c.res != 0 {
		t.Fatalf("sender completion res %d", c.res)
	}
	g := <-done
	if g.err != nil || len(g.c) != 1 || g.c[0] != (completion{0xdead_beef_cafe, 42, 0}) {
		t.Fatalf("target ring got %+v, err %v", g.c, g.err)
	}
}

// threadSleeping reports whether thread tid of this process is in state S
// (interruptible sleep), e.g. blocked in io_uring_enter.
func threadSleeping(tid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/stat", tid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'S'
}

// TestWakerWakesWaitingRing: goroutines that see the ring's thread asleep in
// SubmitAndWait call Wake, which ends the wait long before its timeout. Their
// 200 concurrent Wakes coalesce into one eventfd write until Ack, and Wake
// after Ack wakes again (three rounds).
func TestWakerWakesWaitingRing(t *testing.T) {
	defer runtime.UnlockOSThread()
	r := newTestRing(t, 8)
	w, err := NewWaker()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	tid := unix.Gettid()
	for round := 0; round < 3; round++ {
		r.PrepareWakerRead(w, 1)
		if _, err := r.Submit(); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for deadline := time.Now().Add(5 * time.Second); !threadSleeping(tid); {
					if time.Now().After(deadline) {
						break // wake anyway; the ring then returns at once
					}
					runtime.Gosched()
				}
				for i := 0; i < 50; i++ {
					if err := w.Wake(); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		began := time.Now()
		if err := r.SubmitAndWait(1, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		c := collectOne(t, r, 1)
		if time.Since(began) > 5*time.Second || c.res != 8 {
			t.Fatalf("round %d: res %d after %v", round, c.res, time.Since(began))
		}
		wg.Wait()
		if v := binary.LittleEndian.Uint64(w.buf[:]); v != 1 {
			t.Fatalf("round %d: read counter %d, want 1", round, v)
		}
		// All 200 Wakes came before Ack: the eventfd must be empty now.
		pfd := []unix.PollFd{{Fd: int32(w.Fd()), Events: unix.POLLIN}}
		if n, err := unix.Poll(pfd, 0); n != 0 || err != nil {
			t.Fatalf("round %d: eventfd readable after the read (%d, %v): wakes not coalesced", round, n, err)
		}
		w.Ack()
	}
}
