// Package ringtest holds the helpers that tests of several packages use to
// talk to a running ringmq server through client.Conn: dialing, creating
// topics, listing offsets and reading a partition back while checking every
// batch's CRC and the offsets' continuity; and the hostile clients
// (hostile.go) that the reactor and e2e tests aim at a server to check its
// memory and connection bounds. It is imported by tests only.
package ringtest

import (
	"context"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

// Ctx is a context for one call of a test: a bug fails the test instead of
// hanging it.
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Dial connects to addr; the connection closes with the test.
func Dial(t testing.TB, addr string, opts client.Options) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// CreateTopic creates a topic with config overrides given as key, value
// pairs.
func CreateTopic(t testing.TB, c *client.Conn, name string, partitions uint32, kv ...string) {
	t.Helper()
	req := &proto.CreateTopicRequest{Name: name, Partitions: partitions}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Configs = append(req.Configs, proto.Config{Key: kv[i], Value: kv[i+1]})
	}
	resp, err := c.CreateTopic(Ctx(t), req)
	if err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	if resp.Error != proto.None {
		t.Fatalf("create topic %s: %v %s", name, resp.Error, resp.Message)
	}
}

// ListOffset resolves a ListOffsets timestamp (-2 earliest, -1 latest) for
// one partition.
func ListOffset(t testing.TB, c *client.Conn, topic string, p uint32, ts int64) uint64 {
	t.Helper()
	resp, err := c.ListOffsets(Ctx(t), &proto.ListOffsetsRequest{Topics: []proto.ListOffsetsTopic{{
		Name: []byte(topic), Partitions: []proto.ListOffsetsPartition{{Partition: p, Timestamp: ts}}}}})
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	r := resp.Topics[0].Partitions[0]
	if r.Error != proto.None {
		t.Fatalf("list offsets %s/%d: %v", topic, p, r.Error)
	}
	return r.Offset
}

// ReadPartition fetches every record of a partition from offset 0 to its
// log end and returns the values (copied), failing the test on a bad CRC,
// an offset gap or a fetch that returns nothing below the log end.
func ReadPartition(t testing.TB, c *client.Conn, topic string, p uint32) [][]byte {
	t.Helper()
	end := ListOffset(t, c, topic, p, -1)
	var out [][]byte
	for next := uint64(0); next < end; {
		req := &proto.FetchRequest{MaxBytes: 4 << 20, Topics: []proto.FetchTopic{{Name: []byte(topic),
			Partitions: []proto.FetchPartition{{Partition: p, Offset: next, PartitionMaxBytes: 4 << 20}}}}}
		resp, err := c.Fetch(Ctx(t), req)
		if err != nil {
			t.Fatalf("fetch %s/%d@%d: %v", topic, p, next, err)
		}
		fp := resp.Topics[0].Partitions[0]
		if fp.Error != proto.None || len(fp.Records) == 0 {
			t.Fatalf("fetch %s/%d@%d (log end %d): %v, %d bytes", topic, p, next, end, fp.Error, len(fp.Records))
		}
		next = DecodeBatches(t, fp.Records, next, func(_ uint64, v []byte) {
			out = append(out, append([]byte(nil), v...))
		})
	}
	return out
}

// DecodeBatches validates every batch of b, skips records below next (a
// fetch starts with the whole batch holding its offset), checks offsets go
// on from next, calls fn for each record, and returns the next offset.
func DecodeBatches(t testing.TB, b []byte, next uint64, fn func(off uint64, v []byte)) uint64 {
	t.Helper()
	for len(b) > 0 {
		h, rest, err := proto.ValidateBatch(b)
		if err != nil {
			t.Fatalf("corrupt batch served at offset ≥ %d: %v", next, err)
		}
		it, err := proto.NewRecordIter(b[:h.Size()])
		if err != nil {
			t.Fatalf("records: %v", err)
		}
		for it.Next() {
			rec := it.Record()
			if rec.Offset < next {
				continue
			}
			if rec.Offset != next {
				t.Fatalf("offset gap: want %d, got %d", next, rec.Offset)
			}
			fn(rec.Offset, rec.Value)
			next++
		}
		if err := it.Err(); err != nil {
			t.Fatalf("records: %v", err)
		}
		b = rest
	}
	return next
}
