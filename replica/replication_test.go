package replica

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// KIP-279 end offsets, including the epochs the cache does not know.
func TestEpochsEndOffsetFor(t *testing.T) {
	c, err := NewEpochs([]EpochEntry{{Epoch: 2, Start: 10}, {Epoch: 4, Start: 30}, {Epoch: 7, Start: 55}})
	must(t, err)
	for _, tc := range []struct {
		ask  int32
		e    int32
		end  uint64
		name string
	}{
		{7, 7, 80, "latest: the log end"},
		{4, 4, 55, "known: the next epoch's start"},
		{5, 4, 55, "unknown between: the largest below and the next start"},
		{2, 2, 30, "first"},
		{1, 1, 10, "below the first: the first start (deleted data)"},
		{8, NoEpoch, 80, "above the latest"},
		{NoEpoch, NoEpoch, 80, "none"},
	} {
		if e, end := c.EndOffsetFor(tc.ask, 80); e != tc.e || end != tc.end {
			t.Errorf("%s: EndOffsetFor(%d) = (%d, %d), want (%d, %d)", tc.name, tc.ask, e, end, tc.e, tc.end)
		}
	}
	var empty Epochs
	if e, end := empty.EndOffsetFor(3, 9); e != NoEpoch || end != 9 {
		t.Errorf("empty cache: (%d, %d)", e, end)
	}
	if got := c.EpochAt(54); got != 4 {
		t.Errorf("EpochAt(54) = %d", got)
	}
}

// Epochs only grow; truncation drops the epochs that start at or past it.
func TestEpochsAssignAndTruncate(t *testing.T) {
	var c Epochs
	must(t, c.Assign(1, 0))
	must(t, c.Assign(1, 5)) // same epoch: continues
	must(t, c.Assign(3, 7))
	if err := c.Assign(2, 9); !errors.Is(err, ErrBadEpochs) {
		t.Fatalf("older epoch: %v", err)
	}
	if err := c.Assign(4, 6); !errors.Is(err, ErrBadEpochs) {
		t.Fatalf("start before the latest: %v", err)
	}
	c.TruncateFrom(7)
	if got := c.Entries(nil); !slices.Equal(got, []EpochEntry{{1, 0}}) {
		t.Fatalf("after TruncateFrom(7): %v", got)
	}
	if _, err := NewEpochs([]EpochEntry{{3, 5}, {2, 9}}); !errors.Is(err, ErrBadEpochs) {
		t.Fatalf("NewEpochs out of order: %v", err)
	}
}

// leaderOf returns a sync-mode leader in epoch 5 with followers 2 and 3 in
// its ISR, min ISR 2, holding offsets 0-9 (epoch 3) and 10-19 (epoch 5),
// flushed.
func leaderOf(t *testing.T) *driver {
	t.Helper()
	cfg := syncConfig()
	cfg.ID, cfg.MinInsync, cfg.ReplicaLagTime = 1, 2, time.Second
	d := newDriver(t, cfg, Offsets{LogEnd: 10, Flushed: 10})
	must(t, d.r.SetEpochs([]EpochEntry{{Epoch: 3, Start: 0}}))
	must(t, d.r.BecomeLeader(LeaderState{Epoch: 5, PartitionEpoch: 9, ISR: []ID{1, 2, 3}}))
	b := d.plan(10, 1000, AckAll)
	d.r.AppendCompleted(b)
	d.turn()
	d.flushDone()
	d.turn()
	return d
}

// The HW is the minimum match over the ISR, never past the local flushed
// offset; acks=all is released when it passes.
func TestLeaderHWIsISRMinimum(t *testing.T) {
	d := leaderOf(t)
	d.expectAcks("")
	fetch := func(id ID, off uint64) FetchAnswer {
		t.Helper()
		a := d.r.FollowerFetch(FetchRequest{Replica: id, LeaderEpoch: 5, Offset: off, Flushed: off, LastEpoch: d.r.Epochs().EpochAt(off - 1)})
		if a.Err != nil || a.Diverging {
			t.Fatalf("fetch %d at %d: %+v", id, off, a)
		}
		return a
	}
	fetch(2, 20)
	if hw := d.r.HighWatermark(); hw != 0 {
		t.Fatalf("HW %d with follower 3 unknown", hw)
	}
	if a := fetch(3, 15); a.HighWatermark != 15 || a.UpTo != 20 || a.Offset != 15 {
		t.Fatalf("answer %+v, want HW 15, read 15-20", a)
	}
	d.turn()
	d.expectAcks("")
	fetch(3, 20)
	d.turn()
	d.expectAcks("10:acks=all:ok")
	// a follower's unflushed data does not count on a sync topic
	b := d.plan(1, 10, AckAll)
	d.r.AppendCompleted(b)
	d.turn()
	d.flushDone()
	a := d.r.FollowerFetch(FetchRequest{Replica: 2, LeaderEpoch: 5, Offset: 21, Flushed: 20, LastEpoch: 5})
	d.r.FollowerFetch(FetchRequest{Replica: 3, LeaderEpoch: 5, Offset: 21, Flushed: 21, LastEpoch: 5})
	if a.Err != nil || d.r.HighWatermark() != 20 {
		t.Fatalf("HW %d (err %v), want 20: follower 2 flushed only 20", d.r.HighWatermark(), a.Err)
	}
}

// A follower whose last epoch or offset does not match gets the
// divergence point (KIP-320) and no progress is recorded.
func TestLeaderAnswersDivergence(t *testing.T) {
	d := leaderOf(t)
	for _, tc := range []struct {
		off   uint64
		last  int32
		e     int32
		end   uint64
		valid bool
	}{
		{12, 5, 0, 0, true},      // in the current epoch: fine
		{10, 3, 0, 0, true},      // epoch 3 ended at 10: fine
		{14, 3, 3, 10, false},    // epoch 3 ended at 10, the follower has more of it
		{14, 4, 3, 10, false},    // epoch 4 never wrote here: epoch 3, ended at 10
		{25, 5, 5, 20, false},    // past the leader's log end
		{8, NoEpoch, 0, 0, true}, // an empty log from 8 on (retention): nothing to check
		{25, NoEpoch, NoEpoch, 20, false},
	} {
		a := d.r.FollowerFetch(FetchRequest{Replica: 2, LeaderEpoch: 5, Offset: tc.off, Flushed: tc.off, LastEpoch: tc.last})
		if a.Err != nil {
			t.Fatalf("%+v: %v", tc, a.Err)
		}
		if a.Diverging == tc.valid || (!tc.valid && (a.DivergingEpoch != tc.e || a.DivergingEnd != tc.end)) {
			t.Errorf("fetch at %d last epoch %d: %+v, want diverging=%v (%d, %d)", tc.off, tc.last, a, !tc.valid, tc.e, tc.end)
		}
	}
	if leo, _, _ := d.r.FollowerLEO(2); leo != 8 {
		t.Fatalf("follower 2 LEO %d: a diverging fetch moved it", leo)
	}
}

// Fetches from another epoch are fenced or unknown; a follower is not a
// leader.
func TestFetchEpochFencing(t *testing.T) {
	d := leaderOf(t)
	for _, tc := range []struct {
		epoch int32
		want  error
	}{{4, ErrFencedEpoch}, {6, ErrUnknownEpoch}} {
		if a := d.r.FollowerFetch(FetchRequest{Replica: 2, LeaderEpoch: tc.epoch, Offset: 20, LastEpoch: 5}); !errors.Is(a.Err, tc.want) {
			t.Errorf("epoch %d: %v, want %v", tc.epoch, a.Err, tc.want)
		}
	}
	must(t, d.r.BecomeFollower(6, 2))
	if a := d.r.FollowerFetch(FetchRequest{Replica: 3, LeaderEpoch: 6}); !errors.Is(a.Err, ErrNotLeader) {
		t.Fatalf("fetch from a follower: %v", a.Err)
	}
	if err := d.r.CheckAppend(AckLeader); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("append on a follower: %v", err)
	}
	if err := d.r.BecomeLeader(LeaderState{Epoch: 5}); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("older epoch: %v", err)
	}
}

// A follower in the ISR that stops catching up is proposed for removal
// after the lag time; the proposal carries the partition epoch and the
// follower keeps counting until the controller commits it.
func TestISRShrinkAfterLagTime(t *testing.T) {
	d := leaderOf(t)
	d.r.FollowerFetch(FetchRequest{Replica: 2, LeaderEpoch: 5, Offset: 20, Flushed: 20, LastEpoch: 5})
	d.r.FollowerFetch(FetchRequest{Replica: 3, LeaderEpoch: 5, Offset: 20, Flushed: 20, LastEpoch: 5})
	d.turn()
	d.expectAcks("10:acks=all:ok")
	b := d.plan(5, 100, AckAll)
	d.r.AppendCompleted(b)
	d.turn()
	d.flushDone()
	d.tick(500 * time.Millisecond)
	d.r.FollowerFetch(FetchRequest{Replica: 2, LeaderEpoch: 5, Offset: 25, Flushed: 25, LastEpoch: 5})
	if rd := d.turn(); rd.ProposeISR {
		t.Fatalf("proposal before the lag time: %+v", rd.ISRChange)
	}
	d.tick(600 * time.Millisecond) // follower 3 last caught up 1.1 s ago
	rd := d.turn()
	want := ISRChange{Op: ISRShrink, Replica: 3, LeaderEpoch: 5, PartitionEpoch: 9, ISR: []ID{1, 2}}
	if !rd.ProposeISR || rd.ISRChange.Op != want.Op || rd.ISRChange.Replica != 3 || rd.ISRChange.PartitionEpoch != 9 ||
		!slices.Equal(rd.ISRChange.ISR, want.ISR) {
		t.Fatalf("proposal %+v (%v), want %+v", rd.ISRChange, rd.ProposeISR, want)
	}
	if d.turn().ProposeISR {
		t.Fatal("the proposal was handed out twice")
	}
	d.expectAcks("")        // 3 still counts until committed
	d.r.ISRChangeRefused(8) // not ours
	must(t, d.r.ISRChanged(10, []ID{1, 2}))
	d.turn()
	d.expectAcks("20:acks=all:ok")
	if err := d.r.ISRChanged(9, []ID{1, 2, 3}); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("older partition epoch: %v", err)
	}
}

// A follower outside the ISR is proposed for addition once it reached the
// HW and the start of the leader's epoch; it counts toward the HW from
// the proposal on.
func TestISRExpandWhenCaughtUp(t *testing.T) {
	cfg := syncConfig()
	cfg.ID, cfg.MinInsync = 1, 1
	d := newDriver(t, cfg, Offsets{LogEnd: 10, Flushed: 10, HighWatermark: 10})
	must(t, d.r.SetEpochs([]EpochEntry{{Epoch: 3, Start: 0}}))
	must(t, d.r.BecomeLeader(LeaderState{Epoch: 5, PartitionEpoch: 2, ISR: []ID{1}}))
	d.turn()
	d.r.FollowerFetch(FetchRequest{Replica: 2, LeaderEpoch: 5, Offset: 4, Flushed: 4, LastEpoch: 3})
	if d.turn().ProposeISR {
		t.Fatal("expand proposed for a follower behind the HW")
	}
	d.r.FollowerFetch(FetchRequest{Replica: 2, LeaderEpoch: 5, Offset: 10, Flushed: 10, LastEpoch: 3})
	rd := d.turn()
	if !rd.ProposeISR || rd.ISRChange.Op != ISRExpand || !slices.Equal(rd.ISRChange.ISR, []ID{1, 2}) {
		t.Fatalf("proposal %+v (%v), want expand to [1 2]", rd.ISRChange, rd.ProposeISR)
	}
	// pending: 2 counts already
	b := d.plan(2, 10, AckAll)
	d.r.AppendCompleted(b)
	d.turn()
	d.flushDone()
	d.turn()
	d.expectAcks("")
	d.r.ISRChangeRefused(2) // refused: it stops counting
	d.turn()
	d.expectAcks("10:acks=all:ok")
}

// min_insync_replicas: acks=all is refused and the HW held while the ISR
// is smaller.
func TestMinInsyncHoldsHW(t *testing.T) {
	d := leaderOf(t)
	d.r.FollowerFetch(FetchRequest{Replica: 2, LeaderEpoch: 5, Offset: 20, Flushed: 20, LastEpoch: 5})
	must(t, d.r.ISRChanged(10, []ID{1}))
	if err := d.r.CheckAppend(AckAll); !errors.Is(err, ErrNotEnoughReplicas) {
		t.Fatalf("acks=all with ISR [1], min 2: %v", err)
	}
	if hw := d.r.HighWatermark(); hw != 0 {
		t.Fatalf("HW %d moved with the ISR below min_insync_replicas", hw)
	}
}

// The follower side: a fetch when idle, the divergence answer becomes a
// truncation to the smaller of both ends, batches a replicated append
// keeping offsets and epochs, the HW follows the leader's.
func TestFollowerFetchTruncateReplicate(t *testing.T) {
	cfg := syncConfig()
	cfg.ID, cfg.MinInsync = 2, 2
	d := newDriver(t, cfg, Offsets{LogEnd: 30, Flushed: 30})
	must(t, d.r.SetEpochs([]EpochEntry{{Epoch: 3, Start: 0}, {Epoch: 4, Start: 20}}))
	must(t, d.r.BecomeFollower(6, 1))
	rd := d.turn()
	if !rd.EpochChanged || rd.Role != RoleFollower || rd.Leader != 1 || rd.LeaderEpoch != 6 {
		t.Fatalf("epoch change %+v", rd)
	}
	want := FetchRequest{Replica: 2, LeaderEpoch: 6, Offset: 30, Flushed: 30, LastEpoch: 4}
	if !rd.SendFetch || rd.Fetch != want {
		t.Fatalf("fetch %+v (%v), want %+v", rd.Fetch, rd.SendFetch, want)
	}
	if d.turn().SendFetch {
		t.Fatal("a second fetch while one is out")
	}
	// the leader never had epoch 4: epoch 3 ended at 25 there
	must(t, d.r.Fetched(Fetched{LeaderEpoch: 6, Diverging: true, DivergingEpoch: 3, DivergingEnd: 25}))
	rd = d.turn()
	if !rd.Truncate || rd.TruncateTo != 20 || rd.SendFetch {
		t.Fatalf("truncate %v to %d (fetch %v), want to 20: our epoch 3 ended there", rd.Truncate, rd.TruncateTo, rd.SendFetch)
	}
	must(t, d.r.TruncateCompleted(20))
	d.expectOffsets(Offsets{LogEnd: 20, Flushed: 20})
	rd = d.turn()
	if !rd.SendFetch || rd.Fetch.Offset != 20 || rd.Fetch.LastEpoch != 3 {
		t.Fatalf("fetch after truncation %+v", rd.Fetch)
	}
	must(t, d.r.Fetched(Fetched{Token: 77, LeaderEpoch: 6, HighWatermark: 22, Batches: []Batch{
		{Base: 20, Last: 24, Epoch: 3, Bytes: 50}, {Base: 25, Last: 26, Epoch: 6, Bytes: 20},
		{Base: 30, Last: 31, Epoch: 6, Bytes: 20}, // a gap: not taken
	}}))
	rd = d.turn()
	if !rd.Replicate || rd.ReplicateWork != (Replicate{Token: 77, Base: 20, Last: 26, Batches: 2, Bytes: 70}) {
		t.Fatalf("replicate %+v (%v)", rd.ReplicateWork, rd.Replicate)
	}
	d.r.AppendCompleted(20)
	rd = d.turn()
	d.expectAcks("20:acks=0:ok") // the answer's bytes may be freed
	if rd.SendFetch || !rd.Flush {
		t.Fatalf("sync follower: flush before the next fetch (fetch %v, flush %v)", rd.SendFetch, rd.Flush)
	}
	if hw := d.r.HighWatermark(); hw != 20 {
		t.Fatalf("HW %d, want 20: the leader's 22, capped by what is flushed here", hw)
	}
	d.flushDone()
	rd = d.turn()
	if hw := d.r.HighWatermark(); hw != 22 {
		t.Fatalf("HW %d, want the leader's 22", hw)
	}
	if !rd.SendFetch || rd.Fetch.Offset != 27 || rd.Fetch.LastEpoch != 6 || rd.Fetch.Flushed != 27 {
		t.Fatalf("next fetch %+v", rd.Fetch)
	}
	if got := d.r.Epochs().Entries(nil); !slices.Equal(got, []EpochEntry{{3, 0}, {6, 25}}) {
		t.Fatalf("epochs %v", got)
	}
}

// A leader that becomes a follower fails the acks=all waiting for the HW
// (the new leader may not have those appends); acks=1 are kept.
func TestDemotedLeaderFailsWaitingAcks(t *testing.T) {
	d := leaderOf(t)
	a := d.plan(1, 10, AckAll)
	b := d.plan(1, 10, AckAll)
	d.r.AppendCompleted(a)
	d.turn()
	must(t, d.r.BecomeFollower(6, 2))
	d.r.AppendCompleted(b) // in flight at the change
	d.turn()
	d.expectAcks("10:acks=all:err 20:acks=all:err 21:acks=all:err")
}

// Stale answers are ignored: another epoch, batches not at the log end.
func TestFollowerIgnoresStaleAnswers(t *testing.T) {
	cfg := intervalConfig()
	cfg.ID = 2
	d := newDriver(t, cfg, Offsets{LogEnd: 5, Flushed: 5})
	must(t, d.r.BecomeFollower(3, 1))
	d.turn()
	if err := d.r.Fetched(Fetched{LeaderEpoch: 2}); !errors.Is(err, ErrStaleFetch) {
		t.Fatalf("old epoch: %v", err)
	}
	if err := d.r.Fetched(Fetched{LeaderEpoch: 3, Batches: []Batch{{Base: 7, Last: 8, Epoch: 3, Bytes: 1}}}); !errors.Is(err, ErrStaleFetch) {
		t.Fatalf("batches past the log end: %v", err)
	}
	if err := d.r.Fetched(Fetched{LeaderEpoch: 3, Batches: []Batch{{Base: 5, Last: 8, Epoch: 4, Bytes: 1}}}); !errors.Is(err, ErrStaleFetch) {
		t.Fatalf("batch of a future epoch: %v", err)
	}
	if !d.turn().SendFetch {
		t.Fatal("no new fetch after stale answers")
	}
}

// Followers put in the ISR before the first Tick get their lag time from
// that Tick, not from the zero time.
func TestLagCountsFromTheFirstTick(t *testing.T) {
	cfg := syncConfig()
	cfg.ID, cfg.ReplicaLagTime = 1, time.Second
	r, err := New(cfg, Offsets{})
	must(t, err)
	r.SetISR([]ID{1, 2})
	r.Tick(t0)
	if rd := r.Ready(); rd.ProposeISR {
		t.Fatalf("shrink proposed at the first tick: %+v", rd.ISRChange)
	}
	r.Advance()
	r.Tick(t0.Add(2 * time.Second))
	if rd := r.Ready(); !rd.ProposeISR || rd.ISRChange.Op != ISRShrink {
		t.Fatalf("no shrink after the lag time: %+v", rd)
	}
}

// A leader demoted before it wrote anything in its epoch drops that epoch,
// so the new leader's batches of an older epoch (which it has further than
// the demoted one) are taken.
func TestDemotedLeaderTakesOlderEpochBatches(t *testing.T) {
	cfg := intervalConfig()
	cfg.ID = 1
	d := newDriver(t, cfg, Offsets{LogEnd: 100, Flushed: 100})
	must(t, d.r.SetEpochs([]EpochEntry{{Epoch: 4, Start: 0}}))
	must(t, d.r.BecomeLeader(LeaderState{Epoch: 5, PartitionEpoch: 3, ISR: []ID{1, 2}}))
	d.turn()
	must(t, d.r.BecomeFollower(6, 2))
	rd := d.turn()
	if !rd.SendFetch || rd.Fetch.LastEpoch != 4 {
		t.Fatalf("fetch %+v", rd.Fetch)
	}
	must(t, d.r.Fetched(Fetched{Token: 1, LeaderEpoch: 6, HighWatermark: 90,
		Batches: []Batch{{Base: 100, Last: 104, Epoch: 4, Bytes: 10}, {Base: 105, Last: 105, Epoch: 6, Bytes: 10}}}))
	if rd := d.turn(); !rd.Replicate || rd.ReplicateWork.Batches != 2 {
		t.Fatalf("replicate %+v", rd.ReplicateWork)
	}
	if got := d.r.Epochs().Entries(nil); !slices.Equal(got, []EpochEntry{{4, 0}, {6, 105}}) {
		t.Fatalf("epochs %v", got)
	}
}

// A follower of a flush=interval topic keeps fetching while a flush is in
// flight (its match is its log end, whatever is flushed): an interval
// fdatasync, which can take hundreds of ms on a busy disk, must not stall
// replication and with it every acks=all produce.
func TestIntervalFollowerFetchesDuringFlush(t *testing.T) {
	cfg := intervalConfig()
	cfg.ID = 2
	d := newDriver(t, cfg, Offsets{LogEnd: 10, Flushed: 0})
	must(t, d.r.BecomeFollower(1, 1))
	rd := d.turn()
	if !rd.SendFetch {
		t.Fatal("no first fetch")
	}
	d.tick(time.Second) // the interval flush is due
	must(t, d.r.Fetched(Fetched{LeaderEpoch: 1, HighWatermark: 10}))
	rd = d.turn()
	if !rd.Flush {
		t.Fatal("interval flush not planned")
	}
	if !rd.SendFetch {
		t.Fatal("no fetch while the interval flush is in flight")
	}
}

// A follower keeps the producer state of the batches it replicates, so
// that once it leads, a producer's retry of a batch the old leader stored
// is answered with the original offsets and not appended again; a
// truncation forgets the batches it cuts.
func TestFollowerKeepsProducerState(t *testing.T) {
	cfg := intervalConfig()
	cfg.ID = 2
	d := newDriver(t, cfg, Offsets{LogEnd: 10, Flushed: 10})
	must(t, d.r.SetEpochs([]EpochEntry{{Epoch: 1, Start: 0}}))
	must(t, d.r.BecomeFollower(2, 1))
	d.turn()
	p1 := ProducerBatch{ProducerID: 7, Epoch: 0, BaseSeq: 0, Count: 5, MaxTimestamp: 1}
	p2 := ProducerBatch{ProducerID: 7, Epoch: 0, BaseSeq: 5, Count: 3, MaxTimestamp: 2}
	must(t, d.r.Fetched(Fetched{Token: 1, LeaderEpoch: 2, HighWatermark: 10, Batches: []Batch{
		{Base: 10, Last: 14, Epoch: 2, Bytes: 50, Producer: p1},
		{Base: 15, Last: 17, Epoch: 2, Bytes: 30, Producer: p2},
	}}))
	if rd := d.turn(); !rd.Replicate || rd.ReplicateWork.Batches != 2 {
		t.Fatalf("replicate %+v", rd.ReplicateWork)
	}
	d.r.AppendCompleted(10)
	d.turn()
	must(t, d.r.BecomeLeader(LeaderState{Epoch: 3, PartitionEpoch: 2, ISR: []ID{2}}))
	d.turn()
	for _, c := range []struct {
		b          ProducerBatch
		base, last uint64
	}{{p1, 10, 14}, {p2, 15, 17}} {
		dup, err := d.r.CheckProducer(c.b)
		if err != nil || !dup.Found || dup.Base != c.base || dup.Last != c.last {
			t.Fatalf("retry of seq %d on the new leader: %+v, %v; want the original offsets %d-%d",
				c.b.BaseSeq, dup, err, c.base, c.last)
		}
	}
	next := ProducerBatch{ProducerID: 7, Epoch: 0, BaseSeq: 8, Count: 1, MaxTimestamp: 3}
	if dup, err := d.r.CheckProducer(next); err != nil || dup.Found {
		t.Fatalf("the next batch on the new leader: %+v, %v; want it appended", dup, err)
	}
	if _, err := d.r.CheckProducer(ProducerBatch{ProducerID: 7, Epoch: 0, BaseSeq: 9, Count: 1}); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("a gap on the new leader: %v, want ErrOutOfOrderSequence", err)
	}
}
