package reactor

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

var zcSeed = flag.Uint64("zcseed", 0, "seed of TestZeroCopyFetchIdenticalToPlain (0: from the clock)")

// zcConfig is the test server sending every response of 1 KiB or more
// with sendmsg_zc (send_zc "on"; loopback copies, which "on" ignores).
func zcConfig(t testing.TB, dir string, mode config.SendZC) config.Config {
	cfg := testConfig(t, dir)
	cfg.Reactor.SendZC = mode
	cfg.Reactor.SendZCMinBytes = 1024
	return cfg
}

// needSendZC skips a test on a kernel without sendmsg_zc and
// IORING_SEND_ZC_REPORT_USAGE (Linux 6.2).
func needSendZC(t *testing.T, srv *Server) {
	t.Helper()
	for _, r := range srv.reactors {
		if !r.zcOn {
			t.Skip("kernel lacks IORING_OP_SENDMSG_ZC: the server sends plainly")
		}
	}
}

func zcSends(t *testing.T) float64 {
	return metricOrZero(t, `ringmq_sends_total{path="zerocopy"}`) + metricOrZero(t, `ringmq_sends_total{path="zerocopy_copied"}`)
}

// fillRandom produces batches of random records (1 to 40 of up to 3,000
// bytes) until partition p holds at least total bytes.
func fillRandom(t testing.TB, c *client.Conn, topic string, p uint32, rng *rand.Rand, total int) {
	t.Helper()
	var b proto.BatchBuilder
	for sent := 0; sent < total; {
		b.Reset(nil)
		for n := 1 + rng.IntN(40); n > 0; n-- {
			v := make([]byte, rng.IntN(3000))
			for i := range v {
				v[i] = byte(rng.Uint32())
			}
			b.Append(1, nil, v, nil)
		}
		batch := b.Finish()
		resp, err := c.Produce(ringtest.Ctx(t), &proto.ProduceRequest{Acks: 1, Topics: []proto.ProduceTopic{{
			Name: []byte(topic), Partitions: []proto.ProducePartition{{Partition: p, Records: batch}}}}})
		if err != nil || resp.Topics[0].Partitions[0].Error != proto.None {
			t.Fatalf("produce: %v %+v", err, resp)
		}
		sent += len(batch)
	}
}

// fetchFrame encodes a fetch request frame with correlation id corr.
func fetchFrame(corr uint32, req *proto.FetchRequest) []byte {
	body := req.AppendTo(nil)
	frame := proto.AppendRequestHeader(nil, proto.RequestHeader{API: proto.APIFetch, CorrelationID: corr}, len(body))
	return append(frame, body...)
}

// readFrame reads one whole response frame from nc into buf (grown as
// needed) and returns it.
func readFrame(nc io.Reader, buf []byte) ([]byte, error) {
	if cap(buf) < proto.FrameLengthSize {
		buf = make([]byte, proto.FrameLengthSize)
	}
	buf = buf[:proto.FrameLengthSize]
	if _, err := io.ReadFull(nc, buf); err != nil {
		return nil, err
	}
	n, _ := proto.FrameLength(buf)
	if cap(buf) < n {
		buf = append(make([]byte, 0, n), buf...)
	}
	buf = buf[:n]
	_, err := io.ReadFull(nc, buf[proto.FrameLengthSize:])
	return buf, err
}

func dialRawConn(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	return nc.(*net.TCPConn)
}

// randomFetches builds n fetch requests over the partitions of topic, each
// listing 1 to 6 distinct partitions at random offsets below their ends,
// with random per-partition and total limits.
func randomFetches(rng *rand.Rand, topic string, ends []uint64, n int) []*proto.FetchRequest {
	reqs := make([]*proto.FetchRequest, n)
	for i := range reqs {
		req := &proto.FetchRequest{MaxBytes: uint32(1024 + rng.IntN(4<<20)), Topics: []proto.FetchTopic{{Name: []byte(topic)}}}
		for _, p := range rng.Perm(len(ends))[:1+rng.IntN(len(ends))] {
			req.Topics[0].Partitions = append(req.Topics[0].Partitions, proto.FetchPartition{
				Partition: uint32(p), Offset: rng.Uint64N(ends[p] + 1), PartitionMaxBytes: uint32(1 + rng.IntN(1<<20))})
		}
		reqs[i] = req
	}
	return reqs
}

// TestZeroCopyFetchIdenticalToPlain: fetch responses sent with sendmsg_zc
// (from the mmap'd segments and the header buffers, held until the
// notification) are byte for byte those of plain sendmsg, over many
// partitions, offsets and limits; also when the client reads slowly
// through a small receive buffer, so that sends end part-way through a
// frame and the rest follows in later sends.
func TestZeroCopyFetchIdenticalToPlain(t *testing.T) {
	seed := *zcSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -zcseed %d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()
	cfg := zcConfig(t, dir, config.SendZCOff)
	cfg.Storage.SegmentBytes = 256 << 10 // views from several segments
	srv := startServer(t, cfg)
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	const parts = 6
	ringtest.CreateTopic(t, c, "zc", parts)
	ends := make([]uint64, parts)
	for p := range uint32(parts) {
		fillRandom(t, c, "zc", p, rng, 300<<10+rng.IntN(600<<10))
		ends[p] = ringtest.ListOffset(t, c, "zc", p, -1)
	}
	reqs := randomFetches(rng, "zc", ends, 60)

	// The plain answers.
	want := make([][]byte, len(reqs))
	nc := dialRawConn(t, srv.Addr())
	large := 0
	for i, req := range reqs {
		if _, err := nc.Write(fetchFrame(uint32(i), req)); err != nil {
			t.Fatal(err)
		}
		f, err := readFrame(nc, nil)
		if err != nil {
			t.Fatalf("fetch %d: %v", i, err)
		}
		want[i] = f
		if len(f) >= cfg.Reactor.SendZCMinBytes {
			large++
		}
	}
	nc.Close()

	cfg.Reactor.SendZC = config.SendZCOn
	srv = restart(t, srv, cfg)
	needSendZC(t, srv)

	// One at a time: each response is one send.
	zc0 := zcSends(t)
	nc = dialRawConn(t, srv.Addr())
	var buf []byte
	for i, req := range reqs {
		if _, err := nc.Write(fetchFrame(uint32(i), req)); err != nil {
			t.Fatal(err)
		}
		var err error
		if buf, err = readFrame(nc, buf); err != nil {
			t.Fatalf("fetch %d: %v", i, err)
		}
		if !bytes.Equal(buf, want[i]) {
			t.Fatalf("fetch %d (%+v): zero-copy response of %d bytes differs from the plain one of %d", i, req, len(buf), len(want[i]))
		}
	}
	waitFor(t, "notifications of the zero-copy sends", 10*time.Second, func() bool { return zcSends(t)-zc0 >= float64(large) })

	// All at once, read slowly through a 4 KiB receive buffer: the sends
	// come back short and continue from the middle of a frame.
	partial0 := srv.partialSends.Load()
	nc = dialRawConn(t, srv.Addr())
	nc.SetReadBuffer(64 << 10)
	var reqBytes []byte
	for i, req := range reqs {
		reqBytes = append(reqBytes, fetchFrame(uint32(i), req)...)
	}
	go nc.Write(reqBytes)
	got := make(map[uint32][]byte)
	for range reqs {
		f, err := readFrame(slowReader{nc}, nil)
		if err != nil {
			t.Fatal(err)
		}
		h, _, err := proto.ParseResponseHeader(f)
		if err != nil {
			t.Fatal(err)
		}
		got[h.CorrelationID] = f
	}
	for i := range reqs {
		if !bytes.Equal(got[uint32(i)], want[i]) {
			t.Fatalf("pipelined fetch %d: zero-copy response of %d bytes differs from the plain one of %d", i, len(got[uint32(i)]), len(want[i]))
		}
	}
	if n := srv.partialSends.Load() - partial0; n == 0 {
		t.Fatal("no send was short: the partial-send path did not run")
	} else {
		t.Logf("%d short sends continued mid-frame", n)
	}
}

// slowReader reads at most 1 KiB at a time.
type slowReader struct{ net.Conn }

func (s slowReader) Read(b []byte) (int, error) { return s.Conn.Read(b[:min(len(b), 1024)]) }

// segmentMapped reports whether a mapping of a file whose path starts with
// prefix is in this process's address space ("(deleted)" once unlinked).
func segmentMapped(t *testing.T, prefix string) bool {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(maps), prefix)
}

// TestZeroCopyKeepsDeletedSegmentMappedUntilNotification: retention deletes
// the segment a zero-copy fetch response was sent from while the kernel
// may still read its pages (the notification has not arrived): the
// segment stays mapped until the notification, and is unmapped after it.
func TestZeroCopyKeepsDeletedSegmentMappedUntilNotification(t *testing.T) {
	dir := t.TempDir()
	cfg := zcConfig(t, dir, config.SendZCOn)
	cfg.Reactor.Cores = 1
	cfg.Storage.SegmentBytes = 64 << 10
	cfg.Storage.RetentionBytes = 256 << 10
	cfg.Storage.RetentionCheckInterval = 20 * time.Millisecond
	srv := startServer(t, cfg)
	needSendZC(t, srv)
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "ret", 1)
	ringtest.FillPartition(t, c, "ret", 0, 16<<10, 128<<10)
	first := filepath.Join(dir, "topics", "ret", "0", fmt.Sprintf("%020d.log", 0))

	srv.holdNotifs.Store(true)
	t.Cleanup(func() { srv.holdNotifs.Store(false) })
	nc := dialRawConn(t, srv.Addr())
	req := &proto.FetchRequest{MaxBytes: 1 << 20, Topics: []proto.FetchTopic{{Name: []byte("ret"),
		Partitions: []proto.FetchPartition{{PartitionMaxBytes: 1 << 20}}}}}
	if _, err := nc.Write(fetchFrame(1, req)); err != nil {
		t.Fatal(err)
	}
	resp, err := readFrame(nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	var fr proto.FetchResponse
	if _, body, err := proto.ParseResponseHeader(resp); err != nil || fr.Decode(body) != nil {
		t.Fatalf("response: %v", err)
	}
	if n := ringtest.RecordsBytes(&fr); n < 16<<10 {
		t.Fatalf("fetched %d bytes, want the first segment's batches", n)
	}

	// Retention deletes the first segment once the partition grows.
	ringtest.FillPartition(t, c, "ret", 0, 16<<10, 512<<10)
	waitFor(t, "retention to delete the first segment", 20*time.Second, func() bool {
		_, err := os.Stat(first)
		return os.IsNotExist(err)
	})
	if !segmentMapped(t, first) {
		t.Fatal("the deleted segment was unmapped while a zero-copy send of it awaited its notification")
	}
	srv.holdNotifs.Store(false)
	waitFor(t, "the segment to be unmapped after the notification", 20*time.Second, func() bool {
		return !segmentMapped(t, first)
	})
}

// TestZeroCopyCloseMidSend: a client that sends a fetch and closes its
// connection at once leaves a zero-copy send in flight; the connection,
// its request and views are released only after the notification, and the
// server goes on serving.
func TestZeroCopyCloseMidSend(t *testing.T) {
	cfg := zcConfig(t, t.TempDir(), config.SendZCOn)
	cfg.Reactor.Cores = 1
	srv := startServer(t, cfg)
	needSendZC(t, srv)
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "close", 1)
	ringtest.FillPartition(t, c, "close", 0, 64<<10, 8<<20)
	base := srv.connCount.Load()

	srv.holdNotifs.Store(true)
	t.Cleanup(func() { srv.holdNotifs.Store(false) })
	req := &proto.FetchRequest{MaxBytes: 8 << 20, Topics: []proto.FetchTopic{{Name: []byte("close"),
		Partitions: []proto.FetchPartition{{PartitionMaxBytes: 8 << 20}}}}}
	for i := range 5 {
		nc := dialRawConn(t, srv.Addr())
		nc.SetReadBuffer(4 << 10)
		if _, err := nc.Write(fetchFrame(uint32(i), req)); err != nil {
			t.Fatal(err)
		}
		// Read a little, so the send has begun, then go: with a reset
		// (odd i) the server's send fails; with a FIN it finds no reader.
		var b [100]byte
		if _, err := io.ReadFull(nc, b[:]); err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			nc.SetLinger(0)
		}
		nc.Close()
	}
	waitFor(t, "the server to see the zero-copy sends", 10*time.Second, func() bool {
		return heldNotifCount(srv) >= 5
	})
	if n := srv.connCount.Load(); n != base+5 {
		t.Fatalf("%d connections open, want %d: a closed connection was freed before its notifications", n, base+5)
	}
	// Each request's frame (a 512-byte pool buffer) is held until its
	// notification.
	held := srv.buffered.Load()
	srv.holdNotifs.Store(false)
	waitFor(t, "the closed connections and their requests to be freed", 10*time.Second, func() bool {
		return srv.connCount.Load() == base && srv.buffered.Load() <= held-5*512
	})
	// Still serving.
	var resp proto.FetchResponse
	if err := c.Do(ringtest.Ctx(t), req, &resp); err != nil || ringtest.RecordsBytes(&resp) == 0 {
		t.Fatalf("fetch after the closes: %v", err)
	}
}

// heldNotifCount asks each reactor (through its mailbox-free test seam:
// the count is read after the loop turn that held them) how many
// notifications it holds.
func heldNotifCount(srv *Server) int {
	return int(srv.heldNotifCount.Load())
}

// TestSendZCAutoGoesPlainWhenTheKernelCopies: with send_zc "auto", a
// connection whose zero-copy notification says the kernel copied (always,
// on loopback) sends plainly from then on; "off" never sends zero-copy.
func TestSendZCAutoGoesPlainWhenTheKernelCopies(t *testing.T) {
	for _, mode := range []config.SendZC{config.SendZCAuto, config.SendZCOff} {
		t.Run(mode.String(), func(t *testing.T) {
			cfg := zcConfig(t, t.TempDir(), mode)
			cfg.Reactor.Cores = 1
			srv := startServer(t, cfg)
			if mode == config.SendZCAuto {
				needSendZC(t, srv)
			}
			c := ringtest.Dial(t, srv.Addr(), client.Options{})
			ringtest.CreateTopic(t, c, "auto", 1)
			ringtest.FillPartition(t, c, "auto", 0, 64<<10, 1<<20)
			req := &proto.FetchRequest{MaxBytes: 1 << 20, Topics: []proto.FetchTopic{{Name: []byte("auto"),
				Partitions: []proto.FetchPartition{{PartitionMaxBytes: 1 << 20}}}}}
			zc0, copied0 := zcSends(t), metricOrZero(t, `ringmq_sends_total{path="zerocopy_copied"}`)
			plain0 := metricOrZero(t, `ringmq_sends_total{path="plain"}`)
			nc := dialRawConn(t, srv.Addr())
			const fetches = 20
			for i := range fetches {
				if _, err := nc.Write(fetchFrame(uint32(i), req)); err != nil {
					t.Fatal(err)
				}
				if _, err := readFrame(nc, nil); err != nil {
					t.Fatal(err)
				}
			}
			zc, plain := zcSends(t)-zc0, metricOrZero(t, `ringmq_sends_total{path="plain"}`)-plain0
			t.Logf("%s: %v zero-copy sends (%v copied), %v plain", mode, zc,
				metricOrZero(t, `ringmq_sends_total{path="zerocopy_copied"}`)-copied0, plain)
			switch {
			case mode == config.SendZCOff && zc != 0:
				t.Fatalf("off: %v zero-copy sends", zc)
			case mode == config.SendZCAuto && (zc < 1 || zc > 3):
				// The next send may leave before the first notification is in.
				t.Fatalf("auto over loopback: %v zero-copy sends, want 1 to 3", zc)
			case plain < fetches-3:
				t.Fatalf("%v plain sends, want at least %d", plain, fetches-3)
			}
		})
	}
}

// TestSendZCFallsBackWithoutKernelSupport: send_zc "on" on a kernel
// without sendmsg_zc (the seam noSendZC stands in for the probe's answer)
// serves fetches with plain sends.
func TestSendZCFallsBackWithoutKernelSupport(t *testing.T) {
	cfg := zcConfig(t, t.TempDir(), config.SendZCOn)
	srv, err := NewServer(cfg, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	srv.noSendZC = true
	startServerWith(t, srv)
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "nozc", 1)
	ringtest.FillPartition(t, c, "nozc", 0, 64<<10, 1<<20)
	zc0 := zcSends(t)
	var resp proto.FetchResponse
	req := &proto.FetchRequest{MaxBytes: 1 << 20, Topics: []proto.FetchTopic{{Name: []byte("nozc"),
		Partitions: []proto.FetchPartition{{PartitionMaxBytes: 1 << 20}}}}}
	if err := c.Do(context.Background(), req, &resp); err != nil || ringtest.RecordsBytes(&resp) < 512<<10 {
		t.Fatalf("fetch: %v, %d bytes", err, ringtest.RecordsBytes(&resp))
	}
	if zc := zcSends(t) - zc0; zc != 0 {
		t.Fatalf("%v zero-copy sends on a kernel without them", zc)
	}
}

// TestZeroCopyFetchDoesNotAllocate: a warm fetch answered with sendmsg_zc,
// notification and release included, allocates nothing in the server
// (the raw client below does not allocate either).
func TestZeroCopyFetchDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	cfg := zcConfig(t, t.TempDir(), config.SendZCOn)
	cfg.Reactor.Cores = 1
	srv := startServer(t, cfg)
	needSendZC(t, srv)
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "alloc", 1)
	ringtest.FillPartition(t, c, "alloc", 0, 64<<10, 1<<20)
	req := fetchFrame(1, &proto.FetchRequest{MaxBytes: 256 << 10, Topics: []proto.FetchTopic{{Name: []byte("alloc"),
		Partitions: []proto.FetchPartition{{Offset: 3, PartitionMaxBytes: 256 << 10}}}}})
	nc := dialRawConn(t, srv.Addr())
	buf := make([]byte, 1<<20)
	zc0 := zcSends(t)
	var err error
	fetch := func() {
		if _, err = nc.Write(req); err != nil {
			t.Fatal(err)
		}
		if buf, err = readFrame(nc, buf); err != nil || len(buf) < 128<<10 {
			t.Fatalf("fetch: %v, %d bytes", err, len(buf))
		}
	}
	for range 50 { // warm the pools
		fetch()
	}
	allocs := testing.AllocsPerRun(200, fetch)
	waitFor(t, "every response's notification", 10*time.Second, func() bool { return zcSends(t)-zc0 >= 251 })
	if allocs > 0 {
		t.Fatalf("%v allocations per zero-copy fetch, want 0", allocs)
	}
}

// TestLargeProduceDoesNotAllocate: a produce frame larger than a receive
// buffer arrives in pieces and collects in a pooled buffer of its size,
// which becomes the request's: once warm, nothing is allocated (the
// connection's partial-frame buffer used to grow, and be dropped, for
// every such frame).
func TestLargeProduceDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	cfg := testConfig(t, t.TempDir())
	cfg.Reactor.Cores = 1
	cfg.Storage.SegmentBytes = 256 << 20 // no roll during the test
	srv := startServer(t, cfg)
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "big", 1)
	var b proto.BatchBuilder
	b.Reset(nil)
	for b.Size() < 100<<10 { // > recv_buffer_size (64 KiB)
		b.Append(1, nil, make([]byte, 1000), nil)
	}
	body := (&proto.ProduceRequest{Acks: 1, Topics: []proto.ProduceTopic{{Name: []byte("big"),
		Partitions: []proto.ProducePartition{{Records: b.Finish()}}}}}).AppendTo(nil)
	frame := append(proto.AppendRequestHeader(nil, proto.RequestHeader{API: proto.APIProduce, CorrelationID: 1}, len(body)), body...)
	nc := dialRawConn(t, srv.Addr())
	buf := make([]byte, 4096)
	var err error
	produce := func() {
		if _, err = nc.Write(frame); err != nil {
			t.Fatal(err)
		}
		if buf, err = readFrame(nc, buf); err != nil {
			t.Fatal(err)
		}
	}
	for range 20 {
		produce()
	}
	if allocs := testing.AllocsPerRun(100, produce); allocs > 0 {
		t.Fatalf("%v allocations per 100 KiB produce, want 0", allocs)
	}
}
