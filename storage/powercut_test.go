package storage

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/storage/metalog"
	"github.com/ringmq/ringmq/storage/vfs"
)

var crashLong = flag.Bool("crash.long", false, "run the power-cut tests with many more seeds and steps")

// Power-cut tests: storage and metalog run on a vfs.Mem that loses or
// tears, at each crash, everything not made durable (see vfs.Mem). A
// seeded workload creates and deletes topics (partition directories plus
// their metadata records), appends, flushes, rolls, checkpoints, enforces
// retention and commits offsets; crashes cut it, and after each the store
// and the metadata are recovered and checked:
//
//   - every partition opens (recovery succeeds) and reports no damage;
//   - it holds exactly the model's batches over [LogStart, LogEnd), in
//     order and once, with LogStart no later than the model's (retention
//     not yet durable may come back) and LogEnd at least the flushed
//     offset acknowledged before the crash;
//   - the metadata is the acknowledged (synced) history plus a prefix of
//     the writes after it: no acknowledged topic or commit is lost.
//
// Everything is deterministic per seed (background jobs are waited for
// after each step). Replay one seed with
//
//	go test ./storage -run 'TestPowerCut' -args -seed=N
func TestPowerCut(t *testing.T) {
	seeds, steps, cuts := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 400, 10
	if *crashLong {
		seeds, steps, cuts = []uint64{uint64(time.Now().UnixNano())}, 1500, 15
		for i := range 200 {
			seeds = append(seeds, uint64(1000+i))
		}
	}
	if *seedFlag != 0 {
		seeds = []uint64{*seedFlag}
	}
	total := 0
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { total += runPowerCut(t, seed, steps, cuts) })
	}
	t.Logf("%d seeds, %d crash points", len(seeds), total)
}

// powerCutRegressions are seeds of the long mode (1,500 steps, 15 cuts)
// that once failed, each with what it found. They run in every test run.
var powerCutRegressions = []struct {
	seed  uint64
	found string
}{
	{1004, "reported failing by the long mode; not reproduced here (passes 20 of 20 runs on the code before the 1043 fix)"},
	{1181, "reported failing by the long mode; not reproduced here (passes 20 of 20 runs on the code before the 1043 fix)"},
	{1043, "an archived segment whose unlink was not durable came back before a gap the recovery point had passed; recovery took the gap for a torn tail and dropped the flushed segments after it"},
	{1341, "sealing that no longer fdatasynced the index files lost flushed records"},
	{1357, "same as 1341"},
	{1129, "sealing that cut the .log without fdatasyncing it: the cut became durable and its data did not, and recovery took the cut segment for a complete one"},
	{1297, "retention's deletes of an archived segment and the next data-directory segment reached the disk out of order; the archived one came back before a gap the recovery point had not reached, and recovery deleted the flushed segments after the gap (failed on the code before the off-thread roll; the workload has changed since, so the seed no longer reaches it: TestPowerCutRetentionAcrossArchiveKeepsASuffix does)"},
	{1040, "same cause as 1297 with the recovery point past the gap: damage reported in the archive directory (failed on the replication code before it had the 1043 recovery fix)"},
	{1134, "same as 1040"},
	{2526, "a torn tail whose lost write was only the last 7 bytes of the file, alone in their sector, was not taken for a lost write (LostSector wanted 8 zero bytes): recovery reported damage in a sealed, unflushed segment and served the next segment after the gap"},
	{2548, "same as 2526"},
	{4414, "a metalog record header straddling a sector boundary lost its first byte (the earlier sector's write) and kept the rest: read as length 0, reported as corruption instead of a torn tail"},
}

func TestPowerCutRegressions(t *testing.T) {
	for _, c := range powerCutRegressions {
		t.Run(fmt.Sprint(c.seed), func(t *testing.T) { runPowerCut(t, c.seed, 1500, 15) })
	}
}

// runPowerCut runs one seed's workload of steps steps with cuts crashes
// at random steps and returns how many crashes ran.
func runPowerCut(t *testing.T, seed uint64, steps, cuts int) int {
	r := newCutRun(t, seed, false)
	defer r.close()
	at := map[int]bool{}
	for range cuts {
		at[r.rng.IntN(steps)] = true
	}
	for i := range steps {
		r.step()
		if at[i] {
			r.quiesce()
			r.crash(r.mem.Crash(r.crng), r.snapshot())
		}
	}
	return r.crashes
}

// TestPowerCutAtEverySync crashes a small workload at each of its sync
// calls in turn (fdatasync, fsync of a file or a directory, msync): the
// crash image is taken just before that sync makes anything durable.
func TestPowerCutAtEverySync(t *testing.T) {
	seeds, steps := []uint64{11, 12, 14, 17}, 50
	if *crashLong {
		seeds, steps = []uint64{11, 12, 13, 14, 15, 16, 17, 18}, 120
	}
	if *seedFlag != 0 {
		seeds = []uint64{*seedFlag}
	}
	total := 0
	for _, seed := range seeds {
		r := newCutRun(t, seed, true)
		for range steps {
			r.step()
		}
		r.close()
		syncs := r.mem.Syncs()
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			for k := 1; k <= syncs; k++ {
				r := newCutRun(t, seed, true)
				r.mem.CrashAtSync(k, rand.New(rand.NewPCG(seed, uint64(k))))
				for range steps {
					snap := r.snapshot()
					r.step()
					if img := r.mem.Image(); img != nil {
						r.midStep = true
						r.crash(img, snap)
						break
					}
				}
				total += r.crashes
				r.close()
			}
		})
	}
	t.Logf("%d seeds, %d crash points (one per sync call)", len(seeds), total)
}

const (
	cutDataDir    = "/data"
	cutMetaDir    = "/data/meta"
	cutArchiveDir = "/archive"
)

type cutRun struct {
	t          *testing.T
	seed       uint64
	ownerSyncs bool       // see newCutRun
	rng        *rand.Rand // the workload
	crng       *rand.Rand // what each crash keeps
	mem        *vfs.Mem
	st         *Store
	opts       StoreOptions
	cfg        LogConfig
	d          SyncDriver
	meta       *metalog.Store
	metaOpt    metalog.Options
	clock      int64
	crashes    int
	midStep    bool // the crash image was taken inside the last step

	topics    map[string]*cutTopic
	gone      map[string]*cutTopic // deleted: a crash may bring one back
	nextTopic int
	// The metadata model: the state recovered last (base), the writes since
	// (history), and how many of them are acknowledged (synced).
	base    map[string]string
	history []cutMetaOp
	acked   int
}

type cutTopic struct {
	name     string
	createOp int // index in history of its record; -1: recovered
	parts    []*cutPart
}

type cutPart struct {
	l       *Log
	batches []cutBatch // every batch ever appended and not lost to a crash
	start   uint64     // LogStart after the last retention
	acked   uint64     // flushed offset acknowledged
	epoch   int32      // the newest leader epoch used (a controller's epochs only grow)
	// before: the batches before a TruncateTo in the current step, which a
	// crash inside it may bring back (truncFloor: its offset)
	before     []cutBatch
	truncFloor uint64
}

type cutBatch struct {
	base, next uint64
	data       []byte
}

type cutMetaOp struct {
	key   string
	value string // "" deletes
}

// cutSnapshot is what was acknowledged at some moment.
type cutSnapshot struct {
	parts     map[*cutPart]uint64
	metaAcked int
}

// newCutRun starts a run. With ownerSyncs every sync call is made on the
// test's goroutine (no zero-filled preallocation, archiving or background
// checkpoints), so that a crash image taken inside one (CrashAtSync) never
// reads a mapping the test writes meanwhile.
func newCutRun(t *testing.T, seed uint64, ownerSyncs bool) *cutRun {
	rng := rand.New(rand.NewPCG(seed, 0xc0ffee))
	cfg := testConfig()
	cfg.SegmentBytes = []int64{1024, 2048, 4096}[rng.IntN(3)]
	cfg.IndexIntervalBytes = []int{0, 100, 1000}[rng.IntN(3)]
	cfg.RetentionBytes = []int64{-1, 2500, 6000}[rng.IntN(3)]
	cfg.RetentionMs = []int64{-1, 3000}[rng.IntN(2)]
	cfg.Preallocate = rng.IntN(2) == 0
	cfg.Preallocate = cfg.Preallocate && !ownerSyncs
	r := &cutRun{t: t, seed: seed, ownerSyncs: ownerSyncs, rng: rng, crng: rand.New(rand.NewPCG(seed, 0xdead)), mem: vfs.NewMem(),
		cfg: cfg, clock: 1000, topics: map[string]*cutTopic{}, gone: map[string]*cutTopic{}, base: map[string]string{}}
	r.opts = StoreOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if rng.IntN(3) == 0 && !ownerSyncs {
		r.opts.ArchiveDir = cutArchiveDir
		r.cfg.ArchiveAfter = time.Duration(1+rng.IntN(3)) * time.Second
	}
	r.metaOpt = metalog.Options{SyncEveryWrite: rng.IntN(2) == 0, CompactBytes: []int64{0, 300}[rng.IntN(2)],
		Logger: r.opts.Logger}
	r.open()
	return r
}

func (r *cutRun) fatalf(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("seed %d (replay: go test ./storage -run TestPowerCut -args -seed=%d), after %d crashes: %s",
		r.seed, r.seed, r.crashes, fmt.Sprintf(format, args...))
}

func (r *cutRun) check(what string, err error) {
	r.t.Helper()
	if err != nil {
		r.fatalf("%s: %v", what, err)
	}
}

func (r *cutRun) open() {
	r.t.Helper()
	r.opts.FS, r.metaOpt.FS = r.mem, r.mem
	r.d = SyncDriver{WriteAt: r.mem.Pwrite, Sync: r.mem.Fdatasync}
	var err error
	r.st, err = OpenStore(cutDataDir, r.opts)
	r.check("OpenStore", err)
	r.meta, err = metalog.Open(cutMetaDir, r.metaOpt)
	r.check("metalog.Open", err)
}

func (r *cutRun) close() {
	r.st.crash()
}

// quiesce waits for every background job, so that runs are
// deterministic: a job's file work happens at the same point each time.
func (r *cutRun) quiesce() {
	for _, tp := range r.topics {
		for _, p := range tp.parts {
			p.l.bg.Wait()
			p.l.ckpt.Wait()
		}
	}
	done := make(chan struct{})
	r.st.worker.post(func() { close(done) })
	<-done
}

func (r *cutRun) snapshot() cutSnapshot {
	s := cutSnapshot{parts: map[*cutPart]uint64{}, metaAcked: r.acked}
	for _, tp := range r.topics {
		for _, p := range tp.parts {
			s.parts[p] = p.acked
		}
	}
	return s
}

func (r *cutRun) step() {
	r.t.Helper()
	for _, tp := range r.topics {
		for _, p := range tp.parts {
			p.before = nil // a truncation that returned is durable
		}
	}
	if len(r.topics) == 0 {
		r.createTopic()
	}
	switch x := r.rng.IntN(100); {
	case x < 40:
		r.append()
	case x < 55:
		p := r.anyPart()
		if err := r.d.Flush(p.l); err == nil {
			p.acked = p.l.FlushedOffset()
		} else {
			r.fatalf("Flush: %v", err)
		}
	case x < 59:
		r.check("Roll", rollNow(r.anyPart().l))
	case x < 64:
		p := r.anyPart()
		r.check("EnforceRetention", p.l.EnforceRetention(time.UnixMilli(r.clock+int64(r.rng.IntN(5000)))))
		p.start = p.l.LogStart()
	case x < 68:
		p := r.anyPart()
		if r.rng.IntN(2) == 0 || r.ownerSyncs {
			r.check("WriteCheckpoint", p.l.WriteCheckpoint())
		} else {
			p.l.WriteCheckpointAsync()
		}
		p.l.WriteEpochsAsync() // beside the checkpoint, as the driver does
	case x < 73:
		if len(r.topics) < 4 {
			r.createTopic()
		}
	case x < 76:
		if len(r.topics) > 1 {
			r.deleteTopic()
		}
	case x < 84:
		r.commitOffset()
	case x < 87:
		r.truncate()
	case x < 90:
		r.appendReplicated()
	case x < 96:
		r.check("metalog Sync", r.meta.Sync())
		r.acked = len(r.history)
	default:
		r.check("metalog Compact", r.meta.Compact())
		r.acked = len(r.history)
	}
	r.quiesce()
}

func (r *cutRun) anyTopic() *cutTopic {
	names := slices.Sorted(maps.Keys(r.topics))
	return r.topics[names[r.rng.IntN(len(names))]]
}

func (r *cutRun) anyPart() *cutPart {
	tp := r.anyTopic()
	return tp.parts[r.rng.IntN(len(tp.parts))]
}

func (r *cutRun) append() {
	r.t.Helper()
	p := r.anyPart()
	var b []byte
	for range 1 + r.rng.IntN(3) {
		r.clock += int64(r.rng.IntN(300))
		b = append(b, randomBatch(r.rng, 4, 100, r.clock)...)
	}
	if int64(len(b)) > r.cfg.SegmentBytes {
		return
	}
	if _, err := r.d.Append(p.l, b); err != nil {
		r.fatalf("Append: %v", err)
	}
	for len(b) > 0 { // b now holds the base offsets the log gave it
		h, rest, err := proto.ValidateBatch(b)
		r.check("appended batch", err)
		p.batches = append(p.batches, cutBatch{base: h.BaseOffset, next: h.NextOffset(), data: bytes.Clone(b[:len(b)-len(rest)])})
		b = rest
	}
}

// metaWrite records a metadata write that succeeded.
func (r *cutRun) metaWrite(key, value string) {
	r.history = append(r.history, cutMetaOp{key, value})
	if r.metaOpt.SyncEveryWrite {
		r.acked = len(r.history)
	}
}

// createTopic creates the partitions, then the metadata record (as the
// server does: the record names partitions that exist).
func (r *cutRun) createTopic() {
	r.t.Helper()
	r.nextTopic++
	tp := &cutTopic{name: "t" + strconv.Itoa(r.nextTopic)}
	n := 1 + r.rng.IntN(2)
	for i := range n {
		l, err := r.st.CreateLog(tp.name, uint32(i), r.cfg)
		r.check("CreateLog", err)
		tp.parts = append(tp.parts, &cutPart{l: l})
	}
	r.check("PutTopic", r.meta.PutTopic(tp.name, []byte{byte(n)}))
	tp.createOp = len(r.history)
	r.metaWrite("t|"+tp.name, string([]byte{byte(n)}))
	r.topics[tp.name] = tp
}

// deleteTopic deletes the record durably, then the partitions.
func (r *cutRun) deleteTopic() {
	r.t.Helper()
	tp := r.anyTopic()
	r.check("DeleteTopic", r.meta.DeleteTopic(tp.name))
	r.metaWrite("t|"+tp.name, "")
	r.check("metalog Sync", r.meta.Sync())
	r.acked = len(r.history)
	delete(r.topics, tp.name)
	r.gone[tp.name] = tp
	for _, p := range tp.parts {
		r.check("DeleteLog", r.st.DeleteLog(p.l))
	}
}

func (r *cutRun) commitOffset() {
	r.t.Helper()
	tp := r.anyTopic()
	i := r.rng.IntN(len(tp.parts))
	group := "g" + strconv.Itoa(r.rng.IntN(3))
	off := r.rng.Uint64N(tp.parts[i].l.LogEnd() + 1)
	c := metalog.OffsetCommit{Offset: off, CommitTimeMs: r.clock}
	r.check("CommitOffset", r.meta.CommitOffset(group, tp.name, uint32(i), c))
	r.metaWrite(cutOffsetKey(group, tp.name, uint32(i)), strconv.FormatUint(off, 10))
}

func cutOffsetKey(group, topic string, partition uint32) string {
	return "o|" + group + "|" + topic + "|" + strconv.FormatUint(uint64(partition), 10)
}

// metaState reads the metadata store in the model's key form.
func metaState(m *metalog.Store) map[string]string {
	out := map[string]string{}
	for _, tp := range m.Topics() {
		out["t|"+tp.Name] = string(tp.Config)
	}
	for _, g := range m.ListGroups() {
		for _, o := range m.GroupOffsets(g) {
			out[cutOffsetKey(g, o.Topic, o.Partition)] = strconv.FormatUint(o.Offset, 10)
		}
	}
	return out
}

// crash replaces the file system by img (what a power cut left), recovers
// and checks everything acknowledged as of snap.
func (r *cutRun) crash(img *vfs.Mem, snap cutSnapshot) {
	r.t.Helper()
	r.crashes++
	r.st.crash() // the old metalog.Store is dropped as it is: no close
	r.mem = img
	r.open()
	r.checkMeta(snap)
	live := map[string]*cutTopic{}
	state := metaState(r.meta)
	for _, key := range slices.Sorted(maps.Keys(state)) {
		if key[0] != 't' {
			continue
		}
		name := key[2:]
		n := int(state[key][0])
		tp := r.topics[name]
		if tp == nil {
			tp = r.gone[name]
		}
		if tp == nil {
			tp = &cutTopic{name: name, createOp: -1}
		}
		acked := tp.createOp < snap.metaAcked
		for i := range n {
			if i >= len(tp.parts) {
				tp.parts = append(tp.parts, &cutPart{})
			}
			r.recoverPart(name, uint32(i), tp.parts[i], acked, snap)
		}
		tp.createOp = -1
		live[name] = tp
	}
	r.topics = live
	parts, err := r.st.Partitions()
	r.check("Partitions", err)
	for _, p := range parts {
		if live[p.Topic] == nil || int(p.Partition) >= len(live[p.Topic].parts) {
			r.check("DeletePartition of an orphan", r.st.DeletePartition(p.Topic, p.Partition))
		}
	}
	r.base, r.history, r.acked = state, nil, 0
}

// checkMeta requires the recovered metadata to be the base with a prefix
// of the history applied, at least the acknowledged one.
func (r *cutRun) checkMeta(snap cutSnapshot) {
	r.t.Helper()
	got := metaState(r.meta)
	want := maps.Clone(r.base)
	for k := 0; k <= len(r.history); k++ {
		if k >= snap.metaAcked && maps.Equal(got, want) {
			return
		}
		if k == len(r.history) {
			break
		}
		if op := r.history[k]; op.value == "" {
			delete(want, op.key)
		} else {
			want[op.key] = op.value
		}
	}
	r.fatalf("metadata after the crash is no prefix of the writes from the %d acknowledged of %d on:\n got %v\nbase %v\nhistory %v",
		snap.metaAcked, len(r.history), got, r.base, r.history)
}

// recoverPart opens one partition after a crash and checks it against
// the model: acked says whether its topic was acknowledged.
func (r *cutRun) recoverPart(topic string, partition uint32, p *cutPart, acked bool, snap cutSnapshot) {
	r.t.Helper()
	l, err := r.st.OpenLog(topic, partition, r.cfg)
	if err != nil {
		r.fatalf("recovery of %s/%d failed: %v", topic, partition, err)
	}
	p.l = l
	if c := l.Corruptions(nil); len(c) > 0 {
		r.fatalf("%s/%d: recovery found damage after a power cut: %v", topic, partition, c[0].String())
	}
	start, end := l.LogStart(), l.LogEnd()
	if acked {
		if start > p.start {
			r.fatalf("%s/%d: log starts at %d, retention had only reached %d", topic, partition, start, p.start)
		}
		want := snap.parts[p]
		if r.midStep && p.before != nil {
			want = min(want, p.truncFloor) // the truncation may have happened
		}
		if end < want {
			r.fatalf("%s/%d: log ends at %d, %d was flushed and acknowledged", topic, partition, end, want)
		}
	}
	var got []byte
	if end > start {
		got = readAllBatches(r.t, l, start)
	}
	kept, why := matchBatches(p.batches, start, end, got)
	if why != "" && r.midStep && p.before != nil {
		// a crash inside TruncateTo may bring back the log before it
		if k, why2 := matchBatches(p.before, start, end, got); why2 == "" {
			kept, why = k, ""
		}
	}
	if why != "" {
		r.fatalf("%s/%d: %s", topic, partition, why)
	}
	checkEpochs(r, topic, partition, l, got)
	p.batches, p.start, p.acked, p.before = kept, start, l.FlushedOffset(), nil
	p.epoch = max(p.epoch, l.latestEpoch())
	r.check("SetLeaderEpoch", l.SetLeaderEpoch(p.epoch)) // as a driver does when it leads again
	if p.acked < end {
		r.fatalf("%s/%d: recovered log not flushed: flushed %d, end %d", topic, partition, p.acked, end)
	}
}

// matchBatches checks that got, the recovered [start, end), is the model's
// batches over that range, and returns the model's batches up to end.
func matchBatches(batches []cutBatch, start, end uint64, got []byte) ([]cutBatch, string) {
	var want []byte
	var kept []cutBatch
	pos := start
	for _, b := range batches {
		if b.next > end {
			break
		}
		if b.base >= start {
			if b.base != pos {
				return nil, fmt.Sprintf("recovered [%d, %d) does not start at a batch the model has (%d)", start, end, b.base)
			}
			want = append(want, b.data...)
			pos = b.next
		}
		kept = append(kept, b)
	}
	if pos != end && end != start {
		return nil, fmt.Sprintf("recovered [%d, %d), the model's batches reach only %d", start, end, pos)
	}
	if !bytes.Equal(got, want) {
		return nil, fmt.Sprintf("recovered [%d, %d) differs from what was appended (%d bytes, want %d)", start, end, len(got), len(want))
	}
	return kept, ""
}

// checkEpochs requires the log's leader-epoch cache to be the one its
// recovered batches (got, from the log start) imply.
func checkEpochs(r *cutRun, topic string, partition uint32, l *Log, got []byte) {
	r.t.Helper()
	var want []EpochEntry
	for len(got) > 0 {
		h, rest, err := proto.ValidateBatch(got)
		r.check("recovered batch", err)
		if n := len(want); n == 0 || h.LeaderEpoch > want[n-1].Epoch {
			want = append(want, EpochEntry{h.LeaderEpoch, h.BaseOffset})
		} else if h.LeaderEpoch < want[n-1].Epoch {
			r.fatalf("%s/%d: batch at %d has epoch %d after epoch %d", topic, partition, h.BaseOffset, h.LeaderEpoch, want[n-1].Epoch)
		}
		got = rest
	}
	if have := l.LeaderEpochs(nil); !slices.Equal(have, want) && !(len(have) > 0 && len(want) > 0 && slices.Equal(have[1:], want[1:]) && have[0].Epoch == want[0].Epoch) {
		fc, _, ferr := readEpochs(l.fs, l.dir)
		r.fatalf("%s/%d: leader epochs %v after recovery, the batches say %v (file %+v %v; log [%d, %d))", topic, partition, have, want, fc, ferr, l.LogStart(), l.LogEnd())
	}
}

// truncate cuts a partition at a random batch boundary (as a follower
// does when its log diverged from the leader's).
func (r *cutRun) truncate() {
	r.t.Helper()
	p := r.anyPart()
	var cands []uint64
	for _, b := range p.batches {
		if b.base >= p.l.LogStart() {
			cands = append(cands, b.base)
		}
	}
	cands = append(cands, p.l.LogEnd())
	off := cands[r.rng.IntN(len(cands))]
	before := slices.Clone(p.batches)
	if err := p.l.TruncateTo(off); err != nil {
		if errors.Is(err, ErrOffsetOutOfRange) { // inside an archived segment
			return
		}
		r.fatalf("TruncateTo(%d): %v", off, err)
	}
	k := 0
	for k < len(p.batches) && p.batches[k].next <= off {
		k++
	}
	p.batches = p.batches[:k]
	p.before, p.truncFloor = before, off
	p.acked = min(p.acked, off)
}

// appendReplicated appends batches as a follower does: offsets and
// leader epochs as the leader gave them (sometimes a newer epoch).
func (r *cutRun) appendReplicated() {
	r.t.Helper()
	p := r.anyPart()
	epoch := max(p.l.latestEpoch(), p.epoch, 0) + int32(r.rng.IntN(2))
	p.epoch = epoch
	next := p.l.LogEnd()
	var b []byte
	for range 1 + r.rng.IntN(2) {
		r.clock += int64(r.rng.IntN(300))
		x := randomBatch(r.rng, 4, 100, r.clock)
		proto.SetBaseOffset(x, next)
		proto.SetLeaderEpoch(x, epoch)
		h, _ := proto.ParseBatchHeader(x)
		next = h.NextOffset()
		b = append(b, x...)
	}
	if int64(len(b)) > r.cfg.SegmentBytes {
		return
	}
	if _, err := r.d.AppendReplicated(p.l, b); err != nil {
		r.fatalf("AppendReplicated: %v", err)
	}
	r.check("SetLeaderEpoch", p.l.SetLeaderEpoch(epoch))
	for len(b) > 0 {
		h, rest, err := proto.ValidateBatch(b)
		r.check("replicated batch", err)
		p.batches = append(p.batches, cutBatch{base: h.BaseOffset, next: h.NextOffset(), data: bytes.Clone(b[:len(b)-len(rest)])})
		b = rest
	}
}
