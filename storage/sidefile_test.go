package storage

import (
	"bytes"
	"errors"
	"io/fs"
	"math/rand/v2"
	"testing"

	"github.com/ringmq/ringmq/proto"
)

// WalkBatchHeaders visits every batch from an offset to the log end, across
// segments, and nothing else; from inside a batch starts with that batch.
func TestWalkBatchHeaders(t *testing.T) {
	_, l := createTestLog(t, testConfig()) // 16 KiB segments: the walk crosses rolls
	d := &SyncDriver{}
	rng := rand.New(rand.NewPCG(1, 2))
	var bases []uint64
	for range 200 {
		op := mustAppend(t, d, l, randomBatch(rng, 5, 300, 1_700_000_000_000))
		bases = append(bases, op.Base)
	}
	if len(l.Segments(nil)) < 3 {
		t.Fatalf("%d segments: the walk should cross rolls", len(l.Segments(nil)))
	}
	for _, from := range []uint64{0, bases[17], bases[17] + 1, bases[199], l.LogEnd()} {
		var got []uint64
		err := l.WalkBatchHeaders(from, func(h *proto.BatchHeader) error {
			got = append(got, h.BaseOffset)
			return nil
		})
		if err != nil {
			t.Fatalf("walk from %d: %v", from, err)
		}
		var want []uint64
		for i, b := range bases {
			next := l.LogEnd()
			if i+1 < len(bases) {
				next = bases[i+1]
			}
			if next > from {
				want = append(want, b)
			}
		}
		if len(got) != len(want) || (len(got) > 0 && (got[0] != want[0] || got[len(got)-1] != want[len(want)-1])) {
			t.Fatalf("walk from %d: %d batches %v..., want %d", from, len(got), got[:min(3, len(got))], len(want))
		}
	}
	stop := errors.New("stop")
	n := 0
	if err := l.WalkBatchHeaders(0, func(*proto.BatchHeader) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("walk ended by fn: %v after %d", err, n)
	}
}

// WriteFileAsync replaces a side file on the worker, keeping the previous
// one under prev; Close waits for it.
func TestWriteFileAsync(t *testing.T) {
	st, l := createTestLog(t, testConfig())
	if _, err := l.ReadFile("side"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	l.WriteFileAsync("side", "side.prev", []byte("one"))
	l.WriteFileAsync("side", "side.prev", []byte("two"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := st.OpenLog("t", 0, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"side": "two", "side.prev": "one"} {
		if got, err := l.ReadFile(name); err != nil || !bytes.Equal(got, []byte(want)) {
			t.Fatalf("%s: %q %v, want %q", name, got, err, want)
		}
	}
	if err := st.WriteFile("store-side", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if got, err := st.ReadFile("store-side"); err != nil || string(got) != "x" {
		t.Fatalf("store file: %q %v", got, err)
	}
}
