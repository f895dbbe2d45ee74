package reactor

import (
	"bufio"
	"context"
	"errors"
	"golang.org/x/sys/unix"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

// A connection whose unanswered requests exceed the limit is not read from
// until responses drain; every request is still answered.
func TestBackpressureStopsReadingAndRecovers(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Server.ConnMaxUnansweredBytes = 256 << 10
	srv := startServer(t, cfg)
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "bp", 1)
	var b proto.BatchBuilder
	b.Reset(nil)
	for b.Size() < 60<<10 {
		b.Append(1, nil, make([]byte, 1000), nil)
	}
	batch := b.Finish()
	const requests = 200
	nc, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	pausesBefore := metricValue(t, "ringmq_backpressure_pauses_total")
	// Write everything before reading anything back: the server must stop
	// reading, or it would buffer all 12 MB.
	writeErr := make(chan error, 1)
	go func() {
		var frame []byte
		for i := 0; i < requests; i++ {
			req := &proto.ProduceRequest{Acks: 1, Topics: []proto.ProduceTopic{{Name: []byte("bp"),
				Partitions: []proto.ProducePartition{{Records: batch}}}}}
			frame = proto.AppendRequest(frame[:0], uint32(i), req)
			if _, err := nc.Write(frame); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	}()
	br := bufio.NewReader(nc)
	seen := make(map[uint32]bool)
	for len(seen) < requests {
		var lenBuf [4]byte
		if _, err := io.ReadFull(br, lenBuf[:]); err != nil {
			t.Fatalf("after %d responses: %v", len(seen), err)
		}
		n, _ := proto.FrameLength(lenBuf[:])
		frame := make([]byte, n)
		copy(frame, lenBuf[:])
		if _, err := io.ReadFull(br, frame[4:]); err != nil {
			t.Fatal(err)
		}
		h, body, err := proto.ParseResponseHeader(frame)
		if err != nil || h.Error != proto.None {
			t.Fatalf("response: %v %v", err, h.Error)
		}
		var resp proto.ProduceResponse
		if err := resp.Decode(body); err != nil || resp.Topics[0].Partitions[0].Error != proto.None {
			t.Fatalf("produce response: %v %+v", err, resp)
		}
		seen[h.CorrelationID] = true
	}
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	if after := metricValue(t, "ringmq_backpressure_pauses_total"); after <= pausesBefore {
		t.Fatalf("backpressure never paused the connection (%v → %v)", pausesBefore, after)
	}
	if end := ringtest.ListOffset(t, c, "bp", 0, -1); end != uint64(requests*b.Count()) {
		t.Fatalf("log end %d, want %d", end, requests*b.Count())
	}
}

// Connections past max_connections are told TOO_MANY_CONNECTIONS and
// closed at once; the others work.
func TestMaxConnections(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Server.MaxConnections = 4
	srv := startServer(t, cfg)
	var ok, refused int
	var conns []*client.Conn
	for i := 0; i < 7; i++ {
		c, err := client.Dial(ringtest.Ctx(t), srv.Addr(), client.Options{})
		if err != nil {
			if !errors.Is(err, proto.TooManyConnections) || !strings.Contains(err.Error(), "too many connections") {
				t.Fatalf("connection %d past max_connections: %v, want TOO_MANY_CONNECTIONS", i, err)
			}
			refused++
			continue
		}
		ok++
		conns = append(conns, c)
	}
	if ok != 4 || refused != 3 {
		t.Fatalf("%d connections served, %d refused; want 4 and 3", ok, refused)
	}
	conns[0].Close()
	waitFor(t, "a slot to free up", 10*time.Second, func() bool { return srv.connCount.Load() == 3 })
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	if _, err := c.Metadata(ringtest.Ctx(t), &proto.MetadataRequest{}); err != nil {
		t.Fatalf("after a slot freed: %v", err)
	}
	for _, c := range conns[1:] {
		c.Close()
	}
}

// SO_REUSEPORT would let a second server share a busy port and split the
// connections; it must fail instead.
func TestSecondServerOnABusyAddressFails(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	cfg := testConfig(t, t.TempDir())
	cfg.Server.Listen = srv.Addr()
	second, err := NewServer(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		second.Shutdown(context.Background())
		t.Fatal("a second server bound the address of a running one")
	}
	if !errors.Is(err, unix.EADDRINUSE) {
		t.Fatalf("second server: %v, want EADDRINUSE", err)
	}
}

// A server restarted on the address of one that just stopped binds it,
// although the old server's connections linger in TIME_WAIT.
func TestRestartOnTheSameAddress(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	first, err := NewServer(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	c := ringtest.Dial(t, first.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "again", 1)
	produceOne(t, c, "again", 0, []byte("before"))
	// c stays open: the server closes it, so the server side lingers in
	// TIME_WAIT on the listen port.
	if err := first.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg.Server.Listen = first.Addr()
	second := startServer(t, cfg)
	c2 := ringtest.Dial(t, second.Addr(), client.Options{})
	if off := produceOne(t, c2, "again", 0, []byte("after")); off != 1 {
		t.Fatalf("after the restart: offset %d, want 1", off)
	}
}

// A connection handed off to another reactor is counted once: the open
// connections gauge and the server's count go back to where they were when
// it closes.
func TestHandedOffConnectionsAreCountedOnce(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	before := metricValue(t, "ringmq_connections_open")
	for shard := uint16(0); shard < 2; shard++ {
		c, err := client.Dial(ringtest.Ctx(t), srv.Addr(), client.Options{RequestShard: true, Shard: shard})
		if err != nil {
			t.Fatal(err)
		}
		if got := metricValue(t, "ringmq_connections_open"); got != before+1 {
			t.Fatalf("shard %d: %v connections open, want %v", shard, got, before+1)
		}
		c.Close()
		waitFor(t, "the connection to close", 10*time.Second, func() bool {
			return srv.connCount.Load() == 0 && metricValue(t, "ringmq_connections_open") == before
		})
	}
}
