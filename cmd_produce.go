package main

// ringmq produce TOPIC: one record per stdin line.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

const (
	produceUsage   = "ringmq produce TOPIC [--acks 0|1|all] [--key-separator S] [--partition P] [--server HOST:PORT]"
	maxLineBytes   = 8 << 20 // longest stdin line accepted as one record
	readBufferSize = 256 << 10
)

// produceOptions are the parsed flags of ringmq produce.
type produceOptions struct {
	server    string
	topic     string
	acks      int8
	keySep    string
	partition int64 // -1: by key, or sticky round robin without one
}

func cmdProduce(args []string) error {
	opts, err := parseProduceFlags(args)
	if err != nil {
		return quietUsage(err)
	}
	// No signal handling: reading stdin blocks, and an interrupted produce
	// should just end (non-zero), as any filter does.
	ctx := context.Background()
	c, err := dialServer(ctx, opts.server, "ringmq-produce")
	if err != nil {
		return err
	}
	defer c.Close()
	partitions, err := topicPartitions(ctx, c, opts.topic)
	if err != nil {
		return err
	}
	if opts.partition >= int64(partitions) {
		return fmt.Errorf("produce: topic %q has %d partitions; --partition %d does not exist", opts.topic, partitions, opts.partition)
	}
	p := newLineProducer(c, opts, partitions)
	stats, err := p.run(ctx, os.Stdin)
	if err != nil {
		return err
	}
	if stats.failed > 0 {
		return fmt.Errorf("produce: %d of %d records were not acknowledged: %v", stats.failed, stats.lines, stats.firstErr)
	}
	return nil
}

func parseProduceFlags(args []string) (produceOptions, error) {
	fs := newFlagSet("produce", produceUsage)
	server := fs.serverFlag()
	acks := fs.String("acks", "1", "acknowledgement: 0 (none), 1 (leader append) or all")
	keySep := fs.String("key-separator", "", "split each line at the first `S`: key before, value after (default: no key)")
	partition := fs.Int64("partition", -1, "send every record to partition `P` (default: by key hash, or sticky round robin)")
	pos, err := fs.parse(args, 1, 1)
	if err != nil {
		return produceOptions{}, err
	}
	o := produceOptions{server: *server, topic: pos[0], keySep: *keySep, partition: *partition}
	if o.acks, err = parseAcks(*acks); err != nil {
		return o, fmt.Errorf("produce: %w", err)
	}
	if o.partition < -1 || o.partition > 1<<31 {
		return o, fmt.Errorf("produce: --partition %d is out of range", o.partition)
	}
	return o, nil
}

// parseAcks maps 0, 1 and all to proto's acks values.
func parseAcks(s string) (int8, error) {
	switch s {
	case "0":
		return proto.AcksNone, nil
	case "1":
		return proto.AcksLeader, nil
	case "all", "-1":
		return proto.AcksAll, nil
	}
	return 0, fmt.Errorf("--acks must be 0, 1 or all, not %q", s)
}

// topicPartitions returns topic's partition count, or a clear error.
func topicPartitions(ctx context.Context, c *client.Conn, topic string) (uint32, error) {
	ctx, cancel := commandTimeout(ctx)
	defer cancel()
	resp, err := c.Metadata(ctx, &proto.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, describeErr(fmt.Sprintf("topic %q", topic), err)
	}
	if len(resp.Topics) != 1 {
		return 0, fmt.Errorf("topic %q: server answered %d topics", topic, len(resp.Topics))
	}
	t := resp.Topics[0]
	if t.Error != proto.None {
		return 0, describeErr(fmt.Sprintf("topic %q", topic), t.Error)
	}
	return uint32(len(t.Partitions)), nil
}

// readLine returns the next line of r without its newline, and false at
// the end of input. The line aliases r's buffer or *long.
func readLine(r *bufio.Reader, long *[]byte) ([]byte, bool, error) {
	line, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		*long = append((*long)[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(*long) > maxLineBytes {
				return nil, false, fmt.Errorf("produce: a line is longer than %d bytes", maxLineBytes)
			}
			line, err = r.ReadSlice('\n')
			*long = append(*long, line...)
		}
		line = *long
	}
	switch {
	case err == io.EOF && len(line) == 0:
		return nil, false, nil
	case err != nil && err != io.EOF:
		return nil, false, fmt.Errorf("produce: read stdin: %w", err)
	}
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	return line, true, nil
}

// keyPartition is the partition of a keyed record: FNV-1a 32 of the key
// modulo the partition count.
func keyPartition(key []byte, partitions uint32) uint32 {
	h := uint32(2166136261)
	for _, b := range key {
		h ^= uint32(b)
		h *= 16777619
	}
	return h % partitions
}

const (
	maxRequestRecordBytes = 1 << 20  // records per produce request, all partitions
	stickyBytes           = 16 << 10 // keyless records stay on one partition this long
	produceTimeoutMs      = 30_000
)

// produceStats counts the outcome of a produce run.
type produceStats struct {
	lines, acked, failed int
	firstErr             error
}

// lineProducer batches stdin lines per partition and sends one produce
// request at a time, so records keep their input order in each partition.
type lineProducer struct {
	c          *client.Conn
	opts       produceOptions
	partitions uint32
	builders   []proto.BatchBuilder
	bufs       [][]byte // each builder's buffer, kept across batches
	counts     []int    // records pending per partition
	pending    int      // bytes pending, all partitions
	sticky     uint32
	req        proto.ProduceRequest
	stats      produceStats
}

func newLineProducer(c *client.Conn, opts produceOptions, partitions uint32) *lineProducer {
	p := &lineProducer{
		c: c, opts: opts, partitions: partitions,
		builders: make([]proto.BatchBuilder, partitions),
		bufs:     make([][]byte, partitions),
		counts:   make([]int, partitions),
	}
	p.req = proto.ProduceRequest{Acks: opts.acks, TimeoutMs: produceTimeoutMs,
		Topics: []proto.ProduceTopic{{Name: []byte(opts.topic)}}}
	return p
}

// run sends every line of in, flushing whenever the input pauses or a
// request is full, and returns what was acknowledged.
func (p *lineProducer) run(ctx context.Context, in io.Reader) (produceStats, error) {
	r := bufio.NewReaderSize(in, readBufferSize)
	var long []byte
	for {
		if r.Buffered() == 0 && p.pending > 0 {
			if err := p.flush(ctx); err != nil {
				return p.stats, err
			}
		}
		line, ok, err := readLine(r, &long)
		if err != nil {
			return p.stats, err
		}
		if !ok {
			break
		}
		p.add(line)
		if p.pending >= maxRequestRecordBytes {
			if err := p.flush(ctx); err != nil {
				return p.stats, err
			}
		}
	}
	if err := p.flush(ctx); err != nil {
		return p.stats, err
	}
	if p.opts.acks == proto.AcksNone {
		return p.stats, p.barrier(ctx)
	}
	return p.stats, nil
}

// add appends one line to its partition's batch.
func (p *lineProducer) add(line []byte) {
	var key, value []byte = nil, line
	if p.opts.keySep != "" {
		if k, v, ok := bytes.Cut(line, []byte(p.opts.keySep)); ok {
			key, value = k, v
		}
	}
	part := p.choose(key)
	b := &p.builders[part]
	if p.counts[part] == 0 {
		b.Reset(p.bufs[part])
	}
	before := b.Size()
	b.Append(time.Now().UnixMilli(), key, value, nil)
	p.counts[part]++
	p.pending += b.Size() - before
	p.stats.lines++
}

// choose picks the partition of a record with key (nil: none).
func (p *lineProducer) choose(key []byte) uint32 {
	switch {
	case p.opts.partition >= 0:
		return uint32(p.opts.partition)
	case key != nil:
		return keyPartition(key, p.partitions)
	}
	if p.builders[p.sticky].Size() >= stickyBytes && p.counts[p.sticky] > 0 {
		p.sticky = (p.sticky + 1) % p.partitions
	}
	return p.sticky
}

// flush sends every pending batch in one request and waits for its
// response. Records a partition refuses are counted as failed; a failure
// of the whole request ends the run.
func (p *lineProducer) flush(ctx context.Context) error {
	if p.pending == 0 {
		return nil
	}
	t := &p.req.Topics[0]
	t.Partitions = t.Partitions[:0]
	counts := make(map[uint32]int, len(p.counts))
	for i := range p.builders {
		if p.counts[i] == 0 {
			continue
		}
		batch := p.builders[i].Finish()
		p.bufs[i] = batch[:0]
		t.Partitions = append(t.Partitions, proto.ProducePartition{Partition: uint32(i), Records: batch})
		counts[uint32(i)] = p.counts[i]
		p.counts[i] = 0
	}
	p.pending = 0
	resp, err := p.c.Produce(ctx, &p.req)
	if err != nil {
		return describeErr(fmt.Sprintf("produce to %q (%d records acknowledged before)", p.opts.topic, p.stats.acked), err)
	}
	if resp == nil { // acks 0
		for _, n := range counts {
			p.stats.acked += n
		}
		return nil
	}
	p.account(resp, counts)
	return nil
}

// account counts a response's acknowledged and refused records.
func (p *lineProducer) account(resp *proto.ProduceResponse, counts map[uint32]int) {
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			n := counts[rp.Partition]
			delete(counts, rp.Partition)
			if rp.Error == proto.None {
				p.stats.acked += n
				continue
			}
			p.fail(n, describeErr(fmt.Sprintf("partition %d", rp.Partition), rp.Error))
		}
	}
	for part, n := range counts {
		p.fail(n, fmt.Errorf("partition %d: missing from the server's response", part))
	}
}

func (p *lineProducer) fail(n int, err error) {
	p.stats.failed += n
	if p.stats.firstErr == nil {
		p.stats.firstErr = err
	}
}

// barrier waits until every acks=0 request was written: the connection
// writes frames in the order they were queued, so an answer to a later
// request means the earlier bytes reached the server.
func (p *lineProducer) barrier(ctx context.Context) error {
	ctx, cancel := commandTimeout(ctx)
	defer cancel()
	if _, err := p.c.Metadata(ctx, &proto.MetadataRequest{Topics: []string{p.opts.topic}}); err != nil {
		return describeErr(fmt.Sprintf("produce to %q", p.opts.topic), err)
	}
	return nil
}
