package reactor

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/internal/tlstest"
	"github.com/ringmq/ringmq/proto"
)

// tlsSetup is a server configuration with TLS on and a client
// configuration that trusts it.
type tlsSetup struct {
	cfg    config.Config
	ca     *tlstest.CA
	files  tlstest.Files
	client *tls.Config
}

func newTLSSetup(t *testing.T, mode config.TLSMode) tlsSetup {
	t.Helper()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ringmq-test-ca")
	files := ca.Write(t, dir, "server", ca.Issue(t, "server", true))
	cfg := testConfig(t, t.TempDir())
	cfg.Server.TLS = mode
	cfg.Server.TLSCert, cfg.Server.TLSKey = files.Cert, files.Key
	if mode == config.TLSMutual {
		cfg.Server.TLSCA = files.CA
	}
	cfg.Server.TLSHandshakeTimeout = 10 * time.Second
	return tlsSetup{cfg: cfg, ca: ca, files: files,
		client: &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}}
}

// TestTLSRoundTrip: produce, a fetch far larger than 16 KiB read from many
// segments, and a group commit, all over TLS.
func TestTLSRoundTrip(t *testing.T) {
	ts := newTLSSetup(t, config.TLSOn)
	srv := startServer(t, ts.cfg)
	c := ringtest.Dial(t, srv.Addr(), client.Options{TLS: ts.client, MaxResponseBytes: 64 << 20})
	ringtest.CreateTopic(t, c, "tls", 2, "segment.bytes", "4096")
	produceRecords(t, c, "tls", 2, 1, 12000, 40, proto.AcksAll)

	// One fetch of everything in partition 0: the response spans many
	// segments (views) and many TLS records.
	resp, err := c.Fetch(ringtest.Ctx(t), &proto.FetchRequest{MaxBytes: 8 << 20, Topics: []proto.FetchTopic{{
		Name: []byte("tls"), Partitions: []proto.FetchPartition{{Partition: 0, PartitionMaxBytes: 8 << 20}}}}})
	if err != nil {
		t.Fatal(err)
	}
	fp := resp.Topics[0].Partitions[0]
	if fp.Error != proto.None || len(fp.Records) < 100<<10 {
		t.Fatalf("fetch: %v, %d bytes; want over 100 KiB", fp.Error, len(fp.Records))
	}
	if n := ringtest.DecodeBatches(t, fp.Records, 0, func(uint64, []byte) {}); n != 6000 {
		t.Fatalf("fetch decoded up to offset %d, want 6000", n)
	}
	checkExactlyOnce(t, readAll(t, c, "tls", 2), 2, 12000)

	a := join(t, c, "g", proto.GroupTypeFailover, "m1", "tls")
	if code := commit(t, c, "g", "m1", a.MemberEpoch, "tls", 0, 42); code != proto.None {
		t.Fatalf("commit: %v", code)
	}
	if off := committed(t, c, "g", "tls", 0); off != 42 {
		t.Fatalf("committed %d, want 42", off)
	}

	// A plaintext client gets no answer from a TLS port.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if pc, err := client.Dial(ctx, srv.Addr(), client.Options{}); err == nil {
		pc.Close()
		t.Fatal("a plaintext client was served on a TLS port")
	}
}

// holdWriter holds a client's writes from the holdAt-th on, so the test
// decides how they reach the socket.
type holdWriter struct {
	net.Conn
	mu     sync.Mutex
	writes int
	holdAt int
	held   []byte
}

func (h *holdWriter) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.writes++
	if h.holdAt > 0 && h.writes >= h.holdAt {
		h.held = append(h.held, p...)
		return len(p), nil
	}
	return h.Conn.Write(p)
}

func (h *holdWriter) holdFromNext() {
	h.mu.Lock()
	h.holdAt = h.writes + 1
	h.mu.Unlock()
}

func (h *holdWriter) flush() error {
	h.mu.Lock()
	b := h.held
	h.held, h.holdAt = nil, 0
	h.mu.Unlock()
	_, err := h.Conn.Write(b)
	return err
}

func readResponse(t *testing.T, r io.Reader) (proto.ResponseHeader, []byte) {
	t.Helper()
	var lb [4]byte
	if _, err := io.ReadFull(r, lb[:]); err != nil {
		t.Fatalf("read response: %v", err)
	}
	n, _ := proto.FrameLength(lb[:])
	frame := make([]byte, n)
	copy(frame, lb[:])
	if _, err := io.ReadFull(r, frame[4:]); err != nil {
		t.Fatalf("read response: %v", err)
	}
	h, body, err := proto.ParseResponseHeader(frame)
	if err != nil {
		t.Fatal(err)
	}
	return h, body
}

func helloFrame(id uint32) []byte {
	return proto.AppendRequest(nil, id, &proto.HelloRequest{MinVersion: proto.ProtocolVersion,
		MaxVersion: proto.ProtocolVersion, ClientID: "raw", RequestedShard: proto.NoShard})
}

// rawTLS dials the server with the client's writes held from holdAt on.
func rawTLS(t *testing.T, addr string, cfg *tls.Config, holdAt int) (*tls.Conn, *holdWriter) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	hw := &holdWriter{Conn: nc, holdAt: holdAt}
	return tls.Client(hw, cfg), hw
}

// TestTLSPipelinedAfterHandshake: requests that arrive in the same
// segment as the client's Finished are served.
func TestTLSPipelinedAfterHandshake(t *testing.T) {
	ts := newTLSSetup(t, config.TLSOn)
	srv := startServer(t, ts.cfg)
	tc, hw := rawTLS(t, srv.Addr(), ts.client, 2) // the ClientHello goes out, the rest waits
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Write(append(helloFrame(7), helloFrame(8)...)); err != nil {
		t.Fatal(err)
	}
	if err := hw.flush(); err != nil { // Finished and both requests in one write
		t.Fatal(err)
	}
	for _, want := range []uint32{7, 8} {
		if h, _ := readResponse(t, tc); h.CorrelationID != want || h.Error != proto.None {
			t.Fatalf("response %+v, want correlation id %d", h, want)
		}
	}
}

// TestTLSFlippedByteEndsWithAlert: a corrupted record closes the
// connection after an alert.
func TestTLSFlippedByteEndsWithAlert(t *testing.T) {
	ts := newTLSSetup(t, config.TLSOn)
	srv := startServer(t, ts.cfg)
	tc, hw := rawTLS(t, srv.Addr(), ts.client, 0)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	tc.Write(helloFrame(1))
	if h, _ := readResponse(t, tc); h.CorrelationID != 1 {
		t.Fatalf("response %+v", h)
	}
	hw.holdFromNext()
	tc.Write(helloFrame(2))
	hw.mu.Lock()
	hw.held[len(hw.held)-2] ^= 0x01
	hw.mu.Unlock()
	if err := hw.flush(); err != nil {
		t.Fatal(err)
	}
	_, err := tc.Read(make([]byte, 64))
	if err == nil || !strings.Contains(err.Error(), "bad record MAC") {
		t.Fatalf("read after a flipped byte: %v, want the bad record MAC alert", err)
	}
	// And the server closed the socket.
	buf := make([]byte, 64)
	for {
		_, err := hw.Conn.Read(buf)
		if err != nil {
			if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
				t.Fatalf("socket after the alert: %v, want EOF", err)
			}
			break
		}
	}
}

// TestMutualTLSRefusesBadClientCerts: without a certificate, or with one
// from another CA, no request is served; with a good one it is.
func TestMutualTLSRefusesBadClientCerts(t *testing.T) {
	ts := newTLSSetup(t, config.TLSMutual)
	srv := startServer(t, ts.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	other := tlstest.NewCA(t, "other")
	for name, certs := range map[string][]tls.Certificate{
		"no certificate":            nil,
		"certificate of another CA": {other.Issue(t, "mallory", false)},
	} {
		cfg := ts.client.Clone()
		cfg.Certificates = certs
		if c, err := client.Dial(ctx, srv.Addr(), client.Options{TLS: cfg}); err == nil {
			c.Close()
			t.Errorf("%s: served", name)
		}
	}
	cfg := ts.client.Clone()
	cfg.Certificates = []tls.Certificate{ts.ca.Issue(t, "alice", false)}
	c := ringtest.Dial(t, srv.Addr(), client.Options{TLS: cfg})
	ringtest.CreateTopic(t, c, "m", 1)
	if off := produceOne(t, c, "m", 0, []byte("v")); off != 0 {
		t.Fatalf("offset %d", off)
	}
}

// TestTLSShardHandoff: a TLS connection asking for the other reactor is
// moved there with its TLS state and keeps working.
func TestTLSShardHandoff(t *testing.T) {
	ts := newTLSSetup(t, config.TLSOn)
	srv := startServer(t, ts.cfg)
	c := ringtest.Dial(t, srv.Addr(), client.Options{TLS: ts.client})
	ringtest.CreateTopic(t, c, "h", 4)
	moved := 0
	for i := 0; i < 8; i++ {
		for shard := uint16(0); shard < 2; shard++ {
			hc := ringtest.Dial(t, srv.Addr(), client.Options{TLS: ts.client, RequestShard: true, Shard: shard})
			if h := hc.Hello(); h.Shard != shard {
				t.Fatalf("asked for shard %d, served by %d", shard, h.Shard)
			} else if h.Moved {
				moved++
			}
			produceOne(t, hc, "h", uint32(shard), bytes.Repeat([]byte("x"), 40000))
			if got := ringtest.ReadPartition(t, hc, "h", uint32(shard)); len(got) == 0 {
				t.Fatal("nothing read back")
			}
			hc.Close()
		}
	}
	if moved == 0 {
		t.Fatal("no connection was handed off")
	}
}

// TestKTLSOnRefusesToStart: server.ktls = "on" refuses to start where the
// kernel has no kTLS (and, until the kTLS data path is built, where it
// has); "auto" starts with user-space TLS.
func TestKTLSOnRefusesToStart(t *testing.T) {
	ts := newTLSSetup(t, config.TLSOn)
	ts.cfg.Server.KTLS = config.KTLSOn
	if srv, err := NewServer(ts.cfg, testLogger()); err == nil {
		srv.Shutdown(context.Background())
		t.Fatal("NewServer with ktls = on succeeded")
	} else if !strings.Contains(err.Error(), `server.ktls = "on"`) {
		t.Fatalf("NewServer: %v", err)
	}
	ts.cfg.Server.KTLS = config.KTLSAuto
	srv := startServer(t, ts.cfg)
	ringtest.Dial(t, srv.Addr(), client.Options{TLS: ts.client})
}

// TestTLSOutputBufferIsCounted: the ciphertext buffer a TLS connection
// borrows while it sends counts in the server's buffered memory, and is
// released once the connection is idle again.
func TestTLSOutputBufferIsCounted(t *testing.T) {
	ts := newTLSSetup(t, config.TLSOn)
	srv := startServer(t, ts.cfg)
	c := ringtest.Dial(t, srv.Addr(), client.Options{TLS: ts.client})
	ringtest.CreateTopic(t, c, "buf", 1)
	for i := 0; i < 24; i++ { // 24 MiB: more than the socket buffers take
		produceOne(t, c, "buf", 0, bytes.Repeat([]byte("y"), 1<<20))
	}
	tc, _ := rawTLS(t, srv.Addr(), ts.client, 0)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	// A fetch answered while the client does not read: the response
	// stalls once the socket buffers are full, its TLS buffer lent.
	req := proto.AppendRequest(nil, 9, &proto.FetchRequest{MaxBytes: 32 << 20, Topics: []proto.FetchTopic{{
		Name: []byte("buf"), Partitions: []proto.FetchPartition{{Partition: 0, PartitionMaxBytes: 32 << 20}}}}})
	base := srv.buffered.Load()
	if _, err := tc.Write(req); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for srv.buffered.Load()-base < tlsChunkOut {
		if time.Now().After(deadline) {
			t.Fatalf("buffered grew by %d, want at least the %d-byte TLS buffer", srv.buffered.Load()-base, tlsChunkOut)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
	// The fetch may stop short of all 24 MiB (fetch budgets under memory
	// pressure); it stalled above, which is what this test needs.
	if h, body := readResponse(t, tc); h.CorrelationID != 9 || h.Error != proto.None || len(body) == 0 {
		t.Fatalf("response %+v, %d bytes", h, len(body))
	}
	for srv.buffered.Load() != base {
		if time.Now().After(deadline) {
			t.Fatalf("buffered %d after the response was read, want %d", srv.buffered.Load(), base)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
}
