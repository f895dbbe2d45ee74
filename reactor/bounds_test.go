package reactor

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

// A partition listed many times in one fetch is refused: read once per
// listing, 300 listings of 16 MiB made a 4.8 GiB answer and the server
// panicked building its frame header.
func TestFetchRefusesRepeatedPartitions(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{MaxResponseBytes: 1 << 30})
	ringtest.CreateTopic(t, c, "dup", 2)
	ringtest.FillPartition(t, c, "dup", 0, 1<<20, 16<<20)
	var parts []proto.FetchPartition
	for i := 0; i < 300; i++ {
		parts = append(parts, proto.FetchPartition{Partition: 0, PartitionMaxBytes: 16 << 20})
	}
	for _, req := range []*proto.FetchRequest{
		{MaxBytes: 16 << 20, Topics: []proto.FetchTopic{{Name: []byte("dup"), Partitions: parts}}},
		// The same partition under a topic listed twice.
		{MaxBytes: 16 << 20, Topics: []proto.FetchTopic{
			{Name: []byte("dup"), Partitions: []proto.FetchPartition{{Partition: 1}, {Partition: 0}}},
			{Name: []byte("dup"), Partitions: []proto.FetchPartition{{Partition: 0}}}}},
	} {
		_, err := c.Fetch(ringtest.Ctx(t), req)
		if !errors.Is(err, proto.InvalidRequest) {
			t.Fatalf("fetch listing dup/0 twice: %v, want INVALID_REQUEST", err)
		}
	}
	// The connection and the server still serve.
	if got := readAll(t, c, "dup", 2); len(got[0]) == 0 {
		t.Fatal("partition 0 reads empty")
	}
}

// max_bytes applies to the whole response, capped by fetch_max_bytes, and
// max_wait is capped by fetch_max_wait.
func TestFetchTotalAndWaitAreCapped(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Server.FetchMaxBytes = 1 << 20
	cfg.Server.FetchColdReadBytes = 1 << 20
	cfg.Server.FetchMaxWait = time.Second
	srv := startServer(t, cfg)
	c := ringtest.Dial(t, srv.Addr(), client.Options{MaxResponseBytes: 1 << 30})
	ringtest.CreateTopic(t, c, "cap", 4)
	var parts []proto.FetchPartition
	for p := uint32(0); p < 4; p++ {
		ringtest.FillPartition(t, c, "cap", p, 64<<10, 2<<20)
		parts = append(parts, proto.FetchPartition{Partition: p, PartitionMaxBytes: 1 << 30})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := c.Fetch(ctx, &proto.FetchRequest{MaxBytes: 1<<32 - 1, MaxWaitMs: 1<<32 - 1, MinBytes: 1<<32 - 1,
		Topics: []proto.FetchTopic{{Name: []byte("cap"), Partitions: parts}}})
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	took := time.Since(start)
	if n := ringtest.RecordsBytes(resp); n == 0 || n > 1<<20 {
		t.Fatalf("fetch of 4 × 2 MiB with max_bytes 4 GiB: %d bytes of records, want 1 MiB at most", n)
	}
	if len(resp.Topics[0].Partitions[0].Records) == 0 {
		t.Fatal("the first partition got nothing")
	}
	if took < 900*time.Millisecond || took > 20*time.Second {
		t.Fatalf("a fetch with max_wait 49 days and fetch_max_wait 1s answered after %v", took)
	}
	// The first batch is returned even when larger than max_bytes.
	resp, err = c.Fetch(ringtest.Ctx(t), &proto.FetchRequest{MaxBytes: 1000,
		Topics: []proto.FetchTopic{{Name: []byte("cap"), Partitions: parts}}})
	if err != nil || len(resp.Topics[0].Partitions[0].Records) == 0 || ringtest.RecordsBytes(resp) > 128<<10 {
		t.Fatalf("fetch with max_bytes below one batch: %v, %d bytes", err, ringtest.RecordsBytes(resp))
	}
}

// Data out of page cache is read in chunks of fetch_cold_read_bytes: a
// fetch of a 32 MiB cold partition does not buffer 32 MiB.
func TestColdReadsAreChunked(t *testing.T) {
	dataDir := t.TempDir()
	cfg := testConfig(t, dataDir)
	cfg.Server.FetchColdReadBytes = 256 << 10
	srv := startServer(t, cfg)
	c := ringtest.Dial(t, srv.Addr(), client.Options{MaxResponseBytes: 1 << 30})
	ringtest.CreateTopic(t, c, "chunk", 1)
	ringtest.FillPartition(t, c, "chunk", 0, 64<<10, 32<<20)
	if _, resident := dropFromPageCache(t, filepath.Join(dataDir, "topics", "chunk", "0")); resident > 0 {
		t.Skipf("%d pages still in page cache after FADV_DONTNEED (tmpfs?): cannot make data cold here", resident)
	}
	before := metricValue(t, "ringmq_fetch_cold_read_bytes_total")
	resp, err := c.Fetch(ringtest.Ctx(t), &proto.FetchRequest{MaxBytes: 64 << 20, Topics: []proto.FetchTopic{{
		Name: []byte("chunk"), Partitions: []proto.FetchPartition{{Partition: 0, PartitionMaxBytes: 64 << 20}}}}})
	if err != nil {
		t.Fatal(err)
	}
	read := metricValue(t, "ringmq_fetch_cold_read_bytes_total") - before
	if n := ringtest.RecordsBytes(resp); n == 0 || n > 256<<10 || read > 256<<10 {
		t.Fatalf("cold fetch: %d bytes answered, %v read; want at most 256 KiB each", n, read)
	}
}

// A connection that sends part of a frame and stalls is closed after
// frame_timeout; one that sends nothing after idle_timeout.
func TestStalledAndIdleConnectionsAreClosed(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Server.FrameTimeout = 300 * time.Millisecond
	cfg.Server.IdleTimeout = 600 * time.Millisecond
	srv := startServer(t, cfg)
	stalled, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	frame := proto.AppendRequest(nil, 1, &proto.MetadataRequest{})
	stalled.Write(frame[:len(frame)-1])
	idle, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	for _, nc := range []net.Conn{stalled, idle} {
		nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		start := time.Now()
		if n, err := nc.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read %d bytes, %v; want EOF (closed by the server)", n, err)
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Fatalf("closed after %v", d)
		}
	}
	// A client that keeps talking is not idle.
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if _, err := c.Metadata(ringtest.Ctx(t), &proto.MetadataRequest{}); err != nil {
			t.Fatalf("active client: %v", err)
		}
	}
	waitFor(t, "connections to close", 10*time.Second, func() bool { return srv.connCount.Load() == 1 })
}

// The pool keeps a bounded number of bytes of free buffers.
func TestPoolRetentionIsBounded(t *testing.T) {
	var p bufPool
	var bufs [][]byte
	for i := 0; i < 100; i++ {
		bufs = append(bufs, p.get(1<<20))
	}
	for _, b := range bufs {
		p.put(b)
	}
	kept := 0
	for _, cl := range p.classes {
		for _, b := range cl {
			kept += cap(b)
		}
	}
	if kept > 32<<20 {
		t.Fatalf("pool keeps %d MiB of free buffers", kept>>20)
	}
}
