package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ringmq/ringmq/proto"
)

var writeSeed = flag.Uint64("write-seed", 0, "seed of TestPipelinedLargeAndSmallProducesArriveIntact (0: from the clock)")

// patterned fills a batch of n bytes whose content follows from its first
// 8 bytes (id), so a receiver can check it without knowing the sender.
func patterned(id uint64, n int) []byte {
	b := make([]byte, n)
	binary.LittleEndian.PutUint64(b, id)
	for i := 8; i < n; i++ {
		b[i] = byte(id*31 + uint64(i)*7)
	}
	return b
}

func intact(b []byte) bool {
	return len(b) >= 8 && bytes.Equal(b, patterned(binary.LittleEndian.Uint64(b), len(b)))
}

// TestPipelinedLargeAndSmallProducesArriveIntact: concurrent callers mix
// small produce requests (copied into the write buffer) and large ones
// (written from the caller's batch), and every batch reaches the server
// intact, in a frame the server parses.
func TestPipelinedLargeAndSmallProducesArriveIntact(t *testing.T) {
	var bad sync.Map
	s := newFakeServer(t, func(fc *fakeConn, h proto.RequestHeader, body []byte) {
		var req proto.ProduceRequest
		if err := req.Decode(body); err != nil {
			bad.Store(h.CorrelationID, err)
		} else {
			for _, p := range req.Topics[0].Partitions {
				if !intact(p.Records) {
					bad.Store(h.CorrelationID, errors.New("batch damaged"))
				}
			}
		}
		fc.reply(h.CorrelationID, proto.None, &proto.ProduceResponse{})
	})
	c, err := Dial(testCtx(t), s.addr(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	seed := *writeSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -write-seed)", seed)
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			for i := range 40 {
				var parts []proto.ProducePartition
				for p := range 1 + rng.IntN(3) {
					size := 8 + rng.IntN(3*minRefBytes) // both sides of the threshold
					parts = append(parts, proto.ProducePartition{Partition: uint32(p), Records: patterned(uint64(g<<20|i<<4|p), size)})
				}
				req := &proto.ProduceRequest{Acks: proto.AcksLeader, Topics: []proto.ProduceTopic{{Name: []byte("t"), Partitions: parts}}}
				if _, err := c.Produce(testCtx(t), req); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	bad.Range(func(k, v any) bool {
		t.Errorf("request %v: %v", k, v)
		return true
	})
}

// TestCancelledProduceNeverSendsLaterChanges: Do returns on cancellation
// only once the writer no longer reads the caller's batch. A request still
// queued is sent from a copy (the caller may change its batch at once); a
// request being written holds Do until the write ends. The connection runs
// over net.Pipe, whose writes wait for the reader, so the test decides
// when the writer is stuck.
func TestCancelledProduceNeverSendsLaterChanges(t *testing.T) {
	client, server := net.Pipe()
	c := newConn(client, "pipe", Options{}.withDefaults())
	defer c.Close()
	defer server.Close()
	a, b := patterned(1, 64<<10), patterned(2, 16<<10)
	produce := func(ctx context.Context, batch []byte) <-chan error {
		done := make(chan error, 1)
		req := &proto.ProduceRequest{Acks: proto.AcksLeader, Topics: []proto.ProduceTopic{{Name: []byte("t"),
			Partitions: []proto.ProducePartition{{Records: batch}}}}}
		go func() { done <- c.Do(ctx, req, nil) }()
		return done
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; {
			c.mu.Lock()
			ok := cond()
			c.mu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting until %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	ctxA, cancelA := context.WithCancel(context.Background())
	doneA := produce(ctxA, a)
	waitFor("the writer took request A", func() bool { return c.taken >= 1 })
	ctxB, cancelB := context.WithCancel(context.Background())
	doneB := produce(ctxB, b)
	waitFor("request B is queued", func() bool { return c.lastRef == 2 })
	cancelB()
	if err := <-doneB; !errors.Is(err, context.Canceled) {
		t.Fatalf("Do(B) = %v, want context.Canceled", err)
	}
	clear(b) // allowed: Do returned

	cancelA()
	first := make([]byte, 1024)
	if _, err := io.ReadFull(server, first); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-doneA:
		t.Fatalf("Do(A) returned (%v) while its batch was still being written", err)
	case <-time.After(100 * time.Millisecond):
	}
	br := io.MultiReader(bytes.NewReader(first), server)
	reqA := readProduce(t, br)
	if err := <-doneA; !errors.Is(err, context.Canceled) {
		t.Fatalf("Do(A) = %v, want context.Canceled", err)
	}
	reqB := readProduce(t, br)
	for name, req := range map[string]*proto.ProduceRequest{"A": reqA, "B": reqB} {
		if got := req.Topics[0].Partitions[0].Records; !intact(got) {
			t.Errorf("request %s arrived with %d bytes, damaged", name, len(got))
		}
	}
}

func readProduce(t *testing.T, r io.Reader) *proto.ProduceRequest {
	t.Helper()
	var lenBuf [proto.FrameLengthSize]byte
	if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
		t.Fatal(err)
	}
	n, _ := proto.FrameLength(lenBuf[:])
	frame := make([]byte, n)
	copy(frame, lenBuf[:])
	if _, err := io.ReadFull(r, frame[proto.FrameLengthSize:]); err != nil {
		t.Fatal(err)
	}
	_, body, err := proto.ParseRequestHeader(frame)
	req := &proto.ProduceRequest{}
	if err == nil {
		err = req.Decode(body)
	}
	if err != nil {
		t.Fatalf("frame %x...: %v", frame[:min(len(frame), 32)], err)
	}
	return req
}
