package main

// ringmq bench produce|consume|e2e|tcp: the load generator (package bench).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ringmq/ringmq/bench"
	"github.com/ringmq/ringmq/proto"
)

const benchUsage = "ringmq bench produce|consume|e2e|tcp [--server HOST:PORT] [--topic T] [--partitions N] " +
	"[--producers N] [--consumers N] [--inflight N] [--msg-size B] [--messages N | --duration D] " +
	"[--batch-bytes B] [--linger D] [--acks 0|1|all] [--compression none|lz4|zstd|snappy] [--rate R] [--json]"

func cmdBench(args []string) error {
	cfg, asJSON, err := parseBenchFlags(args)
	if err != nil {
		return quietUsage(err)
	}
	ctx, stop := signalContext()
	defer stop()
	rep, err := bench.Run(ctx, cfg)
	if rep != nil {
		if perr := printReport(rep, asJSON); perr != nil && err == nil {
			err = perr
		}
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // interrupted: the report covers the run so far
	}
	if err != nil {
		return fmt.Errorf("bench %s: %w", cfg.Mode, err)
	}
	return nil
}

func printReport(rep *bench.Report, asJSON bool) error {
	if !asJSON {
		return rep.WriteText(os.Stdout)
	}
	enc := json.NewEncoder(os.Stdout)
	return enc.Encode(rep)
}

func parseBenchFlags(args []string) (bench.Config, bool, error) {
	fs := newFlagSet("bench", benchUsage)
	server := fs.serverFlag()
	topic := fs.String("topic", bench.DefaultTopic, "topic (created when missing)")
	partitions := fs.Int("partitions", bench.DefaultPartitions, "partitions of a topic created by the run")
	producers := fs.Int("producers", bench.DefaultProducers, "producer connections (tcp: writer connections)")
	consumers := fs.Int("consumers", bench.DefaultConsumers, "consumer connections")
	inflight := fs.Int("inflight", bench.DefaultInFlight, "produce requests in flight per producer connection")
	msgSize := fs.Int("msg-size", bench.DefaultMsgSize, "bytes per record value (at least 8)")
	messages := fs.Int64("messages", 0, fmt.Sprintf("messages in all (default %d; consume: what the topic holds)", bench.DefaultMessages))
	duration := fs.Duration("duration", 0, "run for this long instead of a message count")
	batchBytes := fs.Int("batch-bytes", bench.DefaultBatchBytes, "record bytes per produce batch (tcp: sets the write size)")
	linger := fs.Duration("linger", bench.DefaultLinger, "with --rate: longest wait to fill a batch")
	acks := fs.String("acks", "1", "0, 1 or all")
	compression := fs.String("compression", "none", "none, lz4, zstd or snappy")
	rate := fs.Float64("rate", 0, "cap on messages per second, all producers together (0: none)")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	pos, err := fs.parse(args, 1, 1)
	if err != nil {
		return bench.Config{}, false, err
	}
	cfg := bench.Config{
		Mode: bench.Mode(pos[0]), Server: *server, Topic: *topic, Partitions: *partitions,
		Producers: *producers, Consumers: *consumers, InFlight: *inflight, MsgSize: *msgSize,
		Messages: *messages, Duration: *duration, BatchBytes: *batchBytes, Linger: *linger,
		Rate: *rate, Progress: os.Stderr, ProgressInterval: time.Second,
	}
	if err := checkBenchFlags(&cfg, *acks, *compression); err != nil {
		return cfg, false, err
	}
	return cfg, *asJSON, nil
}

func checkBenchFlags(cfg *bench.Config, acks, compression string) error {
	var err error
	if cfg.Acks, err = parseAcks(acks); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if cfg.Codec, err = proto.ParseCodec(compression); err != nil {
		return fmt.Errorf("bench: --compression %q: want none, lz4, zstd or snappy", compression)
	}
	switch cfg.Mode {
	case bench.ModeProduce, bench.ModeConsume, bench.ModeE2E, bench.ModeTCP:
	default:
		return fmt.Errorf("bench: unknown mode %q; usage: %s", cfg.Mode, benchUsage)
	}
	for name, v := range map[string]int{"--partitions": cfg.Partitions, "--producers": cfg.Producers,
		"--consumers": cfg.Consumers, "--inflight": cfg.InFlight, "--msg-size": cfg.MsgSize, "--batch-bytes": cfg.BatchBytes} {
		if v < 1 {
			return fmt.Errorf("bench: %s must be at least 1", name)
		}
	}
	if cfg.Messages < 0 || cfg.Duration < 0 || cfg.Rate < 0 {
		return fmt.Errorf("bench: --messages, --duration and --rate must not be negative")
	}
	if cfg.Messages > 0 && cfg.Duration > 0 {
		return fmt.Errorf("bench: give --messages or --duration, not both")
	}
	return nil
}
