package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

// shutdownBound is how long SIGTERM under load may take to exit.
const shutdownBound = 2 * time.Second

// TestSigtermUnderLoad sends SIGTERM while acks=all producers (flush=sync
// topic), acks=1 producers, group consumers committing offsets and parked
// long-poll fetches are all busy. Every trial must exit 0 within
// shutdownBound, leave the clean-shutdown marker, and after a restart
// every acknowledged record must be there. RINGMQ_SHUTDOWN_TRIALS sets the
// number of trials (default 3; `make test-shutdown` runs 20).
func TestSigtermUnderLoad(t *testing.T) {
	trials := 3
	if s := os.Getenv("RINGMQ_SHUTDOWN_TRIALS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("RINGMQ_SHUTDOWN_TRIALS=%q: want a positive number", s)
		}
		trials = n
	}
	seed := time.Now().UnixNano()
	if s := os.Getenv("RINGMQ_SHUTDOWN_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	t.Logf("seed %d (replay with RINGMQ_SHUTDOWN_SEED)", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	var times []time.Duration
	for i := 0; i < trials; i++ {
		d := sigtermTrial(t, i, time.Duration(300+rng.IntN(700))*time.Millisecond)
		times = append(times, d)
	}
	slices.Sort(times)
	t.Logf("shutdown times over %d trials: min %v, median %v, max %v, all %v",
		len(times), times[0], times[len(times)/2], times[len(times)-1], times)
}

// sigtermTrial runs one trial on a fresh data directory and returns how
// long the server took to exit after SIGTERM.
func sigtermTrial(t *testing.T, trial int, loadFor time.Duration) time.Duration {
	dataDir := t.TempDir()
	cfgPath := writeConfig(t, dataDir)
	const syncTopic, asyncTopic, idleTopic, partitions = "sync", "async", "idle", 4
	srv := startServer(t, cfgPath)
	c := ringtest.Dial(t, srv.addr, client.Options{})
	ringtest.CreateTopic(t, c, syncTopic, partitions, "flush", "sync")
	ringtest.CreateTopic(t, c, asyncTopic, partitions)
	ringtest.CreateTopic(t, c, idleTopic, 2)

	syncAcked := &acked{recs: map[uint32][]uint64{}}
	asyncAcked := &acked{recs: map[uint32][]uint64{}}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	spawn := func(fn func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn()
		}()
	}
	for i := uint32(0); i < 3; i++ {
		spawn(func() { loadProducer(srv.addr, syncTopic, partitions, i, proto.AcksAll, syncAcked) })
		spawn(func() { loadProducer(srv.addr, asyncTopic, partitions, i, proto.AcksLeader, asyncAcked) })
	}
	var commits atomic.Int64
	for i := 0; i < 2; i++ {
		spawn(func() { groupConsumer(srv.addr, fmt.Sprintf("g%d", i), asyncTopic, stop, &commits) })
		spawn(func() { parkedFetches(srv.addr, idleTopic, uint32(i)) })
	}
	// Let the load build up: records acknowledged on both topics, offsets
	// committed.
	deadline := time.Now().Add(30 * time.Second)
	for syncAcked.count() == 0 || asyncAcked.count() == 0 || commits.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("trial %d: no record acknowledged or offset committed within 30s\n%s", trial, srv.logs.String())
		}
		<-time.After(10 * time.Millisecond)
	}
	<-time.After(loadFor)

	start := time.Now()
	srv.cmd.Process.Signal(syscall.SIGTERM)
	var exitErr error
	select {
	case exitErr = <-srv.exited:
	case <-time.After(60 * time.Second):
		srv.cmd.Process.Kill()
		t.Fatalf("trial %d: server still running 60s after SIGTERM\n%s", trial, srv.logs.String())
	}
	took := time.Since(start)
	close(stop)
	wg.Wait()
	if exitErr != nil {
		t.Fatalf("trial %d: exit after SIGTERM (%v): %v\n%s", trial, took, exitErr, srv.logs.String())
	}
	if took > shutdownBound {
		t.Fatalf("trial %d: SIGTERM took %v, want ≤ %v\n%s", trial, took, shutdownBound, srv.logs.String())
	}
	if _, err := os.Stat(filepath.Join(dataDir, ".clean-shutdown")); err != nil {
		t.Fatalf("trial %d: no clean-shutdown marker after SIGTERM: %v\n%s", trial, err, srv.logs.String())
	}

	srv = startServer(t, cfgPath)
	c = ringtest.Dial(t, srv.addr, client.Options{})
	n := verify(t, c, syncTopic, partitions, syncAcked)
	n += verify(t, c, asyncTopic, partitions, asyncAcked)
	t.Logf("trial %d: load %v, SIGTERM exit 0 in %v, %d acknowledged records verified", trial, loadFor, took, n)
	if err := srv.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("trial %d: idle SIGTERM: %v", trial, err)
	}
	return took
}

func (a *acked) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, r := range a.recs {
		n += len(r)
	}
	return n
}

// loadProducer produces until the server goes away.
func loadProducer(addr, topic string, partitions, id uint32, acks int8, a *acked) {
	pc, err := client.Dial(context.Background(), addr, client.Options{})
	if err != nil {
		return
	}
	defer pc.Close()
	produceUntilError(pc, topic, partitions, id, 0, acks, a, 0)
}

// groupConsumer polls topic in a group and commits after every poll until
// stop or the server goes away.
func groupConsumer(addr, group, topic string, stop <-chan struct{}, commits *atomic.Int64) {
	cons, err := client.NewConsumer(addr, client.ConsumerOptions{Group: group, MaxWait: 200 * time.Millisecond,
		RetryBackoff: 20 * time.Millisecond})
	if err != nil {
		return
	}
	defer cons.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-stop
		cancel()
	}()
	if err := cons.Assign(ctx, topic); err != nil {
		return
	}
	for ctx.Err() == nil {
		if _, err := cons.Poll(ctx); err != nil && !errors.Is(err, proto.ErrRetriable) {
			return
		}
		err := cons.Commit(ctx)
		if err != nil && !errors.Is(err, proto.ErrRetriable) {
			return
		}
		if err == nil {
			commits.Add(1)
		}
	}
}

// parkedFetches keeps a long poll parked on a partition nobody writes to
// (min_bytes 1, max_wait 30 s) until the connection fails.
func parkedFetches(addr, topic string, p uint32) {
	fc, err := client.Dial(context.Background(), addr, client.Options{})
	if err != nil {
		return
	}
	defer fc.Close()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		_, err := fc.Fetch(ctx, &proto.FetchRequest{MaxWaitMs: 30000, MinBytes: 1, MaxBytes: 1 << 20,
			Topics: []proto.FetchTopic{{Name: []byte(topic), Partitions: []proto.FetchPartition{{Partition: p, PartitionMaxBytes: 1 << 20}}}}})
		cancel()
		if err != nil {
			return
		}
	}
}
