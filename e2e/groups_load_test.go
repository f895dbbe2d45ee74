package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

// TestGroupCommitLoad is the measurement, run on demand
// (RINGMQ_GROUP_LOAD=30s, the duration): 100 groups, each one member that
// commits its partition every 10 ms (and heartbeats every second), against
// one broker process. It prints the commit latency percentiles and the
// broker's CPU time per second.
func TestGroupCommitLoad(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("RINGMQ_GROUP_LOAD"))
	if err != nil {
		t.Skip("set RINGMQ_GROUP_LOAD=30s to run the group commit load")
	}
	const groups = 100
	srv := startServer(t, writeGroupConfig(t, t.TempDir()))
	s := "--server=" + srv.addr
	mustCLI(t, "", "topic", "create", "T", "--partitions", strconv.Itoa(groups), s)
	var in strings.Builder
	for i := 0; i < 100_000; i++ {
		in.WriteString("x\n")
	}
	mustCLI(t, in.String(), "produce", "T", s)
	ends := map[uint32]uint64{}
	{
		c, err := client.Dial(context.Background(), srv.addr, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		md, err := c.Metadata(context.Background(), &proto.MetadataRequest{Topics: []string{"T"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range md.Topics[0].Partitions {
			ends[p.Partition] = p.LogEnd
		}
		c.Close()
	}
	cpu0 := procCPU(t, srv.cmd.Process.Pid)
	start := time.Now()
	var mu sync.Mutex
	var lat []time.Duration
	var failed int
	var wg sync.WaitGroup
	for g := 0; g < groups; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			ctx := context.Background()
			c, err := client.Dial(ctx, srv.addr, client.Options{})
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			name := fmt.Sprintf("load-%03d", g)
			a, err := c.JoinGroup(ctx, &proto.JoinGroupRequest{Group: name, Type: proto.GroupTypeExclusive, MemberID: name,
				SessionTimeoutMs: 10_000, Topics: []string{"T"}})
			if err != nil {
				t.Error(err)
				return
			}
			var mine []time.Duration
			bad := 0
			end := ends[uint32(g)]
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			lastHB := time.Now()
			for off := uint64(1); time.Since(start) < d; off++ {
				<-tick.C
				if time.Since(lastHB) > time.Second {
					if _, err := c.Heartbeat(ctx, &proto.HeartbeatRequest{Group: name, MemberID: name, MemberEpoch: a.MemberEpoch,
						Owned: a.Assigned}); err != nil {
						t.Error(err)
						return
					}
					lastHB = time.Now()
				}
				t0 := time.Now()
				resp, err := c.OffsetCommit(ctx, &proto.OffsetCommitRequest{Group: []byte(name), MemberID: []byte(name),
					MemberEpoch: a.MemberEpoch, Topics: []proto.OffsetCommitTopic{{Name: []byte("T"),
						Partitions: []proto.OffsetCommitPartition{{Partition: uint32(g), Offset: off % (end + 1)}}}}})
				if err != nil || resp.Topics[0].Partitions[0].Error != proto.None {
					bad++
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			failed += bad
			mu.Unlock()
		}(g)
	}
	wg.Wait()
	wall := time.Since(start)
	cpu := procCPU(t, srv.cmd.Process.Pid) - cpu0
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	t.Logf("%d groups committing every 10 ms for %v: %d commits (%.0f/s), %d failed; latency p50 %v p99 %v p999 %v max %v; broker CPU %.2f s (%.0f%% of one core)",
		groups, wall.Round(time.Second), len(lat), float64(len(lat))/wall.Seconds(), failed,
		pct(0.5), pct(0.99), pct(0.999), lat[len(lat)-1], cpu.Seconds(), 100*cpu.Seconds()/wall.Seconds())
	if failed > 0 {
		t.Errorf("%d commits failed", failed)
	}
}

// procCPU is a process's user + system CPU time from /proc.
func procCPU(t *testing.T, pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}
