package storage

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ringmq/ringmq/proto"
)

// leaderBatch is a batch as a leader stored it: base offset and epoch set.
func leaderBatch(rng *rand.Rand, base uint64, epoch int32) []byte {
	b := randomBatch(rng, 4, 200, 1000+int64(base))
	proto.SetBaseOffset(b, base)
	proto.SetLeaderEpoch(b, epoch)
	return b
}

func batchNext(t *testing.T, b []byte) uint64 { return lastNext(t, b) }

// A replicated append keeps the leader's offsets and epochs; one that does
// not continue the log is refused with a clear error and changes nothing.
func TestAppendReplicatedKeepsOffsets(t *testing.T) {
	_, l := createTestLog(t, testConfig())
	var d SyncDriver
	rng := rand.New(rand.NewPCG(1, 2))
	a := leaderBatch(rng, 0, 3)
	b := leaderBatch(rng, batchNext(t, a), 5)
	both := append(bytes.Clone(a), b...)
	if _, err := d.AppendReplicated(l, both); err != nil {
		t.Fatal(err)
	}
	if got := readAllBatches(t, l, 0); !bytes.Equal(got, both) {
		t.Fatal("replicated batches changed on the way to the log")
	}
	end := l.LogEnd()
	for _, tc := range []struct {
		b    []byte
		want error
	}{
		{leaderBatch(rng, end+1, 5), ErrNotLogEnd},
		{leaderBatch(rng, end-1, 5), ErrNotLogEnd},
		{leaderBatch(rng, end, 4), ErrEpochOrder},
		{append(leaderBatch(rng, end, 5), leaderBatch(rng, end+100, 5)...), ErrNotLogEnd},
	} {
		if _, err := l.AppendReplicated(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("AppendReplicated: %v, want %v", err, tc.want)
		}
	}
	if l.LogEnd() != end || l.next != end {
		t.Fatalf("refused appends moved the log: end %d next %d, want %d", l.LogEnd(), l.next, end)
	}
	if got := l.LeaderEpochs(nil); !slices.Equal(got, []EpochEntry{{3, 0}, {5, batchNext(t, a)}}) {
		t.Fatalf("epochs %v", got)
	}
}

// PrepareAppend stamps the log's leader epoch; epochs only grow.
func TestSetLeaderEpochStamps(t *testing.T) {
	_, l := createTestLog(t, testConfig())
	var d SyncDriver
	rng := rand.New(rand.NewPCG(3, 4))
	mustAppend(t, &d, l, randomBatch(rng, 3, 50, 1000))
	must(t, l.SetLeaderEpoch(7))
	op := mustAppend(t, &d, l, randomBatch(rng, 3, 50, 1000))
	if h, _ := proto.ParseBatchHeader(op.Buf); h.LeaderEpoch != 7 {
		t.Fatalf("stamped epoch %d, want 7", h.LeaderEpoch)
	}
	if err := l.SetLeaderEpoch(6); err == nil {
		t.Fatal("an older epoch was accepted")
	}
	if got := l.LeaderEpochs(nil); !slices.Equal(got, []EpochEntry{{0, 0}, {7, op.Base}}) {
		t.Fatalf("epochs %v", got)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// truncModel appends random batches over several segments with growing
// epochs and remembers each batch.
type truncModel struct {
	t       *testing.T
	l       *Log
	d       SyncDriver
	rng     *rand.Rand
	batches [][]byte
	epoch   int32
}

func (m *truncModel) append(n int) {
	for range n {
		if m.rng.IntN(4) == 0 {
			m.epoch++
		}
		b := leaderBatch(m.rng, m.l.LogEnd(), m.epoch)
		if _, err := m.d.AppendReplicated(m.l, b); err != nil {
			m.t.Fatal(err)
		}
		m.batches = append(m.batches, b)
	}
}

// cut drops the model's batches at or after offset.
func (m *truncModel) cut(offset uint64) {
	k := 0
	for k < len(m.batches) && batchNext(m.t, m.batches[k]) <= offset {
		k++
	}
	m.batches = m.batches[:k]
	if m.epoch > 0 && len(m.batches) > 0 {
		h, _ := proto.ParseBatchHeader(m.batches[len(m.batches)-1])
		m.epoch = h.LeaderEpoch
	}
}

func (m *truncModel) check(what string) {
	m.t.Helper()
	want := bytes.Join(m.batches, nil)
	if got := readAllBatches(m.t, m.l, m.l.LogStart()); !bytes.Equal(got, want) {
		m.t.Fatalf("%s: log holds %d bytes, model %d", what, len(got), len(want))
	}
	var c []EpochEntry
	for _, b := range m.batches {
		h, _ := proto.ParseBatchHeader(b)
		if len(c) == 0 || h.LeaderEpoch > c[len(c)-1].Epoch {
			c = append(c, EpochEntry{h.LeaderEpoch, h.BaseOffset})
		}
	}
	if got := m.l.LeaderEpochs(nil); !slices.Equal(got, c) {
		m.t.Fatalf("%s: epochs %v, want %v", what, got, c)
	}
}

// TruncateTo at every kind of place (inside the active segment, at a
// segment's base, inside a sealed one, the whole log), then appends, a
// flush, and a reopen: the log, its indexes and its epochs are the model's.
func TestTruncateTo(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 4096
	cfg.IndexIntervalBytes = 200
	dir := t.TempDir()
	st := openTestStore(t, dir, StoreOptions{})
	l, err := st.CreateLog("t", 0, cfg)
	must(t, err)
	m := &truncModel{t: t, l: l, rng: rand.New(rand.NewPCG(5, 6))}
	pick := func(where string) uint64 {
		segs := l.Segments(nil)
		switch where {
		case "active":
			last := segs[len(segs)-1]
			for _, b := range m.batches {
				if h, _ := proto.ParseBatchHeader(b); h.BaseOffset > last.Base {
					return h.BaseOffset
				}
			}
			return last.Base
		case "segment base":
			return segs[len(segs)-2].Base
		case "sealed":
			base := segs[len(segs)-3].Base
			for _, b := range m.batches {
				if h, _ := proto.ParseBatchHeader(b); h.BaseOffset > base {
					return h.BaseOffset
				}
			}
		}
		return l.LogStart()
	}
	for round, where := range []string{"active", "segment base", "sealed", "active", "all"} {
		m.append(60)
		must(t, m.d.Flush(l))
		if len(l.Segments(nil)) < 3 {
			t.Fatalf("round %d: only %d segments", round, len(l.Segments(nil)))
		}
		off := pick(where)
		// a View past a cut in the active segment stays readable (zeros
		// after the punch)
		views, err := l.Read(off, 1<<20, nil)
		must(t, err)
		must(t, l.TruncateTo(off))
		if where == "active" {
			_ = views[0].Bytes()[len(views[0].Bytes())-1]
		}
		views = ReleaseViews(views)
		m.cut(off)
		if l.LogEnd() != off || l.FlushedOffset() > off {
			t.Fatalf("%s: end %d flushed %d after TruncateTo(%d)", where, l.LogEnd(), l.FlushedOffset(), off)
		}
		m.check("after truncating " + where)
		m.append(20)
		m.check("appends after truncating " + where)
		must(t, m.d.Flush(l))
		// an unclean reopen (page cache kept, no marker)
		st.crash()
		st = openTestStore(t, dir, StoreOptions{})
		l, err = st.OpenLog("t", 0, cfg)
		must(t, err)
		m.l = l
		if c := l.Corruptions(nil); len(c) > 0 {
			t.Fatalf("%s: reopen found damage: %v", where, c[0].String())
		}
		m.check("reopened after truncating " + where)
	}
	if err := l.TruncateTo(l.LogEnd() + 1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("past the end: %v", err)
	}
	m.append(3)
	if len(m.batches) > 1 {
		h, _ := proto.ParseBatchHeader(m.batches[len(m.batches)-1])
		if h.LastOffsetDelta > 0 {
			if err := l.TruncateTo(h.BaseOffset + 1); !errors.Is(err, ErrOffsetOutOfRange) {
				t.Fatalf("inside a batch: %v", err)
			}
		}
	}
	st.Close()
}

// The leader-epoch checkpoint: golden encoding, damage detected.
func TestEpochCheckpointGolden(t *testing.T) {
	path := filepath.Join("testdata", "leader-epoch-checkpoint-v1.hex")
	c := EpochCheckpoint{End: 123456789, Entries: []EpochEntry{{0, 0}, {3, 4711}, {9, 123000000}}}
	enc := AppendEpochCheckpoint(nil, &c)
	if *rewrite {
		var sb bytes.Buffer
		sb.WriteString("# Leader-epoch checkpoint version 1, written by AppendEpochCheckpoint; regenerate with: go test ./storage -run Golden -args -rewrite\n")
		field := func(n int, name string) {
			sb.WriteString(padHex(enc[:n]) + " # " + name + "\n")
			enc = enc[n:]
		}
		field(4, "magic RMQE")
		field(1, "version")
		field(3, "reserved")
		field(8, "end offset")
		field(4, "entry count")
		for range c.Entries {
			field(4, "epoch")
			field(8, "start offset")
		}
		field(4, "crc32c")
		must(t, os.WriteFile(path, sb.Bytes(), 0o644))
		enc = AppendEpochCheckpoint(nil, &c)
	}
	golden := readHex(t, path)
	if !bytes.Equal(enc, golden) {
		t.Fatalf("encoding changed:\n got %x\nwant %x", enc, golden)
	}
	got, rest, err := ParseEpochCheckpoint(append(bytes.Clone(golden), 7))
	if err != nil || got.End != c.End || !slices.Equal(got.Entries, c.Entries) || !bytes.Equal(rest, []byte{7}) {
		t.Fatalf("ParseEpochCheckpoint(golden) = %+v, %x, %v", got, rest, err)
	}
	for i := range golden {
		bad := bytes.Clone(golden)
		bad[i] ^= 0x10
		if _, _, err := ParseEpochCheckpoint(bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	for n := range len(golden) {
		if _, _, err := ParseEpochCheckpoint(golden[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut to %d bytes: %v", n, err)
		}
	}
	// entries out of order are damage, even with a good CRC
	bad := AppendEpochCheckpoint(nil, &EpochCheckpoint{End: 10, Entries: []EpochEntry{{4, 0}, {2, 5}}})
	if _, _, err := ParseEpochCheckpoint(bad); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("epochs going back: %v", err)
	}
}

func padHex(b []byte) string {
	s := make([]byte, 0, 40)
	const digits = "0123456789abcdef"
	for _, c := range b {
		s = append(s, digits[c>>4], digits[c&15])
	}
	for len(s) < 40 {
		s = append(s, ' ')
	}
	return string(s)
}

// The cache is rebuilt from batch headers without the file, kept from the
// file below its end, and the file is rewritten when it describes more
// than the recovered log.
func TestEpochCacheRebuiltAtOpen(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 4096
	dir := t.TempDir()
	st := openTestStore(t, dir, StoreOptions{})
	l, err := st.CreateLog("t", 0, cfg)
	must(t, err)
	m := &truncModel{t: t, l: l, rng: rand.New(rand.NewPCG(7, 8))}
	m.append(80)
	must(t, m.d.Flush(l))
	want := l.LeaderEpochs(nil)
	if len(want) < 3 {
		t.Fatalf("only %d epochs", len(want))
	}
	reopen := func() {
		st.crash()
		st = openTestStore(t, dir, StoreOptions{})
		l, err = st.OpenLog("t", 0, cfg)
		must(t, err)
		m.l = l
	}
	path := filepath.Join(l.Dir(), epochsName)
	reopen() // no file: rebuilt from every header
	if got := l.LeaderEpochs(nil); !slices.Equal(got, want) {
		t.Fatalf("rebuilt %v, want %v", got, want)
	}
	l.WriteEpochsAsync()
	l.ckpt.Wait()
	m.append(30) // past the file's end: from headers
	must(t, m.d.Flush(l))
	reopen()
	m.check("file + headers")
	// a file that says more than the log: a lie below its end would be
	// kept, so open must rewrite it; damage it and check it is ignored
	must(t, os.WriteFile(path, []byte("garbage"), 0o644))
	reopen()
	m.check("damaged file")
	c := EpochCheckpoint{End: l.LogEnd() + 1000, Entries: append(l.LeaderEpochs(nil), EpochEntry{Epoch: 999, Start: l.LogEnd() + 10})}
	must(t, writeEpochs(l.fs, l.Dir(), &c))
	reopen()
	m.check("file past the log end")
	b, err := os.ReadFile(path)
	must(t, err)
	got, _, err := ParseEpochCheckpoint(b)
	if err != nil || got.End != l.LogEnd() {
		t.Fatalf("file not rewritten to the log end %d: %+v %v", l.LogEnd(), got, err)
	}
	st.Close()
}
