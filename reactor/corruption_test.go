package reactor

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

// TestCorruptionIsReportedAndServedAround flips a byte in a sealed
// segment of a stopped server and removes the partition's checkpoint: the
// restarted server keeps every segment, reports the damage in topic
// describe and the metrics, answers CORRUPT_MESSAGE for the damaged
// offsets and serves every other record.
func TestCorruptionIsReportedAndServedAround(t *testing.T) {
	dir := shmTempDir(t)
	cfg := testConfig(t, dir)
	srv, err := NewServer(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	topic := "damaged"
	ringtest.CreateTopic(t, c, topic, 1, proto.ConfigSegmentBytes, "65536")
	const n = 80
	value := make([]byte, 4000)
	for i := range n {
		value[0] = byte(i)
		produceOne(t, c, topic, 0, value)
	}
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	pdir := filepath.Join(dir, "topics", topic, "0")
	logs, _ := filepath.Glob(filepath.Join(pdir, "*.log"))
	sort.Strings(logs)
	if len(logs) < 4 {
		t.Fatalf("want several segments, have %v", logs)
	}
	b, err := os.ReadFile(logs[1])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x10
	if err := os.WriteFile(logs[1], b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(pdir, "recovery-point")); err != nil {
		t.Fatal(err)
	}
	corruptBefore := metricValue(t, "ringmq_partitions_corrupt")

	srv = startServer(t, cfg)
	c = ringtest.Dial(t, srv.Addr(), client.Options{})
	if end := ringtest.ListOffset(t, c, topic, 0, -1); end != n {
		t.Fatalf("log end %d after recovery, want %d: data past the damage was dropped", end, n)
	}
	desc, err := c.DescribeTopic(ringtest.Ctx(t), &proto.DescribeTopicRequest{Name: topic})
	if err != nil {
		t.Fatal(err)
	}
	if st := desc.Partitions[0].Status; !strings.Contains(st, "corrupt") || !strings.Contains(st, logs[1]) {
		t.Errorf("describe status %q does not report the damage in %s", st, logs[1])
	}
	if got := metricValue(t, "ringmq_partitions_corrupt"); got != corruptBefore+1 {
		t.Errorf("ringmq_partitions_corrupt = %v, want %v", got, corruptBefore+1)
	}
	corrupt, readable := 0, 0
	for off := uint64(0); off < n; off++ {
		req := &proto.FetchRequest{MaxBytes: 1 << 20, Topics: []proto.FetchTopic{{Name: []byte(topic),
			Partitions: []proto.FetchPartition{{Partition: 0, Offset: off, PartitionMaxBytes: 1}}}}}
		resp, err := c.Fetch(ringtest.Ctx(t), req)
		if err != nil {
			t.Fatal(err)
		}
		switch fp := resp.Topics[0].Partitions[0]; fp.Error {
		case proto.CorruptMessage:
			corrupt++
		case proto.None:
			ringtest.DecodeBatches(t, fp.Records, off, func(o uint64, v []byte) {
				if o == off && v[0] == byte(off) {
					readable++
				}
			})
		default:
			t.Fatalf("fetch at %d: %v", off, fp.Error)
		}
	}
	t.Logf("%d records readable, %d answered CORRUPT_MESSAGE", readable, corrupt)
	if corrupt == 0 || corrupt > 2 || readable+corrupt != n {
		t.Fatalf("%d readable and %d corrupt of %d records", readable, corrupt, n)
	}
}
