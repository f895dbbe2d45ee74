package storage

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/ringmq/ringmq/proto"
	"golang.org/x/sys/unix"
)

// cutDriver executes writes until the cut: the first k writes happen, then
// (torn) a random prefix of write k+1, and the process "dies": nothing
// after the cut reaches the files. Appends may be completed out of order
// (window > 1): prepared appends wait in a queue and a random one is
// written next.
type cutDriver struct {
	l      *Log
	k      int
	torn   bool
	rng    *rand.Rand
	writes int
	dead   bool
	queue  []AppendOp
	window int
	torned []byte // the bytes of the torn write that reached the file
	tornOp AppendOp
}

// step prepares b (when not nil) and writes queued appends until the
// queue is below the window.
func (c *cutDriver) step(t *testing.T, b []byte) {
	if b != nil {
		op, err := prepareNow(c.l, b)
		if err != nil {
			t.Fatalf("PrepareAppend: %v", err)
		}
		c.queue = append(c.queue, op)
	}
	for !c.dead && len(c.queue) > 0 && (len(c.queue) >= c.window || b == nil) {
		i := c.rng.IntN(len(c.queue))
		op := c.queue[i]
		c.queue = append(c.queue[:i], c.queue[i+1:]...)
		c.write(t, op)
	}
}

func (c *cutDriver) write(t *testing.T, op AppendOp) {
	c.writes++
	buf := op.Buf
	if c.writes > c.k {
		c.dead = true
		if !c.torn || len(buf) < 2 {
			return
		}
		buf = buf[:1+c.rng.IntN(len(buf)-1)]
		c.torned, c.tornOp = buf, op
	}
	if _, err := unix.Pwrite(op.Fd, buf, op.Pos); err != nil {
		t.Fatal(err)
	}
	if !c.dead {
		if err := c.l.Appended(op); err != nil {
			t.Fatal(err)
		}
	}
}

// runUntilCut drives a seeded workload of appends, rolls, flushes and
// checkpoints until the cut and returns what recovery must find: the log
// visible at that moment, plus the whole batches of a torn write that
// starts right at its end, as they are on disk (batches are the unit of
// recovery; an append of several batches is not atomic across a crash, and
// a batch whose missing tail bytes were zeros is whole).
func runUntilCut(t *testing.T, l *Log, c *cutDriver, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 99))
	var sd SyncDriver
	for !c.dead {
		switch r := rng.IntN(100); {
		case r < 3:
			if err := rollNow(l); err != nil {
				t.Fatal(err)
			}
		case r < 8 && len(c.queue) == 0:
			if err := sd.Flush(l); err != nil {
				t.Fatal(err)
			}
			if err := l.WriteCheckpoint(); err != nil {
				t.Fatal(err)
			}
		default:
			n := 1 + rng.IntN(2)
			var b []byte
			for range n {
				b = append(b, randomBatch(rng, 3, 150, int64(rng.IntN(1000)))...)
			}
			c.step(t, b)
		}
	}
	visible := readAllBatches(t, l, l.LogStart())
	if c.tornOp.Base == l.LogEnd() && c.torned != nil {
		// On disk the torn write is its prefix followed by zeros.
		disk := make([]byte, len(c.tornOp.Buf))
		copy(disk, c.torned)
		for rest := disk; ; {
			h, r, err := proto.ValidateBatch(rest)
			if err != nil {
				break
			}
			visible = append(visible, rest[:h.Size()]...)
			rest = r
		}
	}
	return visible
}

func crashAt(t *testing.T, k int, torn bool, window int) {
	cfg := testConfig()
	cfg.SegmentBytes = 4096
	cfg.IndexIntervalBytes = 300
	dir := crashTempDir(t)
	st := openTestStore(t, dir, StoreOptions{})
	l, err := st.CreateLog("t", 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(k)
	c := &cutDriver{l: l, k: k, torn: torn, rng: rand.New(rand.NewPCG(seed, 7)), window: window}
	want := runUntilCut(t, l, c, seed)
	st.crash()

	st = openTestStore(t, dir, StoreOptions{})
	defer st.Close()
	l, err = st.OpenExistingLog("t", 0, cfg)
	if err != nil {
		t.Fatalf("reopen after cut at write %d: %v", k, err)
	}
	if got := readAllBatches(t, l, 0); !bytes.Equal(got, want) {
		t.Fatalf("cut after write %d (torn %v): recovered %d bytes, %d were visible", k, torn, len(got), len(want))
	}
	// The recovered log takes appends, and they survive another crash.
	var d SyncDriver
	more := randomBatch(c.rng, 3, 150, 5)
	mustAppend(t, &d, l, more)
	want = append(want, more...)
	st.crash()
	st = openTestStore(t, dir, StoreOptions{})
	defer st.Close()
	if l, err = st.OpenExistingLog("t", 0, cfg); err != nil {
		t.Fatal(err)
	}
	if got := readAllBatches(t, l, 0); !bytes.Equal(got, want) {
		t.Fatalf("cut after write %d (torn %v), second crash: recovered %d bytes, want %d", k, torn, len(got), len(want))
	}
}

// TestCrashAtEveryWrite cuts the write stream after the k-th write for
// every k of a run of a few hundred writes, with whole and torn last
// writes, in order and out of order, and checks that recovery returns
// exactly the log that was visible at the cut.
func TestCrashAtEveryWrite(t *testing.T) {
	writes := 300
	if testing.Short() {
		writes = 60
	}
	for _, window := range []int{1, 4} {
		for _, torn := range []bool{false, true} {
			t.Run(fmt.Sprintf("window=%d/torn=%v", window, torn), func(t *testing.T) {
				for k := 1; k <= writes; k++ {
					crashAt(t, k, torn, window)
				}
			})
		}
	}
}
