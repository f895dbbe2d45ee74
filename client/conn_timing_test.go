package client

import (
	"context"
	"fmt"
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
