package main

// ringmq consume TOPIC: print records, optionally as a consumer group that
// commits as it goes and resumes from its commit.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

const consumeUsage = "ringmq consume TOPIC [-o earliest|latest|OFFSET|@UNIX_MS|RFC3339|-DURATION] [-n N] [-e] [-g GROUP [--type failover|exclusive|shared|key_shared] [--session-timeout D]] [-p P] [-f text|json|FORMAT] [--encoding text|base64|hex] [--print-key ...] [-s HOST:PORT]"

// consumeOptions are the parsed flags of ringmq consume.
type consumeOptions struct {
	server    serverFlags
	topic     string
	from      client.Start
	limit     int64 // 0: no limit
	exitAtEnd bool
	group     string
	subType   client.Subscription
	session   time.Duration
	partition int64 // -1: every partition
	json      bool
	enc       encoding
	format    recordFormat // when not json
}

func cmdConsume(args []string) error {
	opts, err := parseConsumeFlags(args, time.Now())
	if err != nil {
		return quietUsage(err)
	}
	ctx, stop := signalContext()
	defer stop()
	partitions, err := checkTopic(ctx, opts.server, opts.topic)
	if err != nil {
		return err
	}
	var parts []uint32 // none: all
	if opts.partition >= 0 {
		if opts.partition >= int64(partitions) {
			return fmt.Errorf("consume: topic %q has %d partitions; --partition %d does not exist", opts.topic, partitions, opts.partition)
		}
		parts = []uint32{uint32(opts.partition)}
	}
	reach := &reachability{w: os.Stderr}
	tlsCfg, err := opts.server.tlsConfig()
	if err != nil {
		return err
	}
	copts := client.ConsumerOptions{ClientID: "ringmq-consume", Group: opts.group, Start: opts.from,
		MaxWait: fetchMaxWait, OnDial: reach.onDial, Subscription: opts.subType, SessionTimeout: opts.session,
		TLS: tlsCfg}
	if opts.group != "" {
		copts.OnAssigned = func(tps []client.TopicPartition) { reportAssignment(opts.group, "assigned", tps) }
		copts.OnRevoked = func(tps []client.TopicPartition) { reportAssignment(opts.group, "revoked", tps) }
	}
	copts.SASL = opts.server.sasl
	c, err := client.NewConsumer(opts.server.addr, copts)
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	defer c.Close()
	actx, cancel := commandTimeout(ctx)
	defer cancel()
	if opts.group != "" && opts.partition < 0 {
		err = c.Subscribe(actx, opts.topic)
	} else { // manual assignment; with --group, commits while the group has no members
		err = c.Assign(actx, opts.topic, parts...)
	}
	if err != nil {
		return describeErr(fmt.Sprintf("consume %q", opts.topic), err)
	}
	pr := &printer{c: c, opts: opts, out: bufio.NewWriterSize(os.Stdout, consumeOutputBufBytes)}
	if opts.exitAtEnd {
		if pr.ends, err = logEnds(actx, opts.server, opts.topic); err != nil {
			return err
		}
	}
	return pr.run(ctx)
}

// logEnds returns the log end of every partition of topic, as now, each
// from the partition's leader (an offline partition's is 0). It is the
// log end, not the high watermark: a record acknowledged before the
// start but not yet flushed on a flush=sync topic is still waited for.
func logEnds(ctx context.Context, server serverFlags, topic string) ([]uint64, error) {
	opts, err := server.options("ringmq-cli")
	if err != nil {
		return nil, err
	}
	a, err := client.NewAdmin(server.addr, opts)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	t, err := a.DescribeTopic(ctx, topic)
	if isConnectErr(err) {
		return nil, connectErr(server.addr, err)
	}
	if err != nil {
		return nil, describeErr(fmt.Sprintf("topic %q", topic), err)
	}
	ends := make([]uint64, len(t.Partitions))
	for _, p := range t.Partitions {
		if int(p.Partition) < len(ends) {
			ends[p.Partition] = p.LogEnd
		}
	}
	return ends, nil
}

func parseConsumeFlags(args []string, now time.Time) (consumeOptions, error) {
	fs := newFlagSet("consume", consumeUsage)
	server := fs.serverFlag()
	from := fs.String("from", "latest", "`WHERE` to start without a committed offset: earliest, latest, an offset, @UNIX_MS, an RFC 3339 time (2026-11-30T12:00:00Z) or a time ago (-15m, -2h): the first record at or after it")
	fs.alias("o", "from")
	limit := fs.Int64("n", 0, "exit after `N` records (default: run until interrupted)")
	fs.Var(fs.Lookup("n").Value, "max-messages", "same as -n (Kafka console consumer)")
	fromBeginning := fs.Bool("from-beginning", false, "same as --from earliest (Kafka console consumer)")
	exitAtEnd := fs.Bool("exit-at-end", false, "exit once every partition is read up to its end as of the start")
	fs.alias("e", "exit-at-end")
	group := fs.String("group", "", "consumer `group` to join: the broker assigns its partitions; resume from its committed offsets and commit as records are printed")
	fs.alias("g", "group")
	subType := fs.String("type", "failover", "group subscription `TYPE`: failover (partitions spread over the members), exclusive (one member at a time), shared (each record to one member, acked after printing) or key_shared (shared, one member per key)")
	session := fs.Duration("session-timeout", 10*time.Second, "group member session `timeout`: silent this long (killed, hung), its partitions go to the others")
	partition := fs.Int64("partition", -1, "read only partition `P` (default: all)")
	fs.alias("p", "partition")
	format := fs.String("format", "text", "`FORMAT`: text (one value a line), json (one object a record), or a format string such as '%p %o %k=%v\\n' (verbs %t %p %o %T %k %v %h %K %V %H; %v{hex}, %v{base64}, %T{rfc3339})")
	fs.alias("f", "format")
	enc := fs.String("encoding", "text", "write keys, values and header values as `ENC`: text, base64 or hex (json with base64 or hex round-trips any bytes)")
	var cf consoleFlags
	fs.BoolVar(&cf.key, "print-key", false, "text output: print the key before the value (Kafka console consumer style)")
	fs.BoolVar(&cf.ts, "print-timestamp", false, "text output: print CreateTime:MS first")
	fs.BoolVar(&cf.part, "print-partition", false, "text output: print Partition:P")
	fs.BoolVar(&cf.off, "print-offset", false, "text output: print Offset:O")
	fs.BoolVar(&cf.hdrs, "print-headers", false, "text output: print the headers as k=v,k2=v2")
	fs.StringVar(&cf.sep, "key-separator", "\t", "text output: `SEP`arator between the printed fields (escapes \\t \\n)")
	pos, err := fs.parse(args, 1, 1)
	if err != nil {
		return consumeOptions{}, err
	}
	o := consumeOptions{server: *server, topic: pos[0], limit: *limit, exitAtEnd: *exitAtEnd, group: *group, partition: *partition,
		session: *session}
	if o.subType, err = client.ParseSubscription(*subType); err != nil {
		return o, fmt.Errorf("consume: --type %q: want failover, exclusive, shared or key_shared", *subType)
	}
	if o.subType.Shared() && *group == "" {
		return o, fmt.Errorf("consume: --type %s needs --group", *subType)
	}
	if o.subType.Shared() && (*partition >= 0 || *exitAtEnd) {
		return o, fmt.Errorf("consume: --type %s reads every partition as records become available; --partition and --exit-at-end do not apply", *subType)
	}
	if *fromBeginning {
		*from = "earliest"
	}
	if o.from, err = parseStart(*from, now); err != nil {
		return o, fmt.Errorf("consume: %w", err)
	}
	if o.enc, err = parseEncoding(*enc); err != nil {
		return o, fmt.Errorf("consume: %w", err)
	}
	switch {
	case o.limit < 0:
		return o, fmt.Errorf("consume: -n must not be negative")
	case o.partition < -1 || o.partition > 1<<31:
		return o, fmt.Errorf("consume: --partition %d is out of range", o.partition)
	case o.group != "" && !proto.ValidName([]byte(o.group)):
		return o, fmt.Errorf("consume: invalid group name %q (1-%d of [A-Za-z0-9._-])", o.group, proto.MaxNameLen)
	case o.session <= 0:
		return o, fmt.Errorf("consume: --session-timeout must be more than 0")
	}
	if err := o.setFormat(*format, cf); err != nil {
		return o, fmt.Errorf("consume: %w", err)
	}
	return o, nil
}

// consoleFlags are the Kafka console consumer's print.* options.
type consoleFlags struct {
	key, ts, part, off, hdrs bool
	sep                      string
}

func (cf consoleFlags) any() bool { return cf.key || cf.ts || cf.part || cf.off || cf.hdrs }

// setFormat chooses the output from --format and the --print-* flags.
func (o *consumeOptions) setFormat(format string, cf consoleFlags) error {
	tmpl := format
	switch {
	case format == "json" && cf.any():
		return fmt.Errorf("--print-* options apply to text output, not --format json")
	case format == "json":
		o.json = true
		return nil
	case format == "text" && cf.any():
		tmpl = consoleFormat(cf.sep, cf.ts, cf.part, cf.off, cf.hdrs, cf.key)
	case format == "text":
		tmpl = `%v\n`
	case cf.any():
		return fmt.Errorf("--print-* options apply to --format text, not a format string")
	case !strings.Contains(format, "%"):
		return fmt.Errorf("--format must be text, json or a format string with %%-verbs, not %q", format)
	}
	var err error
	o.format, err = parseFormat(tmpl, o.enc)
	return err
}

// parseStart parses --from; times ago count from now.
func parseStart(s string, now time.Time) (client.Start, error) {
	switch s {
	case "earliest", "oldest", "start":
		return client.StartEarliest(), nil
	case "latest", "newest", "end":
		return client.StartLatest(), nil
	}
	if ms, ok := strings.CutPrefix(s, "@"); ok {
		n, err := strconv.ParseInt(ms, 10, 64)
		if err != nil || n < 0 {
			return client.Start{}, fmt.Errorf("--from %q: want @UNIX_MS, milliseconds since 1970", s)
		}
		return client.StartAtTime(time.UnixMilli(n)), nil
	}
	if ago, ok := strings.CutPrefix(s, "-"); ok {
		d, err := time.ParseDuration(ago)
		if err != nil || d <= 0 {
			return client.Start{}, fmt.Errorf("--from %q: want a time ago such as -15m, -2h or -90s", s)
		}
		return client.StartAtTime(now.Add(-d)), nil
	}
	if strings.ContainsAny(s, "T:") || strings.Count(s, "-") == 2 {
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
			if t, err := time.Parse(layout, s); err == nil {
				return client.StartAtTime(t), nil
			}
		}
		return client.Start{}, fmt.Errorf("--from %q: want an RFC 3339 time such as 2026-11-30T12:00:00Z (or a date, 2026-11-30, UTC)", s)
	}
	off, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return client.Start{}, fmt.Errorf("--from %q: want earliest, latest, an offset, @UNIX_MS, an RFC 3339 time or a time ago (-15m)", s)
	}
	return client.StartAt(off), nil
}

const (
	fetchMaxWait          = 500 * time.Millisecond
	commitInterval        = time.Second
	finalCommitTimeout    = 10 * time.Second
	consumeOutputBufBytes = 256 << 10
)

// printer prints what a client.Consumer polls; with a group it commits
// (at most once a second, and before it returns) the position after the
// last record printed.
type printer struct {
	c          *client.Consumer
	opts       consumeOptions
	ends       []uint64 // --exit-at-end: each partition's end as of the start
	printed    int64
	out        *bufio.Writer
	line       []byte // output scratch
	lastCommit time.Time
}

// run polls and prints until the limit, an error or an interrupt (which
// ends it cleanly).
func (pr *printer) run(ctx context.Context) error {
	err := pr.loop(ctx)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		err = nil // interrupted: a normal way to stop
	}
	if ferr := pr.out.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("consume: write stdout: %w", ferr)
	}
	if pr.opts.group != "" {
		cctx, cancel := context.WithTimeout(context.Background(), finalCommitTimeout)
		defer cancel()
		if cerr := pr.commit(cctx); err == nil {
			err = cerr
		}
	}
	return err
}

func (pr *printer) loop(ctx context.Context) error {
	for pr.opts.limit == 0 || pr.printed < pr.opts.limit {
		if pr.atEnd() {
			return nil
		}
		recs, err := pr.c.Poll(ctx)
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			return describeErr(fmt.Sprintf("consume %q", pr.opts.topic), err)
		}
		before := pr.printed
		if err := pr.print(recs); err != nil {
			return err
		}
		if pr.opts.subType.Shared() {
			if err := pr.ack(ctx, recs, int(pr.printed-before)); err != nil {
				return err
			}
			continue
		}
		if pr.opts.group != "" && time.Since(pr.lastCommit) >= commitInterval {
			if err := pr.commit(ctx); err != nil {
				return errors.Join(ctx.Err(), err) // an interrupt mid-commit is still an interrupt
			}
		}
	}
	return nil
}

// atEnd reports, with --exit-at-end, whether every assigned partition is
// read up to its end as of the start.
func (pr *printer) atEnd() bool {
	if !pr.opts.exitAtEnd {
		return false
	}
	as := pr.c.Assignment()
	if pr.opts.group != "" && len(as) == 0 {
		return false // nothing assigned (yet)
	}
	for _, a := range as {
		if int(a.Partition) < len(pr.ends) && a.Offset < pr.ends[a.Partition] {
			return false
		}
	}
	return true
}

// print writes records up to the limit; when the limit cuts recs short,
// it moves each partition back to its first record not printed, so a
// commit covers exactly what was printed.
func (pr *printer) print(recs []client.Record) error {
	for i := range recs {
		if pr.opts.limit > 0 && pr.printed >= pr.opts.limit {
			if pr.opts.subType.Shared() {
				break // ack releases the rest
			}
			return pr.rewind(recs[i:])
		}
		r := &recs[i]
		pr.line = pr.line[:0]
		if pr.opts.json {
			pr.line = appendJSONRecord(pr.line, r, pr.opts.enc)
			pr.line = append(pr.line, '\n')
		} else {
			pr.line = pr.opts.format.appendRecord(pr.line, r)
		}
		if _, err := pr.out.Write(pr.line); err != nil {
			return fmt.Errorf("consume: write stdout: %w", err)
		}
		pr.printed++
	}
	if err := pr.out.Flush(); err != nil {
		return fmt.Errorf("consume: write stdout: %w", err)
	}
	return nil
}

// rewind seeks every partition in rest to its first record there.
func (pr *printer) rewind(rest []client.Record) error {
	seen := map[uint32]bool{}
	for _, r := range rest {
		if seen[r.Partition] {
			continue
		}
		seen[r.Partition] = true
		if err := pr.c.Seek(r.Topic, r.Partition, r.Offset); err != nil {
			return fmt.Errorf("consume: %w", err)
		}
	}
	return nil
}

// ack acknowledges the first n records of a shared subscription's poll,
// printed and flushed, and releases the rest (cut by -n) to the others.
func (pr *printer) ack(ctx context.Context, recs []client.Record, n int) error {
	err := pr.c.Ack(ctx, recs[:n]...)
	if n < len(recs) {
		err = errors.Join(err, pr.c.Nack(ctx, 0, "", recs[n:]...))
	}
	if errors.Is(err, proto.RecordNotHeld) || errors.Is(err, proto.UnknownMemberID) || errors.Is(err, proto.FencedMemberEpoch) {
		// The lock expired (this consumer was slower than ack_timeout) or
		// the member was lost: the records go, or went, to another member.
		fmt.Fprintf(os.Stderr, "consume: group %q: ack refused: %v\n", pr.opts.group, err)
		return nil
	}
	if err != nil {
		return describeErr(fmt.Sprintf("consume: ack for group %q", pr.opts.group), err)
	}
	return nil
}

// commit stores the group's positions. Output is flushed first, so a
// commit never covers a record that was not written out. A shared
// subscription has no positions: its records are acked as printed.
func (pr *printer) commit(ctx context.Context) error {
	if pr.opts.subType.Shared() {
		return pr.out.Flush()
	}
	if err := pr.out.Flush(); err != nil {
		return fmt.Errorf("consume: write stdout: %w", err)
	}
	pr.lastCommit = time.Now()
	err := pr.c.Commit(ctx)
	if errors.Is(err, proto.FencedMemberEpoch) || errors.Is(err, proto.UnknownMemberID) {
		// The partition moved to another member (this one was too slow or
		// lost its session): its records go on there from the last commit.
		fmt.Fprintf(os.Stderr, "consume: group %q: commit refused: %v\n", pr.opts.group, err)
		return nil
	}
	if err != nil {
		return describeErr(fmt.Sprintf("consume: commit for group %q", pr.opts.group), err)
	}
	return nil
}

// reportAssignment tells stderr which partitions the group gave or took.
func reportAssignment(group, what string, tps []client.TopicPartition) {
	names := make([]string, len(tps))
	for i, tp := range tps {
		names[i] = fmt.Sprintf("%s/%d", tp.Topic, tp.Partition)
	}
	slices.Sort(names)
	fmt.Fprintf(os.Stderr, "consume: group %q: %s %s\n", group, what, strings.Join(names, " "))
}
