package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

// stored is one record as a read found it.
type stored struct {
	offset uint64
	value  string
}

// reader follows every partition of topic during the run and remembers
// what it read at each offset: a later read must find the same record
// there (offsets never reused for different records).
type reader struct {
	mu   sync.Mutex
	seen map[uint32]map[uint64]string
	errs int
}

func (r *reader) run(ctx context.Context, bootstrap, topic string) {
	r.seen = map[uint32]map[uint64]string{}
	c, err := client.NewConsumer(bootstrap, client.ConsumerOptions{ClientID: "chaos-reader",
		MaxWait: 200 * time.Millisecond, RequestTimeout: 5 * time.Second, RetryBackoff: 50 * time.Millisecond})
	if err != nil {
		r.errs++
		return
	}
	defer c.Close()
	for ctx.Err() == nil {
		if err := c.Assign(ctx, topic); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond) // polling interval while the topic is unreachable
	}
	for ctx.Err() == nil {
		recs, err := c.Poll(ctx)
		if err != nil {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				r.mu.Lock()
				r.errs++
				r.mu.Unlock()
				time.Sleep(100 * time.Millisecond) // back off after a failed poll
			}
			continue
		}
		r.mu.Lock()
		for _, rec := range recs {
			m := r.seen[rec.Partition]
			if m == nil {
				m = map[uint64]string{}
				r.seen[rec.Partition] = m
			}
			m[rec.Offset] = string(rec.Value)
		}
		r.mu.Unlock()
	}
}

// readAll reads every partition of topic up to its high watermark (as
// its leader reports it), within timeout.
func readAll(bootstrap, topic string, partitions int, timeout time.Duration) (map[uint32][]stored, []uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	a, err := client.NewAdmin(bootstrap, client.Options{ClientID: "chaos-final"})
	if err != nil {
		return nil, nil, err
	}
	defer a.Close()
	var ends []uint64
	for {
		ends, err = a.ListOffsets(ctx, topic, -1)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("list offsets: %w", err)
		}
		time.Sleep(100 * time.Millisecond) // polling interval while leaders settle
	}
	c, err := client.NewConsumer(bootstrap, client.ConsumerOptions{ClientID: "chaos-final",
		MaxWait: 100 * time.Millisecond, RetryBackoff: 50 * time.Millisecond})
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	if err := c.Assign(ctx, topic); err != nil {
		return nil, nil, err
	}
	out := map[uint32][]stored{}
	done := func() bool {
		for p := 0; p < partitions; p++ {
			pos, err := c.Position(topic, uint32(p))
			if err != nil || pos < ends[p] {
				return false
			}
		}
		return true
	}
	for !done() {
		recs, err := c.Poll(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, fmt.Errorf("final read (log ends %v): %w", ends, err)
			}
			continue
		}
		for _, r := range recs {
			if r.Offset < ends[r.Partition] {
				out[r.Partition] = append(out[r.Partition], stored{r.Offset, string(r.Value)})
			}
		}
	}
	return out, ends, nil
}

// verdict is what the checker found.
type verdict struct {
	acked, lost, reordered, divergent       int
	dupIdem, dupPlain                       int
	unknownSeen, unknownMissing, failedSeen int
	failed, pending, present, foreign       int
	replicasCompared, replicasDiffer        int
	examples                                []string
}

func (v *verdict) example(format string, args ...any) {
	if len(v.examples) < 20 {
		v.examples = append(v.examples, fmt.Sprintf(format, args...))
	}
}

// check compares what the producers were told with the final read and
// with what the reader saw during the run.
func check(producers []*producerLog, final map[uint32][]stored, seen map[uint32]map[uint64]string) *verdict {
	v := &verdict{}
	type key struct{ p, n int }
	type loc struct {
		part   uint32
		offset uint64
	}
	where := map[key][]loc{}
	byID := map[int]*producerLog{}
	for _, pl := range producers {
		byID[pl.id] = pl
	}
	parts := make([]uint32, 0, len(final))
	for p := range final {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	for _, part := range parts {
		last := map[int]int{} // producer → counter of its last first occurrence here
		for i, s := range final[part] {
			if i > 0 && s.offset <= final[part][i-1].offset {
				v.divergent++
				v.example("partition %d: offset %d read after %d", part, s.offset, final[part][i-1].offset)
			}
			p, n, ok := parseValue([]byte(s.value))
			if !ok || byID[p] == nil {
				v.foreign++
				continue
			}
			v.present++
			k := key{p, n}
			if len(where[k]) > 0 {
				if byID[p].idempotent {
					v.dupIdem++
					first := where[k][0]
					v.example("duplicate from idempotent producer %d: record %d at partition %d offset %d, first at %d/%d",
						p, n, part, s.offset, first.part, first.offset)
				} else {
					v.dupPlain++
				}
			} else {
				if l, ok := last[p]; ok && n < l {
					v.reordered++
					v.example("partition %d offset %d: producer %d's record %d after its record %d", part, s.offset, p, n, l)
				}
				last[p] = n
			}
			where[k] = append(where[k], loc{part, s.offset})
		}
	}
	for _, pl := range producers {
		pl.mu.Lock()
		for n, o := range pl.outcomes {
			locs := where[key{pl.id, n}]
			switch o {
			case acked:
				v.acked++
				if len(locs) == 0 {
					v.lost++
					v.example("lost: producer %d record %d acknowledged at partition %d offset %d", pl.id, n, pl.partition[n], pl.offset[n])
					continue
				}
				// A retry of a non-idempotent producer may have stored
				// it before the attempt that was acknowledged.
				at := false
				for _, l := range locs {
					at = at || (l.part == pl.partition[n] && l.offset == pl.offset[n])
				}
				if !at {
					v.divergent++
					v.example("producer %d record %d acknowledged at %d/%d, stored at %d/%d",
						pl.id, n, pl.partition[n], pl.offset[n], locs[0].part, locs[0].offset)
				}
			case unknown:
				if len(locs) > 0 {
					v.unknownSeen++
				} else {
					v.unknownMissing++
				}
			case failed:
				v.failed++
				if len(locs) > 0 {
					v.failedSeen++
					v.example("producer %d record %d refused by Send, stored at %d/%d", pl.id, n, locs[0].part, locs[0].offset)
				}
			case pending:
				v.pending++
			}
		}
		pl.mu.Unlock()
	}
	for part, m := range seen {
		byOff := map[uint64]string{}
		for _, s := range final[part] {
			byOff[s.offset] = s.value
		}
		for off, val := range m {
			if got, ok := byOff[off]; !ok || got != val {
				v.divergent++
				v.example("partition %d offset %d: read %q during the run, %q (present %v) at the end", part, off, val, got, ok)
			}
		}
	}
	return v
}

// line is the one summary line of a run.
func (v *verdict) line(faults string) string {
	return fmt.Sprintf("chaos: %s acked, %s lost, %s reordered, %s divergent, %s duplicates (%s idempotent), faults: %s; unknown outcome %s (%s stored, %s not), %s failed, %s records stored, %s replica logs compared",
		commas(v.acked), commas(v.lost), commas(v.reordered), commas(v.divergent),
		commas(v.dupIdem+v.dupPlain), commas(v.dupIdem), faults,
		commas(v.unknownSeen+v.unknownMissing), commas(v.unknownSeen), commas(v.unknownMissing),
		commas(v.failed), commas(v.present), commas(v.replicasCompared))
}

// replicaLog is a replica's batches below hw, as stored: every .log
// segment of the partition's directory in order, each parsed from its
// start to the first invalid batch (a segment is preallocated).
func replicaLog(fsys interface {
	ReadFile(string) ([]byte, error)
	ReadDir(string) ([]string, error)
}, dir string, hw uint64) ([]byte, error) {
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []byte
	for _, name := range names {
		if !strings.HasSuffix(name, ".log") || strings.HasPrefix(name, ".") {
			continue
		}
		b, err := fsys.ReadFile(dir + "/" + name)
		if err != nil {
			return nil, err
		}
		for len(b) > 0 {
			h, rest, err := proto.ValidateBatch(b)
			if err != nil || h.LastOffset() >= hw {
				break
			}
			out = append(out, b[:h.Size()]...)
			b = rest
		}
	}
	return out, nil
}

// compareReplicas checks that every replica of each partition holds the
// same bytes below the partition's HW (the brokers stopped).
func compareReplicas(v *verdict, c *chaosCluster, topic string, hws []uint64) {
	for p, hw := range hws {
		dir := fmt.Sprintf("topics/%s/%d", topic, p)
		var first []byte
		firstNode := 0
		for _, nd := range c.nodes {
			b, err := replicaLog(nd.fs, dir, hw)
			if errors.Is(err, fs.ErrNotExist) {
				continue // not a replica of p
			}
			if err != nil {
				v.replicasDiffer++
				v.example("partition %d on node %d: %v", p, nd.id, err)
				continue
			}
			v.replicasCompared++
			if firstNode == 0 {
				first, firstNode = b, nd.id
				continue
			}
			if !bytes.Equal(b, first) {
				v.replicasDiffer++
				v.divergent++
				v.example("partition %d below HW %d: node %d holds %d bytes, node %d %d bytes, not the same",
					p, hw, nd.id, len(b), firstNode, len(first))
			}
		}
	}
}
