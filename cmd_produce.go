package main

// ringmq produce TOPIC: one record per stdin line.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

const (
	produceUsage   = "ringmq produce TOPIC [-a 0|1|all] [-k KEY | -K SEP] [-H name=value ...] [-p P] [--print-offsets] [--timeout 30s] [--idempotence=false] [-s HOST:PORT]"
	maxLineBytes   = 8 << 20 // longest stdin line accepted as one record
	readBufferSize = 256 << 10
)

// produceOptions are the parsed flags of ringmq produce.
type produceOptions struct {
	server       serverFlags
	topic        string
	acks         int8
	keySep       string
	key          []byte // nil: none (or from keySep)
	headers      []client.Header
	partition    int64 // -1: by key, or sticky round robin without one
	printOffsets bool
	timeout      time.Duration
	idempotence  bool
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
	reach := &reachability{w: os.Stderr}
	tlsCfg, err := opts.server.tlsConfig()
	if err != nil {
		return err
	}
	popts := client.ProducerOptions{ClientID: "ringmq-produce", Acks: clientAcks(opts.acks), TLS: tlsCfg,
		DeliveryTimeout: opts.timeout, RequestTimeout: min(opts.timeout, produceRequestTimeout), OnDial: reach.onDial,
		DisableIdempotence: !opts.idempotence}
	if opts.partition >= 0 {
		popts.Partitioner = client.ManualPartitioner{}
	}
	popts.SASL = opts.server.sasl
	p, err := client.NewProducer(opts.server.addr, popts)
	if err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	st := produceStats{timeout: opts.timeout}
	if opts.printOffsets {
		st.offsets = &offsetPrinter{w: bufio.NewWriter(os.Stdout), pending: map[int]client.Result{}}
	}
	sendErr := sendLines(ctx, p, opts, os.Stdin, &st)
	closeErr := p.Close(ctx) // every accepted line has its result after this
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.offsets != nil {
		if err := st.offsets.w.Flush(); err != nil && sendErr == nil {
			sendErr = fmt.Errorf("produce: write stdout: %w", err)
		}
	}
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

// produceRequestTimeout bounds one produce request (the producer retries
// within --timeout).
const produceRequestTimeout = 30 * time.Second

func parseProduceFlags(args []string) (produceOptions, error) {
	fs := newFlagSet("produce", produceUsage)
	server := fs.serverFlag()
	acks := fs.String("acks", "1", "acknowledgement: 0 (none), 1 (leader append) or all")
	fs.alias("a", "acks")
	keySep := fs.String("key-separator", "", "split each line at the first `SEP`: key before, value after (default: no key)")
	fs.alias("K", "key-separator")
	key := fs.String("key", "", "the `KEY` of every record")
	fs.alias("k", "key")
	headers := &headerFlags{}
	fs.Var(headers, "header", "add the header `name=value` to every record; repeatable, a name may repeat")
	fs.alias("H", "header")
	partition := fs.Int64("partition", -1, "send every record to partition `P` (default: by key hash, or sticky round robin)")
	fs.alias("p", "partition")
	printOffsets := fs.Bool("print-offsets", false, "print \"partition P offset O\" for each record, in input order, once acknowledged")
	timeout := fs.Duration("timeout", produceDeliveryTimeout, "fail records not acknowledged within this `DURATION` (the producer retries until then)")
	idempotence := fs.Bool("idempotence", true, "idempotent producer: a retried record is stored once (false: at least once; acks 0 never is)")
	pos, err := fs.parse(args, 1, 1)
	if err != nil {
		return produceOptions{}, err
	}
	o := produceOptions{server: *server, topic: pos[0], keySep: *keySep, partition: *partition,
		headers: headers.list, printOffsets: *printOffsets, timeout: *timeout, idempotence: *idempotence}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "key" || f.Name == "k" {
			o.key = []byte(*key)
		}
	})
	if o.acks, err = parseAcks(*acks); err != nil {
		return o, fmt.Errorf("produce: %w", err)
	}
	switch {
	case o.partition < -1 || o.partition > 1<<31:
		return o, fmt.Errorf("produce: --partition %d is out of range", o.partition)
	case o.key != nil && o.keySep != "":
		return o, fmt.Errorf("produce: --key and --key-separator exclude each other")
	case o.printOffsets && o.acks == proto.AcksNone:
		return o, fmt.Errorf("produce: --print-offsets needs acknowledgements (--acks 1 or all)")
	case o.timeout <= 0:
		return o, fmt.Errorf("produce: --timeout must be positive")
	}
	return o, nil
}

// headerFlags collects repeated -H name=value flags, in order.
type headerFlags struct{ list []client.Header }

func (h *headerFlags) String() string { return "" }

func (h *headerFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want name=value, got %q", s)
	}
	h.list = append(h.list, client.Header{Key: k, Value: []byte(v)})
	return nil
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
func checkTopic(ctx context.Context, server serverFlags, topic string) (uint32, error) {
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

// produceDeliveryTimeout is --timeout's default.
const produceDeliveryTimeout = 30 * time.Second

// produceStats counts the outcome of a produce run. Results arrive on the
// producer's delivery goroutine; lines is the reading goroutine's.
type produceStats struct {
	lines   int
	timeout time.Duration

	mu            sync.Mutex
	acked, failed int
	firstErr      error
	offsets       *offsetPrinter // --print-offsets
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
		st.firstErr = st.describe(r)
	}
}

// describe names why record r failed, in one line.
func (st *produceStats) describe(r client.Result) error {
	what := fmt.Sprintf("partition %d", r.Partition)
	if errors.Is(r.Err, client.ErrDeliveryTimeout) {
		what = fmt.Sprintf("partition %d: no acknowledgement within --timeout %v", r.Partition, st.timeout)
	}
	err := describeErr(what, r.Err)
	return errors.New(strings.ReplaceAll(err.Error(), "\n", "; "))
}

// offsetPrinter prints each record's partition and offset in input
// order, though results arrive per partition: pending holds those that
// arrived ahead of an earlier line. It is used under produceStats.mu.
type offsetPrinter struct {
	w       *bufio.Writer
	next    int // the line whose result prints next (0-based)
	pending map[int]client.Result
}

func (op *offsetPrinter) add(line int, r client.Result) {
	op.pending[line] = r
	for {
		r, ok := op.pending[op.next]
		if !ok {
			op.w.Flush() // typed lines show their offsets at once; an error shows at the end
			return
		}
		delete(op.pending, op.next)
		op.next++
		if r.Err != nil {
			fmt.Fprintf(op.w, "partition %d failed\n", r.Partition)
			continue
		}
		fmt.Fprintf(op.w, "partition %d offset %d\n", r.Partition, r.Offset)
	}
}

// sendLines hands every line of in to the producer, which batches them
// (sending as soon as a request slot is free, so typed lines go out at
// once) and keeps their order per partition.
func sendLines(ctx context.Context, p *client.Producer, opts produceOptions, in io.Reader, st *produceStats) error {
	r := bufio.NewReaderSize(in, readBufferSize)
	var long []byte
	rec := client.Record{Topic: opts.topic, Headers: opts.headers}
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
		rec.Key, rec.Value = opts.key, line
		if len(sep) > 0 {
			if k, v, found := bytes.Cut(line, sep); found {
				rec.Key, rec.Value = k, v
			}
		}
		if st.offsets != nil {
			idx := n - 1
			done = func(r client.Result) {
				st.result(r)
				st.mu.Lock()
				st.offsets.add(idx, r)
				st.mu.Unlock()
			}
		}
		if err := p.Send(ctx, rec, done); err != nil { // Send copies key, value and headers
			return describeErr(fmt.Sprintf("produce: line %d", n), err)
		}
		st.lines++
	}
}
