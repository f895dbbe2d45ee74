package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

const (
	consumeFetchBytes = 4 << 20 // per fetch in consume mode: throughput
	e2eFetchBytes     = 1 << 20 // per fetch in e2e mode
	fetchMaxWaitMs    = 100     // long poll; readers re-check their end this often
)

// reader reads one partition from next up to end (exclusive). end may be
// set while it runs (e2e: once production is over); until then it is
// math.MaxUint64.
type reader struct {
	conn    *client.Conn
	part    uint32
	next    uint64
	end     atomic.Uint64
	e2e     bool // latency from the send time in each record; else per fetch
	w       *worker
	scratch []byte // decompressed records
	req     proto.FetchRequest
}

func newReader(c *client.Conn, topic string, part uint32, from, end uint64, e2e bool, w *worker) *reader {
	r := &reader{conn: c, part: part, next: from, e2e: e2e, w: w}
	r.end.Store(end)
	size := uint32(consumeFetchBytes)
	if e2e {
		size = e2eFetchBytes
	}
	r.req = proto.FetchRequest{MaxWaitMs: fetchMaxWaitMs, MinBytes: 1, MaxBytes: size,
		Topics: []proto.FetchTopic{{Name: []byte(topic),
			Partitions: []proto.FetchPartition{{Partition: part, PartitionMaxBytes: size}}}}}
	return r
}

// run fetches until the partition's end or deadline (zero: none) or
// until ctx ends.
func (r *reader) run(ctx context.Context, deadline time.Time) error {
	for r.next < r.end.Load() && ctx.Err() == nil {
		if !deadline.IsZero() && time.Now().After(deadline) {
			return nil
		}
		r.req.Topics[0].Partitions[0].Offset = r.next
		asked := time.Now()
		resp, err := r.conn.Fetch(ctx, &r.req)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("bench: fetch partition %d at %d: %w", r.part, r.next, err)
		}
		got := time.Now()
		rp := &resp.Topics[0].Partitions[0]
		if rp.Error != proto.None {
			return fmt.Errorf("bench: fetch partition %d at %d: %w", r.part, r.next, rp.Error)
		}
		n, err := r.take(rp.Records, got.UnixNano())
		if err != nil {
			return err
		}
		if n > 0 && !r.e2e {
			r.w.recordUs(got.Sub(asked).Microseconds(), 1)
		}
	}
	return nil
}

// take counts the records of b (whole batches, CRC-checked) in [next,
// end), and in e2e mode records each one's latency.
func (r *reader) take(b []byte, nowNs int64) (n int64, err error) {
	end := r.end.Load()
	var bytes int64
	for len(b) > 0 && r.next < end {
		h, rest, err := proto.ValidateBatch(b)
		if errors.Is(err, proto.ErrShortBatch) {
			break // cut by max bytes; fetched again next time
		}
		if err != nil {
			return n, fmt.Errorf("bench: partition %d: batch at %d: %w", r.part, h.BaseOffset, err)
		}
		it, scratch, err := proto.NewBatchIter(r.scratch, b[:h.Size()])
		r.scratch = scratch
		if err != nil {
			return n, fmt.Errorf("bench: partition %d: batch at %d: %w", r.part, h.BaseOffset, err)
		}
		for it.Next() {
			rec := it.Record()
			if rec.Offset < r.next || rec.Offset >= end {
				continue
			}
			n++
			bytes += int64(len(rec.Value))
			if ts, ok := sendTime(rec.Value); ok && r.e2e {
				r.w.recordUs((nowNs-ts)/1e3, 1)
			}
		}
		if err := it.Err(); err != nil {
			return n, fmt.Errorf("bench: partition %d: %w", r.part, err)
		}
		r.next = min(h.NextOffset(), end)
		b = rest
	}
	r.w.msgs.Add(n)
	r.w.bytes.Add(bytes)
	return n, nil
}

// consumers is a set of readers spread over consumer connections.
type consumers struct {
	conns   []*client.Conn
	readers []*reader
}

// startConsumers connects the consumers and prepares one reader per
// partition, from from[p] to end[p] (no entry: until set later).
func startConsumers(ctx context.Context, cfg *Config, parts []proto.PartitionInfo, from, end map[uint32]uint64, m *meter) (*consumers, error) {
	cs := &consumers{}
	as := assign(parts, cfg.Consumers, false)
	cfg.Consumers = len(as)
	for _, a := range as {
		c, err := dial(ctx, cfg, a.shard)
		if err != nil {
			cs.close()
			return nil, err
		}
		cs.conns = append(cs.conns, c)
		for _, p := range a.parts {
			e, ok := end[p]
			if !ok {
				e = math.MaxUint64
			}
			cs.readers = append(cs.readers, newReader(c, cfg.Topic, p, from[p], e, cfg.Mode == ModeE2E, m.newWorker()))
		}
	}
	return cs, nil
}

func (cs *consumers) close() {
	for _, c := range cs.conns {
		c.Close()
	}
}

// setEnds tells every reader where its partition ends.
func (cs *consumers) setEnds(end map[uint32]uint64) {
	for _, r := range cs.readers {
		r.end.Store(end[r.part])
	}
}

// run reads until every reader reached its end (or deadline, or ctx
// ended); the first error cancels the others.
func (cs *consumers) run(ctx context.Context, deadline time.Time) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, r := range cs.readers {
		wg.Go(func() {
			if err := r.run(ctx, deadline); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// planEnds caps the ends so that at most limit records are read in all,
// taken evenly from the partitions (limit ≤ 0: no cap).
func planEnds(from, end map[uint32]uint64, limit int64) map[uint32]uint64 {
	out := make(map[uint32]uint64, len(end))
	for p, e := range end {
		out[p] = e
	}
	if limit <= 0 {
		return out
	}
	left := make(map[uint32]uint64, len(end))
	for p, e := range end {
		out[p] = from[p]
		if e > from[p] {
			left[p] = e - from[p]
		}
	}
	for limit > 0 && len(left) > 0 {
		share := max(1, uint64(limit)/uint64(len(left)))
		for p, l := range left {
			k := min(share, l, uint64(limit))
			out[p] += k
			limit -= int64(k)
			if left[p] = l - k; left[p] == 0 {
				delete(left, p)
			}
			if limit == 0 {
				break
			}
		}
	}
	return out
}
