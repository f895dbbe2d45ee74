package reactor

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
	"golang.org/x/sys/unix"
)

// Hostile clients that try to make the server hold memory or connections,
// run by TestHostileInput: the limits they meet are the ones set here.
const (
	hostileConnBudget   = 32 << 20
	hostileServerBudget = 128 << 20
	// hostileRSSBudget bounds the test process's anonymous memory (the
	// server's heap and buffers, the clients' — a few hundred MiB of
	// responses and frames —, the Go runtime's) while the clients run,
	// twice that under the race detector. Without the bounds, the unread
	// cold fetches alone asked for 8 connections × 100 fetches × 2 × 8 MiB.
	hostileRSSBudget = 640 << 20
)

func rssBudget() int64 {
	if raceEnabled {
		return 2 * hostileRSSBudget
	}
	return hostileRSSBudget
}

func hostileConfig(t *testing.T, dataDir string) (cfg config.Config) {
	cfg = testConfig(t, dataDir)
	cfg.Server.ConnMaxUnansweredBytes = hostileConnBudget
	cfg.Server.MaxBufferedBytes = hostileServerBudget
	cfg.Server.FetchMaxWait = 2 * time.Second
	cfg.Server.FrameTimeout = 2 * time.Second
	cfg.Server.IdleTimeout = 4 * time.Second
	return cfg
}

// memPeaks samples the process's anonymous RSS, the Go heap and the
// server's buffered bytes until stopped.
type memPeaks struct {
	rssAnon, heap, buffered int64
	stopCh                  chan struct{}
	done                    chan struct{}
}

func watchMemory(srv *Server) *memPeaks {
	m := &memPeaks{stopCh: make(chan struct{}), done: make(chan struct{})}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		defer close(m.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			m.rssAnon = max(m.rssAnon, rssAnon())
			metrics.Read(sample)
			m.heap = max(m.heap, int64(sample[0].Value.Uint64()))
			m.buffered = max(m.buffered, srv.buffered.Load())
			select {
			case <-m.stopCh:
				return
			case <-tick.C:
			}
		}
	}()
	return m
}

func (m *memPeaks) stop() {
	close(m.stopCh)
	<-m.done
}

// rssAnon is the process's resident anonymous memory (file mappings, such
// as the segments' mmaps, are not counted).
func rssAnon() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "RssAnon:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// hostileResources runs every resource-abusing client at once and checks
// each gets the answer (or the close) it should.
func hostileResources(t *testing.T, srv *Server, dataDir string, rng *rand.Rand) {
	c := ringtest.Dial(t, srv.Addr(), client.Options{MaxResponseBytes: 1 << 30})
	ringtest.CreateTopic(t, c, "big", 2)
	ringtest.CreateTopic(t, c, "poison", 1)
	for p := uint32(0); p < 2; p++ {
		fillPartition(t, c, "big", p, 1<<20, 48<<20)
	}
	end := ringtest.ListOffset(t, c, "big", 0, -1)
	bigDir := filepath.Join(dataDir, "topics", "big")
	evict := func() {
		for p := 0; p < 2; p++ {
			dropFromPageCache(t, filepath.Join(bigDir, strconv.Itoa(p)))
		}
	}
	evict()

	pauses, timeouts := metricValue(t, "ringmq_backpressure_pauses_total"), metricValue(t, "ringmq_connections_timed_out_total")
	defer func() {
		t.Logf("hostile clients: %v connections paused, %v closed by frame or idle timeout",
			metricValue(t, "ringmq_backpressure_pauses_total")-pauses,
			metricValue(t, "ringmq_connections_timed_out_total")-timeouts)
	}()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	spawn := func(n int, fn func(i int)) {
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				fn(i)
			}()
		}
	}
	// Keep "big" out of page cache, so fetches of it allocate read buffers.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				evict()
			}
		}
	}()
	offsets := make([]uint64, 800)
	for i := range offsets {
		offsets[i] = rng.Uint64N(end)
	}
	// Unread responses: pipelined 16 MiB fetches of cold data, never read.
	spawn(8, func(i int) {
		nc := dialRaw(t, srv)
		defer nc.Close()
		var frames []byte
		for j := 0; j < 100; j++ {
			req := &proto.FetchRequest{MaxBytes: 32 << 20, Topics: []proto.FetchTopic{{Name: []byte("big"),
				Partitions: []proto.FetchPartition{
					{Partition: 0, Offset: offsets[i*100+j], PartitionMaxBytes: 16 << 20},
					{Partition: 1, Offset: offsets[i*100+j], PartitionMaxBytes: 16 << 20}}}}}
			frames = proto.AppendRequest(frames, uint32(j), req)
		}
		nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		nc.Write(frames) // blocks when the server stops reading; the idle timeout ends it
		<-stop
	})
	// A partition listed 2,000 times.
	spawn(4, func(i int) {
		parts := make([]proto.FetchPartition, 2000)
		for j := range parts {
			parts[j] = proto.FetchPartition{Partition: uint32(j % 2), Offset: offsets[j%len(offsets)], PartitionMaxBytes: 16 << 20}
		}
		_, err := c.Fetch(ringtest.Ctx(t), &proto.FetchRequest{MaxBytes: 1<<32 - 1,
			Topics: []proto.FetchTopic{{Name: []byte("big"), Partitions: parts}}})
		if !errors.Is(err, proto.InvalidRequest) {
			t.Errorf("fetch listing partitions 1,000 times: %v, want INVALID_REQUEST", err)
		}
	})
	// Huge max_bytes, max_wait and min_bytes.
	spawn(4, func(i int) {
		start := time.Now()
		resp, err := c.Fetch(ringtest.Ctx(t), &proto.FetchRequest{MaxBytes: 1<<32 - 1, MaxWaitMs: 1<<32 - 1,
			MinBytes: 1<<32 - 1, Topics: []proto.FetchTopic{{Name: []byte("big"), Partitions: []proto.FetchPartition{
				{Partition: 0, Offset: offsets[i], PartitionMaxBytes: 1<<32 - 1},
				{Partition: 1, Offset: offsets[i+1], PartitionMaxBytes: 1<<32 - 1}}}}})
		switch {
		case err != nil:
			t.Errorf("huge fetch: %v", err)
		case recordsBytes(resp) > int(srv.cfg.Server.FetchMaxBytes)+proto.MaxBatchSize:
			t.Errorf("huge fetch answered %d bytes of records", recordsBytes(resp))
		case time.Since(start) > time.Minute:
			t.Errorf("huge fetch answered after %v", time.Since(start))
		}
	})
	// Stalled partial frames: most of a 16 MiB frame, then nothing.
	stalled := proto.AppendRequestHeader(nil, proto.RequestHeader{API: proto.APIProduce, CorrelationID: 1},
		srv.cfg.Server.MaxFrameBytes-proto.RequestHeaderSize)
	stalled = append(stalled, make([]byte, 15<<20)...) // shared, read-only
	spawn(8, func(i int) {
		nc := dialRaw(t, srv)
		defer nc.Close()
		nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		nc.Write(stalled)
		expectClosed(t, nc, "stalled frame")
	})
	// Slow senders: one byte of a valid frame every 100 ms.
	spawn(4, func(i int) {
		nc := dialRaw(t, srv)
		defer nc.Close()
		frame := proto.AppendRequest(nil, 1, &proto.MetadataRequest{Topics: []string{"a-topic-name-long-enough"}})
		for _, b := range frame[:len(frame)-1] {
			if _, err := nc.Write([]byte{b}); err != nil {
				return // closed by the server
			}
			time.Sleep(100 * time.Millisecond) // the client's pace, not synchronization
		}
		expectClosed(t, nc, "slow sender")
	})
	// Batches with valid CRCs whose contents lie.
	spawn(1, func(int) {
		for _, batch := range craftedBatches() {
			c.Produce(ringtest.Ctx(t), &proto.ProduceRequest{Acks: 1, Topics: []proto.ProduceTopic{{
				Name: []byte("poison"), Partitions: []proto.ProducePartition{{Records: batch}}}}})
		}
		if _, err := c.Fetch(ringtest.Ctx(t), &proto.FetchRequest{MaxBytes: 1 << 20, Topics: []proto.FetchTopic{{
			Name: []byte("poison"), Partitions: []proto.FetchPartition{{PartitionMaxBytes: 1 << 20}}}}}); err != nil {
			t.Errorf("fetch of crafted batches: %v", err)
		}
	})
	// Let the unread fetches sit past the idle timeout, then end.
	time.Sleep(2 * srv.cfg.Server.IdleTimeout) // the scenario's length, not synchronization
	close(stop)
	wg.Wait()
	c.Close()
}

func dialRaw(t *testing.T, srv *Server) net.Conn {
	nc, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Error(err)
		return &net.TCPConn{}
	}
	return nc
}

// expectClosed reads (and drops) until the server closes nc.
func expectClosed(t *testing.T, nc net.Conn, what string) {
	nc.SetReadDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.Copy(io.Discard, bufio.NewReader(nc)); err != nil && !errors.Is(err, unix.ECONNRESET) {
		t.Errorf("%s: %v, want the server to close the connection", what, err)
	}
}

// craftedBatches are batches whose CRC is valid but whose contents lie:
// a record count above the records, a record length past the end, and
// garbage declared lz4-compressed.
func craftedBatches() [][]byte {
	var b proto.BatchBuilder
	one := func() []byte {
		b.Reset(nil)
		b.Append(1, []byte("k"), []byte("value"), nil)
		return bytes.Clone(b.Finish())
	}
	refinish := func(batch []byte, attrs uint16, count uint32) []byte {
		return proto.FinishBatch(batch, attrs, count, 1, 1, -1, -1, -1)
	}
	countLies := refinish(one(), 0, 5)
	lengthLies := one()
	lengthLies[proto.BatchHeaderSize] = 0x7e // first record's length varint: 63, past the end
	lengthLies = refinish(lengthLies, 0, 1)
	garbage := one()
	for i := proto.BatchHeaderSize; i < len(garbage); i++ {
		garbage[i] = byte(i * 7)
	}
	garbage = refinish(garbage, uint16(proto.CodecLZ4), 1)
	huge := one()
	binary.LittleEndian.PutUint32(huge[proto.BatchHeaderSize-4:], 1<<31) // record_count
	return [][]byte{countLies, lengthLies, garbage, refinish(huge, 0, 1<<31)}
}
