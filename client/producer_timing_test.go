package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

// End-to-end throughput through the in-process server on loopback, 1 KiB
// values, 4 partitions. Baseline: DESIGN.md §9 (NATS JetStream on the same
// class of machine: ~144k msg/s publish, ~270k msg/s consume of 1 KiB).

func BenchmarkProducer1KiB(b *testing.B) {
	for _, codec := range []proto.Codec{proto.CodecNone, proto.CodecLZ4} {
		b.Run(codec.String(), func(b *testing.B) {
			srv := newTestServer(b)
			createTopic(b, srv.addr, "bench", 4, nil)
			p := newProducer(b, srv.addr, client.ProducerOptions{Compression: codec, Linger: time.Millisecond})
			val := make([]byte, 1024)
			for i := range val {
				val[i] = byte('a' + i%7)
			}
			ctx := context.Background()
			b.SetBytes(int64(len(val)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := p.Send(ctx, client.Record{Topic: "bench", Value: val}, nil); err != nil {
					b.Fatal(err)
				}
			}
			if err := p.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			if st := p.Stats(); st.Failed != 0 {
				b.Fatalf("stats %+v", st)
			}
		})
	}
}

func BenchmarkConsumer1KiB(b *testing.B) {
	srv := newTestServer(b)
	createTopic(b, srv.addr, "bench", 4, nil)
	p := newProducer(b, srv.addr, client.ProducerOptions{Linger: time.Millisecond})
	ctx := context.Background()
	val := make([]byte, 1024)
	const n = 100_000
	for range n {
		if err := p.Send(ctx, client.Record{Topic: "bench", Value: val}, nil); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(val)))
	b.ReportAllocs()
	b.ResetTimer()
	var c *client.Consumer
	var buf []client.Record
	left := 0
	for b.Loop() { // one record per iteration
		for len(buf) == 0 {
			if left == 0 { // read the topic again from the start
				if c != nil {
					c.Close()
				}
				c = newConsumer(b, srv.addr, client.ConsumerOptions{})
				if err := c.Assign(ctx, "bench"); err != nil {
					b.Fatal(err)
				}
				left = n
			}
			recs, err := c.Poll(ctx)
			if err != nil {
				b.Fatal(err)
			}
			buf, left = recs, left-len(recs)
		}
		buf = buf[1:]
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
