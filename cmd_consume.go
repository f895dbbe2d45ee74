package main

// ringmq consume TOPIC: print records, optionally as a consumer group that
// commits as it goes and resumes from its commit.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

const consumeUsage = "ringmq consume TOPIC [--from earliest|latest|OFFSET|@UNIX_MS] [-n N] [--group G] [--partition P] [--format text|json] [--server HOST:PORT]"

// consumeOptions are the parsed flags of ringmq consume.
type consumeOptions struct {
	server    string
	topic     string
	from      startPos
	limit     int64 // 0: no limit
	group     string
	partition int64 // -1: every partition
	json      bool
}

// startPos is where a partition without a committed offset starts.
type startPos struct {
	timestamp int64 // proto.TimestampEarliest, TimestampLatest, or unix ms (when !exact)
	offset    uint64
	exact     bool // start at offset
}

func cmdConsume(args []string) error {
	opts, err := parseConsumeFlags(args)
	if err != nil {
		return quietUsage(err)
	}
	ctx, stop := signalContext()
	defer stop()
	c, err := dialServer(ctx, opts.server, "ringmq-consume")
	if err != nil {
		return err
	}
	defer c.Close()
	partitions, err := topicPartitions(ctx, c, opts.topic)
	if err != nil {
		return err
	}
	if opts.partition >= int64(partitions) {
		return fmt.Errorf("consume: topic %q has %d partitions; --partition %d does not exist", opts.topic, partitions, opts.partition)
	}
	cs := newLineConsumer(c, opts, partitions)
	if err := cs.start(ctx); err != nil {
		return err
	}
	return cs.run(ctx)
}

func parseConsumeFlags(args []string) (consumeOptions, error) {
	fs := newFlagSet("consume", consumeUsage)
	server := fs.serverFlag()
	from := fs.String("from", "latest", "where to start without a committed offset: earliest, latest, an `OFFSET`, or @UNIX_MS (first record at or after that time)")
	limit := fs.Int64("n", 0, "exit after `N` records (default: run until interrupted)")
	group := fs.String("group", "", "consumer `group`: resume from its committed offsets and commit as records are printed")
	partition := fs.Int64("partition", -1, "read only partition `P` (default: all)")
	format := fs.String("format", "text", "output: text (one value per line) or json (one object per record)")
	pos, err := fs.parse(args, 1, 1)
	if err != nil {
		return consumeOptions{}, err
	}
	o := consumeOptions{server: *server, topic: pos[0], limit: *limit, group: *group, partition: *partition}
	if o.from, err = parseStart(*from); err != nil {
		return o, fmt.Errorf("consume: %w", err)
	}
	switch {
	case *format != "text" && *format != "json":
		return o, fmt.Errorf("consume: --format must be text or json, not %q", *format)
	case o.limit < 0:
		return o, fmt.Errorf("consume: -n must not be negative")
	case o.partition < -1 || o.partition > 1<<31:
		return o, fmt.Errorf("consume: --partition %d is out of range", o.partition)
	case o.group != "" && !proto.ValidName([]byte(o.group)):
		return o, fmt.Errorf("consume: invalid group name %q (1-%d of [A-Za-z0-9._-])", o.group, proto.MaxNameLen)
	}
	o.json = *format == "json"
	return o, nil
}

func parseStart(s string) (startPos, error) {
	switch {
	case s == "earliest":
		return startPos{timestamp: proto.TimestampEarliest}, nil
	case s == "latest":
		return startPos{timestamp: proto.TimestampLatest}, nil
	case strings.HasPrefix(s, "@"):
		ms, err := strconv.ParseInt(s[1:], 10, 64)
		if err != nil || ms < 0 {
			return startPos{}, fmt.Errorf("--from %q: want @UNIX_MS, milliseconds since 1970", s)
		}
		return startPos{timestamp: ms}, nil
	}
	off, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return startPos{}, fmt.Errorf("--from %q: want earliest, latest, an offset or @UNIX_MS", s)
	}
	return startPos{offset: off, exact: true}, nil
}

const (
	fetchMaxWaitMs        = 500
	fetchMaxBytes         = 8 << 20
	fetchPartitionMax     = 2 << 20
	commitInterval        = time.Second
	finalCommitTimeout    = 10 * time.Second
	consumeOutputBufBytes = 256 << 10
)

// lineConsumer fetches every chosen partition in one long-poll request at
// a time and prints the records; with a group it commits the offset after
// the last record printed.
type lineConsumer struct {
	c          *client.Conn
	opts       consumeOptions
	parts      []uint32
	next       []uint64 // next offset to print, per parts index
	committed  []uint64 // last committed, per parts index (proto.NoOffset: none)
	printed    int64
	out        *bufio.Writer
	line       []byte // output scratch
	scratch    []byte // decompression scratch
	lastCommit time.Time
}

func newLineConsumer(c *client.Conn, opts consumeOptions, partitions uint32) *lineConsumer {
	cs := &lineConsumer{c: c, opts: opts, out: bufio.NewWriterSize(os.Stdout, consumeOutputBufBytes)}
	if opts.partition >= 0 {
		cs.parts = []uint32{uint32(opts.partition)}
	} else {
		for p := uint32(0); p < partitions; p++ {
			cs.parts = append(cs.parts, p)
		}
	}
	cs.next = make([]uint64, len(cs.parts))
	cs.committed = make([]uint64, len(cs.parts))
	for i := range cs.committed {
		cs.committed[i] = proto.NoOffset
	}
	return cs
}

// start sets each partition's first offset: the group's commit where it
// has one, --from elsewhere.
func (cs *lineConsumer) start(ctx context.Context) error {
	ctx, cancel := commandTimeout(ctx)
	defer cancel()
	if cs.opts.group != "" {
		if err := cs.fetchCommitted(ctx); err != nil {
			return err
		}
	}
	req := proto.ListOffsetsRequest{Topics: []proto.ListOffsetsTopic{{Name: []byte(cs.opts.topic)}}}
	lt := &req.Topics[0]
	for i, p := range cs.parts {
		switch {
		case cs.committed[i] != proto.NoOffset:
			cs.next[i] = cs.committed[i]
		case cs.opts.from.exact:
			cs.next[i] = cs.opts.from.offset
		default:
			lt.Partitions = append(lt.Partitions, proto.ListOffsetsPartition{Partition: p, Timestamp: cs.opts.from.timestamp})
		}
	}
	if len(lt.Partitions) == 0 {
		return nil
	}
	resp, err := cs.c.ListOffsets(ctx, &req)
	if err != nil {
		return describeErr(fmt.Sprintf("consume %q: list offsets", cs.opts.topic), err)
	}
	for _, t := range resp.Topics {
		for _, rp := range t.Partitions {
			if rp.Error != proto.None {
				return describeErr(fmt.Sprintf("consume %q: partition %d", cs.opts.topic, rp.Partition), rp.Error)
			}
			cs.next[cs.index(rp.Partition)] = rp.Offset
		}
	}
	return nil
}

// fetchCommitted loads the group's committed offsets.
func (cs *lineConsumer) fetchCommitted(ctx context.Context) error {
	req := proto.OffsetFetchRequest{Group: []byte(cs.opts.group),
		Topics: []proto.OffsetFetchTopic{{Name: []byte(cs.opts.topic), Partitions: cs.parts}}}
	resp, err := cs.c.OffsetFetch(ctx, &req)
	if err != nil {
		return describeErr(fmt.Sprintf("consume: group %q", cs.opts.group), err)
	}
	for _, t := range resp.Topics {
		for _, rp := range t.Partitions {
			switch {
			case rp.Error == proto.GroupNotFound || rp.Offset == proto.NoOffset && rp.Error == proto.None:
			case rp.Error != proto.None:
				return describeErr(fmt.Sprintf("consume: group %q partition %d", cs.opts.group, rp.Partition), rp.Error)
			default:
				cs.committed[cs.index(rp.Partition)] = rp.Offset
			}
		}
	}
	return nil
}

// index maps a partition number to its index in cs.parts.
func (cs *lineConsumer) index(p uint32) int {
	for i, q := range cs.parts {
		if q == p {
			return i
		}
	}
	panic(fmt.Sprintf("BUG: consume: server answered for partition %d, which was not asked for", p))
}

// run fetches and prints until the limit, an error or an interrupt (which
// ends it cleanly). With a group it commits on the way and before it
// returns.
func (cs *lineConsumer) run(ctx context.Context) error {
	err := cs.loop(ctx)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		err = nil // interrupted: a normal way to stop
	}
	if ferr := cs.out.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("consume: write stdout: %w", ferr)
	}
	if cs.opts.group != "" {
		cctx, cancel := context.WithTimeout(context.Background(), finalCommitTimeout)
		defer cancel()
		if cerr := cs.commit(cctx); err == nil {
			err = cerr
		}
	}
	return err
}

func (cs *lineConsumer) loop(ctx context.Context) error {
	req := cs.fetchRequest()
	for cs.opts.limit == 0 || cs.printed < cs.opts.limit {
		ft := &req.Topics[0]
		for i := range ft.Partitions {
			ft.Partitions[i].Offset = cs.next[i]
		}
		resp, err := cs.c.Fetch(ctx, req)
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			return describeErr(fmt.Sprintf("consume %q", cs.opts.topic), err)
		}
		if err := cs.handle(resp); err != nil {
			return err
		}
		if err := cs.out.Flush(); err != nil {
			return fmt.Errorf("consume: write stdout: %w", err)
		}
		if cs.opts.group != "" && time.Since(cs.lastCommit) >= commitInterval {
			if err := cs.commit(ctx); err != nil {
				return errors.Join(ctx.Err(), err) // an interrupt mid-commit is still an interrupt
			}
		}
	}
	return nil
}

func (cs *lineConsumer) fetchRequest() *proto.FetchRequest {
	req := &proto.FetchRequest{MaxWaitMs: fetchMaxWaitMs, MinBytes: 1, MaxBytes: fetchMaxBytes,
		Topics: []proto.FetchTopic{{Name: []byte(cs.opts.topic)}}}
	for _, p := range cs.parts {
		req.Topics[0].Partitions = append(req.Topics[0].Partitions,
			proto.FetchPartition{Partition: p, PartitionMaxBytes: fetchPartitionMax})
	}
	return req
}

// handle prints the records of one fetch response.
func (cs *lineConsumer) handle(resp *proto.FetchResponse) error {
	for ti := range resp.Topics {
		for pi := range resp.Topics[ti].Partitions {
			rp := &resp.Topics[ti].Partitions[pi]
			i := cs.index(rp.Partition)
			switch rp.Error {
			case proto.None:
			case proto.OffsetOutOfRange:
				return fmt.Errorf("consume %q: partition %d: offset %d is outside the log (%d..%d)",
					cs.opts.topic, rp.Partition, cs.next[i], rp.LogStart, rp.HighWatermark)
			default:
				return describeErr(fmt.Sprintf("consume %q: partition %d", cs.opts.topic, rp.Partition), rp.Error)
			}
			if err := cs.printBatches(i, rp.Records); err != nil {
				return err
			}
		}
	}
	return nil
}

// printBatches prints the records of b (whole batches) at or past the
// partition's next offset, up to the limit.
func (cs *lineConsumer) printBatches(i int, b []byte) error {
	for len(b) > 0 && (cs.opts.limit == 0 || cs.printed < cs.opts.limit) {
		h, rest, err := proto.ValidateBatch(b)
		if errors.Is(err, proto.ErrShortBatch) {
			return nil // a partial batch at the end of the response
		}
		if err != nil {
			return fmt.Errorf("consume %q: partition %d: batch at offset %d: %w", cs.opts.topic, cs.parts[i], h.BaseOffset, err)
		}
		if h.NextOffset() > cs.next[i] {
			if err := cs.printBatch(i, b[:h.Size()]); err != nil {
				return err
			}
		}
		b = rest
	}
	return nil
}

func (cs *lineConsumer) printBatch(i int, batch []byte) error {
	it, scratch, err := proto.NewBatchIter(cs.scratch, batch)
	cs.scratch = scratch
	if err != nil {
		return fmt.Errorf("consume %q: partition %d: %w", cs.opts.topic, cs.parts[i], err)
	}
	for it.Next() && (cs.opts.limit == 0 || cs.printed < cs.opts.limit) {
		r := it.Record()
		if r.Offset < cs.next[i] {
			continue
		}
		cs.line = cs.line[:0]
		if cs.opts.json {
			cs.line = appendJSONRecord(cs.line, cs.opts.topic, cs.parts[i], r)
		} else {
			cs.line = append(cs.line, r.Value...)
		}
		cs.line = append(cs.line, '\n')
		if _, err := cs.out.Write(cs.line); err != nil {
			return fmt.Errorf("consume: write stdout: %w", err)
		}
		cs.next[i] = r.Offset + 1
		cs.printed++
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("consume %q: partition %d: %w", cs.opts.topic, cs.parts[i], err)
	}
	return nil
}

// commit stores, for every partition that moved, the offset after the
// last record printed (the next one to read). Output is flushed first, so
// a commit never covers a record that was not written out.
func (cs *lineConsumer) commit(ctx context.Context) error {
	if err := cs.out.Flush(); err != nil {
		return fmt.Errorf("consume: write stdout: %w", err)
	}
	cs.lastCommit = time.Now()
	ct := proto.OffsetCommitTopic{Name: []byte(cs.opts.topic)}
	for i, p := range cs.parts {
		if cs.next[i] != cs.committed[i] {
			ct.Partitions = append(ct.Partitions, proto.OffsetCommitPartition{Partition: p, Offset: cs.next[i]})
		}
	}
	if len(ct.Partitions) == 0 {
		return nil
	}
	req := proto.OffsetCommitRequest{Group: []byte(cs.opts.group), Topics: []proto.OffsetCommitTopic{ct}}
	resp, err := cs.c.OffsetCommit(ctx, &req)
	if err != nil {
		return describeErr(fmt.Sprintf("consume: commit for group %q", cs.opts.group), err)
	}
	for _, t := range resp.Topics {
		for _, rp := range t.Partitions {
			if rp.Error != proto.None {
				return describeErr(fmt.Sprintf("consume: commit for group %q partition %d", cs.opts.group, rp.Partition), rp.Error)
			}
		}
	}
	for _, p := range ct.Partitions {
		cs.committed[cs.index(p.Partition)] = p.Offset
	}
	return nil
}
