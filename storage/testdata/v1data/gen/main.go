// Command genv1 fills a running ringmq server (version-1 batch format) with
// the deterministic records of the version-1 data directory test and prints
// them, one per line, as the test expects them.
package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

func main() {
	addr := os.Args[1]
	ctx := context.Background()
	adm, err := client.NewAdmin(addr, client.Options{})
	check(err)
	check(adm.CreateTopic(ctx, "v1", 2, map[string]string{"segment_bytes": "4096"}))
	type line struct {
		p   uint32
		off uint64
		s   string
	}
	var out []line
	for _, codec := range []proto.Codec{proto.CodecNone, proto.CodecLZ4, proto.CodecZstd, proto.CodecSnappy} {
		p, err := client.NewProducer(addr, client.ProducerOptions{Compression: codec, Partitioner: client.ManualPartitioner{}})
		check(err)
		for batch := 0; batch < 12; batch++ {
			var fs []*client.Future
			var recs []client.Record
			for r := 0; r < 1+batch%5; r++ {
				i := len(out) + len(recs)
				rec := client.Record{Topic: "v1", Partition: uint32(i % 2),
					Timestamp: time.UnixMilli(1700000000000 + int64(i)*7),
					Value:     []byte(fmt.Sprintf("%s record %d %s", codec, i, strings.Repeat("abc", i%40)))}
				if i%3 != 0 {
					rec.Key = []byte(fmt.Sprintf("key-%d", i%10))
				}
				if i%4 == 1 {
					rec.Headers = []client.Header{{Key: "h", Value: []byte(fmt.Sprint(i))}, {Key: "empty", Value: []byte{}}}
				}
				if i%11 == 5 {
					rec.Value = nil
				}
				recs = append(recs, rec)
				fs = append(fs, p.Produce(ctx, rec))
			}
			check(p.Flush(ctx))
			for j, f := range fs {
				res := f.Wait()
				check(res.Err)
				rec := recs[j]
				s := fmt.Sprintf("%d %d %d key=%s value=%s", rec.Partition, res.Offset, rec.Timestamp.UnixMilli(), hx(rec.Key), hx(rec.Value))
				for _, h := range rec.Headers {
					s += fmt.Sprintf(" h:%s=%s", h.Key, hx(h.Value))
				}
				out = append(out, line{rec.Partition, res.Offset, s})
			}
		}
		check(p.Close(ctx))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].p != out[j].p {
			return out[i].p < out[j].p
		}
		return out[i].off < out[j].off
	})
	for _, l := range out {
		fmt.Println(l.s)
	}
}

func hx(b []byte) string {
	if b == nil {
		return "null"
	}
	return "0x" + hex.EncodeToString(b)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
