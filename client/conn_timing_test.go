package client

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/ringmq/ringmq/proto"
)

// Round trips against the in-process fake server over loopback. Baseline:
// Serial is one request at a time (latency bound); Parallel keeps many in
// flight on the same Conn, which the writer batches into shared writes.
func BenchmarkConnRoundTrip(b *testing.B) {
	var resp proto.ProduceResponse
	resp.Topics = []proto.ProduceTopicResponse{{Name: []byte("t"), Partitions: []proto.ProducePartitionResponse{{LogEnd: 1}}}}
	s := newFakeServer(b, func(fc *fakeConn, h proto.RequestHeader, body []byte) {
		fc.reply(h.CorrelationID, proto.None, &resp)
	})
	c, err := Dial(context.Background(), s.addr(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := &proto.ProduceRequest{Acks: proto.AcksLeader, Topics: []proto.ProduceTopic{{
		Name: []byte("t"), Partitions: []proto.ProducePartition{{Records: make([]byte, 1024)}}}}}
	ctx := context.Background()
	b.Run("Serial", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := c.Produce(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Produce(ctx, req); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkConnProduceLarge sends produce requests carrying one batch of
// 16 or 256 KiB (bench produce sends 64 KiB) to a fake server that
// answers without parsing the batch: the client's cost of getting a
// request's bytes onto the socket, with 4 callers sharing the Conn.
func BenchmarkConnProduceLarge(b *testing.B) {
	var resp proto.ProduceResponse
	resp.Topics = []proto.ProduceTopicResponse{{Name: []byte("t"), Partitions: []proto.ProducePartitionResponse{{LogEnd: 1}}}}
	s := newFakeServer(b, func(fc *fakeConn, h proto.RequestHeader, body []byte) {
		fc.reply(h.CorrelationID, proto.None, &resp)
	})
	c, err := Dial(context.Background(), s.addr(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for _, size := range []int{16 << 10, 256 << 10} {
		req := &proto.ProduceRequest{Acks: proto.AcksLeader, Topics: []proto.ProduceTopic{{
			Name: []byte("t"), Partitions: []proto.ProducePartition{{Records: make([]byte, size)}}}}}
		b.Run(fmt.Sprintf("%dKiB/Parallel", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.Produce(ctx, req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkConnProduceWritePath isolates the client's side of a produce:
// encoding, the socket write, and matching the response, over a stub
// connection that discards what is written and answers each request once
// its last byte is written (no server, no kernel copy). Compare the
// figures of two commits run alternately; a batch copied into the write
// buffer costs a memmove of its size here.
func BenchmarkConnProduceWritePath(b *testing.B) {
	for _, size := range []int{16 << 10, 256 << 10} {
		req := &proto.ProduceRequest{Acks: proto.AcksLeader, Topics: []proto.ProduceTopic{{
			Name: []byte("t"), Partitions: []proto.ProducePartition{{Records: make([]byte, size)}}}}}
		frame := len(proto.AppendRequest(nil, 1, req))
		for _, par := range []int{1, 4} {
			b.Run(fmt.Sprintf("%dKiB/callers=%d", size>>10, par), func(b *testing.B) {
				sc := newStubConn(frame)
				c := newConn(sc, "stub", Options{}.withDefaults())
				defer c.Close()
				ctx := context.Background()
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.SetParallelism(par)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := c.Do(ctx, req, nil); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// stubConn is a net.Conn that discards writes and, once every frameBytes
// written, answers the next correlation id (1, 2, ...) with an empty
// response on its read side.
type stubConn struct {
	net.Conn            // nil: only the methods below are used
	frameBytes, written int
	nextID              uint32
	resp                []byte
	r                   *io.PipeReader
	w                   *io.PipeWriter
}

func newStubConn(frameBytes int) *stubConn {
	r, w := io.Pipe()
	return &stubConn{frameBytes: frameBytes, r: r, w: w}
}

func (s *stubConn) Write(b []byte) (int, error) {
	s.written += len(b)
	for ; s.written >= s.frameBytes; s.written -= s.frameBytes {
		s.nextID++
		s.resp = proto.AppendResponse(s.resp[:0], proto.ResponseHeader{CorrelationID: s.nextID}, nil)
		if _, err := s.w.Write(s.resp); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

func (s *stubConn) Read(b []byte) (int, error) { return s.r.Read(b) }

func (s *stubConn) Close() error {
	s.r.Close()
	return s.w.Close()
}
