package ringtest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
	"golang.org/x/sys/unix"
)

// Hostile clients: what a client could do to make a server hold memory or
// connections. The reactor's TestHostileInput runs them against an
// in-process server, the e2e tests against the binary, each measuring
// memory its own way.

// HostileLimits are the server settings the hostile clients check their
// answers against.
type HostileLimits struct {
	MaxFrameBytes int
	FetchMaxBytes int64
	IdleTimeout   time.Duration
}

// FillPartition produces batches of about batchBytes until the partition
// holds at least total bytes.
func FillPartition(t testing.TB, c *client.Conn, topic string, p uint32, batchBytes, total int) {
	t.Helper()
	var b proto.BatchBuilder
	for sent := 0; sent < total; {
		b.Reset(nil)
		for b.Size() < batchBytes {
			b.Append(1, nil, make([]byte, 4000), nil)
		}
		batch := b.Finish()
		resp, err := c.Produce(Ctx(t), &proto.ProduceRequest{Acks: 1, Topics: []proto.ProduceTopic{{
			Name: []byte(topic), Partitions: []proto.ProducePartition{{Partition: p, Records: batch}}}}})
		if err != nil || resp.Topics[0].Partitions[0].Error != proto.None {
			t.Fatalf("produce: %v %+v", err, resp)
		}
		sent += len(batch)
	}
}

// RecordsBytes is the number of records bytes in a fetch response.
func RecordsBytes(resp *proto.FetchResponse) int {
	n := 0
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			n += len(p.Records)
		}
	}
	return n
}

// Evict writes back every segment file of dir and drops it from the page
// cache (best effort: a tmpfs keeps it).
func Evict(dir string) {
	names, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		unix.Fdatasync(int(f.Fd()))
		unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		f.Close()
	}
}

// RunHostileClients runs every resource-abusing client at once against
// the server at addr (data directory dataDir) and checks each gets the
// answer, or the close, it should: a partition listed 2,000 times in one
// fetch, max_bytes, max_wait and min_bytes of 2^32-1, connections
// pipelining 16 MiB fetches of data kept out of page cache and never
// reading the answers, 15 MiB of a 16 MiB frame then a stall, slow
// senders, and batches with valid CRCs whose contents lie. It returns
// after twice the idle timeout.
func RunHostileClients(t *testing.T, addr, dataDir string, lim HostileLimits, rng *rand.Rand) {
	c := Dial(t, addr, client.Options{MaxResponseBytes: 1 << 30})
	CreateTopic(t, c, "big", 2)
	CreateTopic(t, c, "poison", 1)
	for p := uint32(0); p < 2; p++ {
		FillPartition(t, c, "big", p, 1<<20, 48<<20)
	}
	end := ListOffset(t, c, "big", 0, -1)
	bigDir := filepath.Join(dataDir, "topics", "big")
	evict := func() {
		for p := 0; p < 2; p++ {
			Evict(filepath.Join(bigDir, strconv.Itoa(p)))
		}
	}
	evict()

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
		nc := dialRaw(t, addr)
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
		_, err := c.Fetch(Ctx(t), &proto.FetchRequest{MaxBytes: 1<<32 - 1,
			Topics: []proto.FetchTopic{{Name: []byte("big"), Partitions: parts}}})
		if !errors.Is(err, proto.InvalidRequest) {
			t.Errorf("fetch listing partitions 1,000 times: %v, want INVALID_REQUEST", err)
		}
	})
	// Huge max_bytes, max_wait and min_bytes.
	spawn(4, func(i int) {
		start := time.Now()
		resp, err := c.Fetch(Ctx(t), &proto.FetchRequest{MaxBytes: 1<<32 - 1, MaxWaitMs: 1<<32 - 1,
			MinBytes: 1<<32 - 1, Topics: []proto.FetchTopic{{Name: []byte("big"), Partitions: []proto.FetchPartition{
				{Partition: 0, Offset: offsets[i], PartitionMaxBytes: 1<<32 - 1},
				{Partition: 1, Offset: offsets[i+1], PartitionMaxBytes: 1<<32 - 1}}}}})
		switch {
		case err != nil:
			t.Errorf("huge fetch: %v", err)
		case RecordsBytes(resp) > int(lim.FetchMaxBytes)+proto.MaxBatchSize:
			t.Errorf("huge fetch answered %d bytes of records", RecordsBytes(resp))
		case time.Since(start) > time.Minute:
			t.Errorf("huge fetch answered after %v", time.Since(start))
		}
	})
	// Stalled partial frames: most of a 16 MiB frame, then nothing.
	stalled := proto.AppendRequestHeader(nil, proto.RequestHeader{API: proto.APIProduce, CorrelationID: 1},
		lim.MaxFrameBytes-proto.RequestHeaderSize)
	stalled = append(stalled, make([]byte, 15<<20)...) // shared, read-only
	spawn(8, func(i int) {
		nc := dialRaw(t, addr)
		defer nc.Close()
		nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		nc.Write(stalled)
		expectClosed(t, nc, "stalled frame")
	})
	// Slow senders: one byte of a valid frame every 100 ms.
	spawn(4, func(i int) {
		nc := dialRaw(t, addr)
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
		for _, batch := range CraftedBatches() {
			c.Produce(Ctx(t), &proto.ProduceRequest{Acks: 1, Topics: []proto.ProduceTopic{{
				Name: []byte("poison"), Partitions: []proto.ProducePartition{{Records: batch}}}}})
		}
		if _, err := c.Fetch(Ctx(t), &proto.FetchRequest{MaxBytes: 1 << 20, Topics: []proto.FetchTopic{{
			Name: []byte("poison"), Partitions: []proto.FetchPartition{{PartitionMaxBytes: 1 << 20}}}}}); err != nil {
			t.Errorf("fetch of crafted batches: %v", err)
		}
	})
	// Let the unread fetches sit past the idle timeout, then end.
	time.Sleep(2 * lim.IdleTimeout) // the scenario's length, not synchronization
	close(stop)
	wg.Wait()
	c.Close()
}

func dialRaw(t *testing.T, addr string) net.Conn {
	nc, err := net.Dial("tcp", addr)
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

// CraftedBatches are batches whose CRC is valid but whose contents lie:
// a record count above the records, a record length past the end, and
// garbage declared lz4-compressed.
func CraftedBatches() [][]byte {
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
	return [][]byte{countLies, lengthLies, garbage, refinish(one(), 0, 1<<31)}
}
