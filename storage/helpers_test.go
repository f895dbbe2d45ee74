package storage

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/ringmq/ringmq/proto"
	"golang.org/x/sys/unix"
)

// testConfig is a small-segment configuration that exercises rolls and
// sparse indexes with little data.
func testConfig() LogConfig {
	c := DefaultLogConfig()
	c.SegmentBytes = 16 << 10
	c.SegmentMs = 0
	c.IndexIntervalBytes = 512
	c.RetentionMs = -1
	c.RetentionBytes = -1
	c.Preallocate = true // the zero-fill path; the default is off
	return c
}

func openTestStore(t testing.TB, dir string, opts StoreOptions) *Store {
	t.Helper()
	st, err := OpenStore(dir, opts)
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	return st
}

func createTestLog(t testing.TB, cfg LogConfig) (*Store, *Log) {
	t.Helper()
	st := openTestStore(t, t.TempDir(), StoreOptions{})
	l, err := st.CreateLog("t", 0, cfg)
	if err != nil {
		t.Fatalf("CreateLog: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st, l
}

// crash drops a store and its logs the way a killed process would: no
// flush, no checkpoint, no marker (the page cache keeps what was written).
func (s *Store) crash() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.opens.Wait()
	s.mu.Lock()
	logs := s.logs
	s.logs = map[string]*Log{}
	s.mu.Unlock()
	for _, l := range logs {
		l.releaseAll()
		l.closed = true
	}
	s.worker.stop()
	s.roller.stop()
	closeFd(s.fs, s.lockFd)
}

// batchSpec describes a test batch's records.
type batchSpec struct {
	ts     []int64 // one timestamp per record
	values [][]byte
}

func makeBatch(spec batchSpec) []byte {
	var b proto.BatchBuilder
	b.Reset(nil)
	for i, ts := range spec.ts {
		b.Append(ts, []byte(fmt.Sprintf("k%d", i)), spec.values[i], nil)
	}
	return bytes.Clone(b.Finish())
}

// randomBatch makes a batch of 1-maxRecords records with values up to
// maxValue bytes and timestamps around ts.
func randomBatch(rng *rand.Rand, maxRecords, maxValue int, ts int64) []byte {
	n := 1 + rng.IntN(maxRecords)
	spec := batchSpec{}
	for range n {
		spec.ts = append(spec.ts, ts+int64(rng.IntN(100))-20)
		v := make([]byte, rng.IntN(maxValue+1))
		for i := range v {
			v[i] = byte(rng.Uint32())
		}
		spec.values = append(spec.values, v)
	}
	return makeBatch(spec)
}

// readAllBatches reads [from, End) in small steps and returns the bytes.
func readAllBatches(t testing.TB, l *Log, from uint64) []byte {
	t.Helper()
	var out []byte
	var views []View
	for off := from; off < l.LogEnd(); {
		var err error
		views, err = l.Read(off, 3000, views[:0])
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		if len(views) == 0 {
			t.Fatalf("Read(%d) returned nothing before end %d", off, l.LogEnd())
		}
		for i := range views {
			b := views[i].Bytes()
			out = append(out, b...)
			off = lastNext(t, b)
		}
		views = ReleaseViews(views)
	}
	return out
}

// lastNext walks whole batches in b and returns the offset after the last.
func lastNext(t testing.TB, b []byte) uint64 {
	t.Helper()
	var next uint64
	for len(b) > 0 {
		h, rest, err := proto.ValidateBatch(b)
		if err != nil {
			t.Fatalf("view holds an invalid batch: %v", err)
		}
		next, b = h.NextOffset(), rest
	}
	return next
}

func mustAppend(t testing.TB, d *SyncDriver, l *Log, b []byte) AppendOp {
	t.Helper()
	op, err := d.Append(l, b)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return op
}

func isCorrupt(err error) bool { return errors.Is(err, ErrCorrupt) }

// crashTempDir returns a temporary directory for tests that open and
// crash stores hundreds of times. They simulate a killed process (the page
// cache survives), so durability of the file system does not matter, and
// on tmpfs (/dev/shm) file creation and fsync cost microseconds instead of
// milliseconds. Elsewhere it is t.TempDir().
func crashTempDir(t testing.TB) string {
	t.Helper()
	var fs unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &fs); err != nil || fs.Type != unix.TMPFS_MAGIC {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("/dev/shm", "ringmq-storage-test-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// prepareNow is PrepareAppend for a test driving the log on its own
// goroutine: when the next segment is not ready it waits for the roll
// lane and tries again.
func prepareNow(l *Log, b []byte) (AppendOp, error) {
	for {
		op, err := l.PrepareAppend(b)
		if !errors.Is(err, ErrRollPending) {
			return op, err
		}
		l.WaitBackground()
	}
}

// rollNow is Roll, waiting for the roll lane like prepareNow.
func rollNow(l *Log) error {
	for {
		err := l.Roll()
		if !errors.Is(err, ErrRollPending) {
			return err
		}
		l.WaitBackground()
	}
}
