package reactor

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

// The server benchmarks report bytes/s of record batches; compare them with
// BenchmarkRawLoopback, which moves the same write sizes over loopback TCP
// in the same run:
//
//	go test -run '^$' -bench 'RawLoopback|ServerProduce|ServerFetch' ./reactor/

const benchBatchBytes = 64 << 10

// BenchmarkRawLoopback writes 64 KiB buffers over loopback TCP to a reader
// that discards them, from as many connections as the produce benchmark.
func BenchmarkRawLoopback(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, c)
		}
	}()
	buf := make([]byte, benchBatchBytes)
	b.SetBytes(benchBatchBytes)
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		for pb.Next() {
			if _, err := c.Write(buf); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchConfig is the test server with the default storage settings
// (256 MiB segments, 1 s flush interval), as `make run` would use.
func benchConfig(b *testing.B) config.Config {
	cfg := testConfig(b, b.TempDir())
	def := config.Default()
	cfg.Storage.SegmentBytes = def.Storage.SegmentBytes
	cfg.Storage.FlushInterval = def.Storage.FlushInterval
	return cfg
}

func benchBatch(recordSize int) []byte {
	var bb proto.BatchBuilder
	bb.Reset(nil)
	val := make([]byte, recordSize)
	for bb.Size()+recordSize+16 < benchBatchBytes {
		bb.Append(time.Now().UnixMilli(), nil, val, nil)
	}
	return append([]byte(nil), bb.Finish()...)
}

func BenchmarkServerProduce(b *testing.B) {
	for _, size := range []int{100, 1024} {
		b.Run(fmt.Sprintf("record=%dB", size), func(b *testing.B) {
			srv := startServer(b, benchConfig(b))
			admin := ringtest.Dial(b, srv.Addr(), client.Options{})
			ringtest.CreateTopic(b, admin, "bench", 4)
			batch := benchBatch(size)
			b.SetBytes(int64(len(batch)))
			b.SetParallelism(4) // 8 producers on 2 CPUs: enough requests in flight
			var mu sync.Mutex
			next := uint32(0)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				mu.Lock()
				p := next % 4
				next++
				mu.Unlock()
				c := ringtest.Dial(b, srv.Addr(), client.Options{MaxInFlight: 8})
				own := append([]byte(nil), batch...)
				req := &proto.ProduceRequest{Acks: 1, Topics: []proto.ProduceTopic{{Name: []byte("bench"),
					Partitions: []proto.ProducePartition{{Partition: p, Records: own}}}}}
				var resp proto.ProduceResponse
				for pb.Next() {
					if err := c.Do(context.Background(), req, &resp); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkServerFetch(b *testing.B) {
	for _, size := range []int{100, 1024} {
		b.Run(fmt.Sprintf("record=%dB", size), func(b *testing.B) {
			srv := startServer(b, benchConfig(b))
			c := ringtest.Dial(b, srv.Addr(), client.Options{})
			ringtest.CreateTopic(b, c, "bench", 1)
			batch := benchBatch(size)
			const total = 128 << 20
			for n := 0; n < total; n += len(batch) {
				req := &proto.ProduceRequest{Acks: 1, Topics: []proto.ProduceTopic{{Name: []byte("bench"),
					Partitions: []proto.ProducePartition{{Records: append([]byte(nil), batch...)}}}}}
				if _, err := c.Produce(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
			end := ringtest.ListOffset(b, c, "bench", 0, -1)
			req := &proto.FetchRequest{MaxBytes: 1 << 20, Topics: []proto.FetchTopic{{Name: []byte("bench"),
				Partitions: []proto.FetchPartition{{PartitionMaxBytes: 1 << 20}}}}}
			var resp proto.FetchResponse
			var bytes int64
			b.ResetTimer()
			next := uint64(0)
			for i := 0; i < b.N; i++ {
				if next >= end {
					next = 0
				}
				req.Topics[0].Partitions[0].Offset = next
				if err := c.Do(context.Background(), req, &resp); err != nil {
					b.Fatal(err)
				}
				recs := resp.Topics[0].Partitions[0].Records
				bytes += int64(len(recs))
				next = lastOffsetIn(recs) + 1
			}
			b.StopTimer()
			b.ReportMetric(float64(bytes)/b.Elapsed().Seconds()/1e6, "MB/s")
			b.ReportMetric(float64(bytes)/float64(b.N), "bytes/fetch")
		})
	}
}

func lastOffsetIn(b []byte) uint64 {
	var last uint64
	for len(b) > 0 {
		h, rest, err := proto.ValidateBatch(b)
		if err != nil {
			break
		}
		last = h.LastOffset()
		b = rest
	}
	return last
}
