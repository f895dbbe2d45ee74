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
	"sync"
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
	partitions, err := checkTopic(ctx, opts.server, opts.topic)
	if err != nil {
		return err
	}
	if opts.partition >= int64(partitions) {
		return fmt.Errorf("produce: topic %q has %d partitions; --partition %d does not exist", opts.topic, partitions, opts.partition)
	}
	popts := client.ProducerOptions{ClientID: "ringmq-produce", Acks: clientAcks(opts.acks),
		DeliveryTimeout: produceDeliveryTimeout}
	if opts.partition >= 0 {
		popts.Partitioner = client.ManualPartitioner{}
	}
	p, err := client.NewProducer(opts.server, popts)
	if err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	var st produceStats
	sendErr := sendLines(ctx, p, opts, os.Stdin, &st)
	closeErr := p.Close(ctx) // every accepted line has its result after this
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case sendErr != nil:
		return sendErr
	case closeErr != nil:
		return fmt.Errorf("produce: %w", closeErr)
	case st.failed > 0:
		return fmt.Errorf("produce: %d of %d records were not acknowledged: %v", st.failed, st.lines, st.firstErr)
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

// checkTopic connects to server and returns topic's partition count, so
// that a server that is down or a topic that does not exist fails at once
// with a clear line (the producer and consumer would retry).
func checkTopic(ctx context.Context, server, topic string) (uint32, error) {
	c, err := dialServer(ctx, server, "ringmq-cli")
	if err != nil {
		return 0, err
	}
	defer c.Close()
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

// clientAcks maps proto's acks values to the producer's.
func clientAcks(a int8) client.Acks {
	switch a {
	case proto.AcksNone:
		return client.AcksNone
	case proto.AcksAll:
		return client.AcksAll
	}
	return client.AcksLeader
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

// produceDeliveryTimeout fails a line the server has not taken for this
// long (the producer retries until then).
const produceDeliveryTimeout = 30 * time.Second

// produceStats counts the outcome of a produce run. Results arrive on the
// producer's delivery goroutine; lines is the reading goroutine's.
type produceStats struct {
	lines int

	mu            sync.Mutex
	acked, failed int
	firstErr      error
}

func (st *produceStats) result(r client.Result) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if r.Err == nil {
		st.acked++
		return
	}
	st.failed++
	if st.firstErr == nil {
		st.firstErr = describeErr(fmt.Sprintf("partition %d", r.Partition), r.Err)
	}
}

// sendLines hands every line of in to the producer, which batches them
// (sending as soon as a request slot is free, so typed lines go out at
// once) and keeps their order per partition.
func sendLines(ctx context.Context, p *client.Producer, opts produceOptions, in io.Reader, st *produceStats) error {
	r := bufio.NewReaderSize(in, readBufferSize)
	var long []byte
	rec := client.Record{Topic: opts.topic}
	if opts.partition >= 0 {
		rec.Partition = uint32(opts.partition)
	}
	sep := []byte(opts.keySep)
	done := st.result // one func value for every line
	for n := 1; ; n++ {
		line, ok, err := readLine(r, &long)
		if err != nil || !ok {
			return err
		}
		rec.Key, rec.Value = nil, line
		if len(sep) > 0 {
			if k, v, found := bytes.Cut(line, sep); found {
				rec.Key, rec.Value = k, v
			}
		}
		if err := p.Send(ctx, rec, done); err != nil { // Send copies key and value
			return describeErr(fmt.Sprintf("produce: line %d", n), err)
		}
		st.lines++
	}
}
