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
	from      client.Start
	limit     int64 // 0: no limit
	group     string
	partition int64 // -1: every partition
	json      bool
}

func cmdConsume(args []string) error {
	opts, err := parseConsumeFlags(args)
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
	c, err := client.NewConsumer(opts.server, client.ConsumerOptions{ClientID: "ringmq-consume",
		Group: opts.group, Start: opts.from, MaxWait: fetchMaxWait})
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	defer c.Close()
	actx, cancel := commandTimeout(ctx)
	defer cancel()
	if err := c.Assign(actx, opts.topic, parts...); err != nil {
		return describeErr(fmt.Sprintf("consume %q", opts.topic), err)
	}
	pr := &printer{c: c, opts: opts, out: bufio.NewWriterSize(os.Stdout, consumeOutputBufBytes)}
	return pr.run(ctx)
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

func parseStart(s string) (client.Start, error) {
	switch {
	case s == "earliest":
		return client.StartEarliest(), nil
	case s == "latest":
		return client.StartLatest(), nil
	case strings.HasPrefix(s, "@"):
		ms, err := strconv.ParseInt(s[1:], 10, 64)
		if err != nil || ms < 0 {
			return client.Start{}, fmt.Errorf("--from %q: want @UNIX_MS, milliseconds since 1970", s)
		}
		return client.StartAtTime(time.UnixMilli(ms)), nil
	}
	off, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return client.Start{}, fmt.Errorf("--from %q: want earliest, latest, an offset or @UNIX_MS", s)
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
		recs, err := pr.c.Poll(ctx)
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			return describeErr(fmt.Sprintf("consume %q", pr.opts.topic), err)
		}
		if err := pr.print(recs); err != nil {
			return err
		}
		if pr.opts.group != "" && time.Since(pr.lastCommit) >= commitInterval {
			if err := pr.commit(ctx); err != nil {
				return errors.Join(ctx.Err(), err) // an interrupt mid-commit is still an interrupt
			}
		}
	}
	return nil
}

// print writes records up to the limit; when the limit cuts recs short,
// it moves each partition back to its first record not printed, so a
// commit covers exactly what was printed.
func (pr *printer) print(recs []client.Record) error {
	for i := range recs {
		if pr.opts.limit > 0 && pr.printed >= pr.opts.limit {
			return pr.rewind(recs[i:])
		}
		r := &recs[i]
		pr.line = pr.line[:0]
		if pr.opts.json {
			pr.line = appendJSONRecord(pr.line, r)
		} else {
			pr.line = append(pr.line, r.Value...)
		}
		pr.line = append(pr.line, '\n')
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

// commit stores the group's positions. Output is flushed first, so a
// commit never covers a record that was not written out.
func (pr *printer) commit(ctx context.Context) error {
	if err := pr.out.Flush(); err != nil {
		return fmt.Errorf("consume: write stdout: %w", err)
	}
	pr.lastCommit = time.Now()
	if err := pr.c.Commit(ctx); err != nil {
		return describeErr(fmt.Sprintf("consume: commit for group %q", pr.opts.group), err)
	}
	return nil
}
