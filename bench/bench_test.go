package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringmq/ringmq/proto"
)

func TestTemplateStamp(t *testing.T) {
	const msgSize = 100
	tpl := newTemplate(50, msgSize)
	for _, n := range []int{1, 17, 50} {
		first, step := int64(1_700_000_000_123_456_789), int64(1000)
		batch := tpl.stamp(n, first, step)
		h, rest, err := proto.ValidateBatch(batch)
		if err != nil || len(rest) != 0 || h.RecordCount != uint32(n) {
			t.Fatalf("n=%d: ValidateBatch: %v, %d bytes left, %d records", n, err, len(rest), h.RecordCount)
		}
		if h.FirstTimestamp != first/1e6 {
			t.Fatalf("n=%d: first timestamp %d, want %d", n, h.FirstTimestamp, first/1e6)
		}
		it, err := proto.NewRecordIter(batch)
		if err != nil {
			t.Fatal(err)
		}
		i := 0
		for ; it.Next(); i++ {
			r := it.Record()
			ts, ok := sendTime(r.Value)
			if !ok || len(r.Value) != msgSize || r.Key != nil || ts != first+int64(i)*step || r.Offset != uint64(i) {
				t.Fatalf("n=%d record %d: key %q, %d bytes, send time %d (want %d), offset %d",
					n, i, r.Key, len(r.Value), ts, first+int64(i)*step, r.Offset)
			}
		}
		if it.Err() != nil || i != n {
			t.Fatalf("n=%d: %d records, %v", n, i, it.Err())
		}
	}
	if a := testing.AllocsPerRun(100, func() { tpl.stamp(50, 1, 0) }); a != 0 {
		t.Fatalf("stamp allocates %v times", a)
	}
}

func TestAssign(t *testing.T) {
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	for range 200 {
		nparts, shards, n := 1+rng.IntN(12), 1+rng.IntN(4), 1+rng.IntN(10)
		var parts []proto.PartitionInfo
		for p := range nparts {
			parts = append(parts, proto.PartitionInfo{Partition: uint32(p), Shard: uint16(rng.IntN(shards))})
		}
		for _, share := range []bool{false, true} {
			checkAssign(t, seed, parts, n, share, assign(parts, n, share))
		}
	}
}

func checkAssign(t *testing.T, seed int64, parts []proto.PartitionInfo, n int, share bool, as []assignment) {
	t.Helper()
	count := map[uint32]int{}
	for _, a := range as {
		if len(a.parts) == 0 {
			t.Fatalf("seed %d: a worker without partitions: %+v", seed, as)
		}
		for _, p := range a.parts {
			count[p]++
			if a.shard >= 0 && int(parts[p].Shard) != a.shard {
				t.Fatalf("seed %d: worker asks shard %d but has partition %d of shard %d", seed, a.shard, p, parts[p].Shard)
			}
		}
	}
	for _, p := range parts {
		if c := count[p.Partition]; c == 0 || !share && c != 1 {
			t.Fatalf("seed %d share=%v: partition %d assigned %d times: %+v", seed, share, p.Partition, c, as)
		}
	}
	if share && len(as) != n || len(as) > n {
		t.Fatalf("seed %d share=%v: %d workers of %d", seed, share, len(as), n)
	}
}

func TestPlanEnds(t *testing.T) {
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 2))
	for range 500 {
		from, end := map[uint32]uint64{}, map[uint32]uint64{}
		var avail int64
		for p := range uint32(1 + rng.IntN(6)) {
			from[p] = uint64(rng.IntN(100))
			end[p] = from[p] + uint64(rng.IntN(50))
			avail += int64(end[p] - from[p])
		}
		limit := int64(rng.IntN(200))
		out := planEnds(from, end, limit)
		var got int64
		for p, e := range out {
			if e < from[p] || e > end[p] {
				t.Fatalf("seed %d: partition %d end %d outside [%d, %d]", seed, p, e, from[p], end[p])
			}
			got += int64(e - from[p])
		}
		want := min(limit, avail)
		if limit == 0 {
			want = avail
		}
		if got != want {
			t.Fatalf("seed %d: plan reads %d records, want %d (limit %d, available %d)", seed, got, want, limit, avail)
		}
	}
}

func TestBudgetHandsOutExactly(t *testing.T) {
	cfg := Config{Messages: 100_003}
	b := newBudget(&cfg, time.Now())
	var mu sync.Mutex
	total := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			n := 0
			for k := b.claim(64); k > 0; k = b.claim(64) {
				n += k
			}
			mu.Lock()
			total += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if total != 100_003 {
		t.Fatalf("budget handed out %d messages, want 100003", total)
	}
	d := newBudget(&Config{Duration: time.Nanosecond}, time.Now().Add(-time.Second))
	if k := d.claim(5); k != 0 {
		t.Fatalf("a budget past its deadline handed out %d", k)
	}
}

func TestReportJSONFields(t *testing.T) {
	h := newHistogram()
	for us := int64(1); us <= 1000; us++ {
		h.RecordValue(us)
	}
	cfg := Config{Mode: ModeProduce, MsgSize: 100}
	b, err := json.Marshal(newReport(&cfg, 1000, 100_000, 2*time.Second, h))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"mode": "produce", "messages": 1000.0, "bytes": 100000.0, "seconds": 2.0,
		"msgs_per_sec": 500.0, "mb_per_sec": 0.05}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	lat, _ := m["latency_ms"].(map[string]any)
	for k, v := range map[string]float64{"p50": 0.5, "p90": 0.9, "p99": 0.99, "p999": 0.999, "max": 1.0} {
		if got, _ := lat[k].(float64); got < v*0.99 || got > v*1.01 {
			t.Errorf("latency_ms.%s = %v, want about %v", k, lat[k], v)
		}
	}
}

func TestConfigRejects(t *testing.T) {
	for _, c := range []Config{
		{Mode: "sideways"},
		{Mode: ModeProduce, Messages: 10, Duration: time.Second},
		{Mode: ModeProduce, MsgSize: 4},
		{Mode: ModeProduce, Acks: 3},
		{Mode: ModeE2E, Acks: proto.AcksNone},
		{Mode: ModeProduce, Rate: -1},
		{Mode: ModeProduce, Codec: 7},
	} {
		if _, err := Run(context.Background(), c); !errors.Is(err, ErrConfig) {
			t.Errorf("Run(%+v) = %v, want ErrConfig", c, err)
		}
	}
}

func TestRunTCP(t *testing.T) {
	rep, err := Run(context.Background(), Config{Mode: ModeTCP, Producers: 2, Messages: 10_000, MsgSize: 100, BatchBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Messages != 10_000 || rep.Bytes != 1_000_000 || rep.Latency.Count != 10_000/40 || rep.WriteBytes <= 4000 || rep.MBPerSec <= 0 {
		t.Fatalf("report %+v", rep)
	}
}

func TestGroupDigits(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -12345: "-12,345"} {
		if got := groupDigits(n); got != want {
			t.Errorf("groupDigits(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestRunRawlog(t *testing.T) {
	dir := t.TempDir()
	rep, err := Run(context.Background(), Config{Mode: ModeRawlog, Producers: 3, InFlight: 2, Messages: 12_000,
		MsgSize: 100, BatchBytes: 4000, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	// 40 records per request: 300 requests, one latency sample each.
	if rep.Messages != 12_000 || rep.Bytes != 1_200_000 || rep.Latency.Count != 300 || rep.WriteBytes <= 4000 ||
		rep.MBPerSec <= 0 || rep.Driver != "" || rep.LatencyOf != "request to answer" {
		t.Fatalf("report %+v", rep)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("files left in --dir: %v", left)
	}
	var text strings.Builder
	if err := rep.WriteText(&text); err != nil || !strings.Contains(text.String(), "3 connections × 2 in flight") {
		t.Fatalf("text %q, %v", text.String(), err)
	}
}

// TestRawlogServerWritesWholeRequests checks the baseline does the work it
// claims: every request's bytes land in the connection's file, in order,
// and each answer is the file's size after that request.
func TestRawlogServerWritesWholeRequests(t *testing.T) {
	dir := t.TempDir()
	const size = 1000
	s, err := newRawlogServer(dir, size, 1)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", s.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	for i := range 5 {
		req := bytes.Repeat([]byte{byte('a' + i)}, size)
		want = append(want, req...)
		// Written in two pieces: the server must wait for the whole request.
		if _, err := c.Write(req[:size/3]); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(req[size/3:]); err != nil {
			t.Fatal(err)
		}
		var answer [8]byte
		if _, err := io.ReadFull(c, answer[:]); err != nil {
			t.Fatal(err)
		}
		if got := binary.BigEndian.Uint64(answer[:]); got != uint64(len(want)) {
			t.Fatalf("answer %d after request %d, want %d", got, i, len(want))
		}
	}
	c.Close()
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "conn-0.log"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("file holds %d bytes (%v), want the %d bytes sent", len(got), err, len(want))
	}
}
