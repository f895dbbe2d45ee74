package reactor

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

// openFds counts the process's open descriptors other than files under
// dataDir (segment files come and go with preallocation, which is not a
// leak).
func openFds(t testing.TB, dataDir string) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, dataDir) {
			continue
		}
		n++
	}
	return n
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronization
	}
}

// hostileFrame returns one malformed, truncated, oversized or random frame.
func hostileFrame(rng *rand.Rand, maxFrame int) []byte {
	corr := rng.Uint32()
	switch rng.IntN(7) {
	case 0: // random bytes
		b := make([]byte, rng.IntN(200))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	case 1: // oversized length field
		b := binary.LittleEndian.AppendUint32(nil, uint32(maxFrame+1+rng.IntN(1<<20)))
		return append(b, 1, 0, 0, 0)
	case 2: // length below the header size
		return binary.LittleEndian.AppendUint32(nil, uint32(rng.IntN(8)))
	case 3: // unknown API
		return proto.AppendRequestHeader(nil, proto.RequestHeader{API: proto.APIKey(100 + rng.IntN(1000)), CorrelationID: corr}, 0)
	case 4: // known API, random body
		body := make([]byte, rng.IntN(64))
		for i := range body {
			body[i] = byte(rng.Uint32())
		}
		// Not CreateTopic/DeleteTopic: a random body that happens to decode
		// must not create thousands of partitions.
		apis := []proto.APIKey{proto.APIHello, proto.APIMetadata, proto.APIDescribeTopic, proto.APIProduce,
			proto.APIFetch, proto.APIListOffsets, proto.APIOffsetCommit, proto.APIOffsetFetch, proto.APIListGroups}
		api := apis[rng.IntN(len(apis))]
		f := proto.AppendRequestHeader(nil, proto.RequestHeader{API: api, CorrelationID: corr}, len(body))
		return append(f, body...)
	case 5: // truncated valid produce
		var b proto.BatchBuilder
		b.Reset(nil)
		b.Append(1, nil, []byte("x"), nil)
		req := &proto.ProduceRequest{Acks: 1, Topics: []proto.ProduceTopic{{Name: []byte("h"),
			Partitions: []proto.ProducePartition{{Records: b.Finish()}}}}}
		f := proto.AppendRequest(nil, corr, req)
		return f[:rng.IntN(len(f))]
	default: // produce with a corrupted batch
		var b proto.BatchBuilder
		b.Reset(nil)
		b.Append(1, nil, []byte("hostile"), nil)
		batch := b.Finish()
		batch[rng.IntN(len(batch))] ^= byte(1 + rng.IntN(255))
		req := &proto.ProduceRequest{Acks: 1, Topics: []proto.ProduceTopic{{Name: []byte("h"),
			Partitions: []proto.ProducePartition{{Records: batch}}}}}
		return proto.AppendRequest(nil, corr, req)
	}
}

// TestHostileInput sends malformed frames from many connections, then
// runs the clients of hostileResources (repeated partitions, huge max_bytes
// and max_wait, unread responses, stalled and slow frames, lying batches)
// all at once; afterwards the server still answers, every connection,
// goroutine, descriptor and buffered byte is released, and the process's
// anonymous memory stayed under hostileRSSBudget throughout. Replay with
// RINGMQ_HOSTILE_SEED.
func TestHostileInput(t *testing.T) {
	dataDir := t.TempDir()
	srv := startServer(t, hostileConfig(t, dataDir))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "h", 2)
	c.Close()
	waitFor(t, "setup connection to close", 10*time.Second, func() bool { return srv.connCount.Load() == 0 })
	baseG, baseFd := runtime.NumGoroutine(), openFds(t, dataDir)
	mem := watchMemory(srv)

	seed := time.Now().UnixNano()
	if s, err := strconv.ParseInt(os.Getenv("RINGMQ_HOSTILE_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("seed %d", seed)
	const conns, frames = 500, 10_000 // 20 frames a connection: most connections die at their first framing error
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(seed), uint64(i)))
			nc, err := net.Dial("tcp", srv.Addr())
			if err != nil {
				t.Error(err)
				return
			}
			defer nc.Close()
			var buf bytes.Buffer
			for j := 0; j < frames/conns; j++ {
				buf.Write(hostileFrame(rng, srv.cfg.Server.MaxFrameBytes))
			}
			nc.SetDeadline(time.Now().Add(20 * time.Second))
			nc.Write(buf.Bytes()) // the server may close early; errors are expected
			nc.(*net.TCPConn).CloseWrite()
			var sink [4096]byte
			for {
				if _, err := nc.Read(sink[:]); err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	hostileResources(t, srv, dataDir, rand.New(rand.NewPCG(uint64(seed), 0)))

	c2 := ringtest.Dial(t, srv.Addr(), client.Options{})
	off := produceOne(t, c2, "h", 1, []byte("still-alive"))
	got := readAll(t, c2, "h", 2)
	if n := len(got[1]); n == 0 || string(got[1][n-1]) != "still-alive" || uint64(n-1) != off {
		t.Fatalf("after hostile input: partition 1 holds %d records, last %q", n, got[1])
	}
	c2.Close()
	waitFor(t, "connections to close", 20*time.Second, func() bool { return srv.connCount.Load() == 0 })
	mem.stop()
	t.Logf("peaks: anonymous RSS %d MiB (budget %d MiB), Go heap %d MiB, buffered %d MiB (max_buffered_bytes %d MiB)",
		mem.rssAnon>>20, rssBudget()>>20, mem.heap>>20, mem.buffered>>20, hostileServerBudget>>20)
	if mem.rssAnon > rssBudget() {
		t.Errorf("anonymous RSS peaked at %d MiB, over the %d MiB budget", mem.rssAnon>>20, rssBudget()>>20)
	}
	if b := srv.buffered.Load(); b != 0 {
		t.Errorf("%d bytes still counted as buffered with every connection closed", b)
	}
	waitFor(t, "goroutines and fds back to baseline", 20*time.Second, func() bool {
		return runtime.NumGoroutine() <= baseG && openFds(t, dataDir) <= baseFd
	})
}
