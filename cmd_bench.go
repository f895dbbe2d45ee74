package main

// ringmq bench produce|consume|e2e|tcp|rawlog: the load generator (package bench).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/ringmq/ringmq/bench"
	"github.com/ringmq/ringmq/proto"
	"golang.org/x/sys/unix"
)

const benchUsage = "ringmq bench produce|consume|e2e|tcp|rawlog [--driver raw|client] [--server HOST:PORT] [--topic T] [--partitions N] " +
	"[--producers N] [--consumers N] [--type failover|exclusive|shared|key_shared] [--inflight N] [--msg-size B] [--messages N | --duration D] " +
	"[--batch-bytes B] [--linger D] [--dir DIR] [--acks 0|1|all] [--compression none|gzip|snappy|lz4|zstd] [--rate R] [--idempotence=false] [--json] [--report FILE.html] [--cpuprofile FILE]"

func cmdBench(args []string) error {
	cfg, opts, err := parseBenchFlags(args)
	if err != nil {
		return quietUsage(err)
	}
	if opts.cpuProfile != "" {
		stopProfile, err := startCPUProfile(opts.cpuProfile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	var report *os.File
	if opts.report != "" {
		// Created before the run, so that a bad path does not cost a run.
		if report, err = os.Create(opts.report); err != nil {
			return fmt.Errorf("bench: --report: %w", err)
		}
		defer report.Close()
	}
	ctx, stop := signalContext()
	defer stop()
	rep, err := bench.Run(ctx, cfg)
	if rep != nil {
		if perr := printReport(rep, opts.json); perr != nil && err == nil {
			err = perr
		}
		if report != nil {
			if werr := writeHTMLReport(report, rep); werr != nil && err == nil {
				err = werr
			}
		}
	} else if report != nil {
		report.Close()
		os.Remove(opts.report)
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // interrupted: the report covers the run so far
	}
	switch {
	case isConnectErr(err):
		return connectErr(cfg.Server, err)
	case err != nil:
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

// writeHTMLReport writes rep to f as the --report page and closes f.
func writeHTMLReport(f *os.File, rep *bench.Report) error {
	err := rep.WriteHTML(f, time.Now())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("bench: --report: %w", err)
	}
	return nil
}

// isTerminal reports whether f is a terminal (the progress bar is drawn
// only there; elsewhere progress is one plain line a second).
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// benchOutput are the flags about output rather than load.
type benchOutput struct {
	json       bool
	report     string
	cpuProfile string
}

// startCPUProfile writes the bench process's CPU profile to path until the
// returned stop.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("bench: --cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("bench: --cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

func parseBenchFlags(args []string) (bench.Config, benchOutput, error) {
	fs := newFlagSet("bench", benchUsage)
	server := fs.serverFlag()
	topic := fs.String("topic", bench.DefaultTopic, "topic (created when missing)")
	partitions := fs.Int("partitions", bench.DefaultPartitions, "partitions of a topic created by the run")
	producers := fs.Int("producers", bench.DefaultProducers, "producer connections (tcp, rawlog: writer connections)")
	consumers := fs.Int("consumers", bench.DefaultConsumers, "consumer connections")
	inflight := fs.Int("inflight", bench.DefaultInFlight, "produce requests in flight per producer connection")
	msgSize := fs.Int("msg-size", bench.DefaultMsgSize, "bytes per record value (at least 8)")
	messages := fs.Int64("messages", 0, fmt.Sprintf("messages in all (default %d; consume: what the topic holds)", bench.DefaultMessages))
	duration := fs.Duration("duration", 0, "run for this long instead of a message count")
	batchBytes := fs.Int("batch-bytes", bench.DefaultBatchBytes, "record bytes per produce batch (tcp, rawlog: sets the write size)")
	linger := fs.Duration("linger", bench.DefaultLinger, "with --rate: longest wait to fill a batch")
	acks := fs.String("acks", "1", "0, 1 or all")
	compression := fs.String("compression", "none", "none, gzip, snappy, lz4 or zstd")
	dir := fs.String("dir", "", "rawlog: directory for its files (a fresh one inside, removed after; default: the system's temp dir)")
	rate := fs.Float64("rate", 0, "cap on messages per second, all producers together (0: none)")
	idempotence := fs.Bool("idempotence", true, "produce as idempotent producers (producer ids and sequence numbers; never with acks 0)")
	var out benchOutput
	fs.BoolVar(&out.json, "json", false, "print the report as one JSON object")
	fs.StringVar(&out.report, "report", "", "also write the report as one self-contained HTML page with charts to `FILE.html`")
	fs.StringVar(&out.cpuProfile, "cpuprofile", "", "write the bench process's CPU profile to `FILE` (go tool pprof)")
	subType := fs.String("type", "", "consume: read as --consumers members of a fresh group of subscription `TYPE` (failover, exclusive, shared: each poll acked in bulk, latency = ack round trip; key_shared)")
	shareBatch := fs.Int("share-batch", bench.DefaultShareBatch, "consume --type shared|key_shared: records a member acquires per poll (the broker's groups.max_unacked bounds all members together)")
	driver := fs.String("driver", string(bench.DriverRaw), "raw: pre-built batches over one connection per producer (the broker's numbers); client: client.Producer and client.Consumer, as applications use them")
	pos, err := fs.parse(args, 1, 1)
	if err != nil {
		return bench.Config{}, out, err
	}
	tlsCfg, err := server.tlsConfig()
	if err != nil {
		return bench.Config{}, out, err
	}
	cfg := bench.Config{
		Mode: bench.Mode(pos[0]), Driver: bench.Driver(*driver), Type: *subType, ShareBatch: *shareBatch, Server: server.addr, SASL: server.sasl, TLS: tlsCfg, Dir: *dir, Topic: *topic, Partitions: *partitions,
		Producers: *producers, Consumers: *consumers, InFlight: *inflight, MsgSize: *msgSize,
		Messages: *messages, Duration: *duration, BatchBytes: *batchBytes, Linger: *linger,
		Rate: *rate, Idempotent: *idempotence, Progress: os.Stderr, ProgressInterval: time.Second, ProgressBar: isTerminal(os.Stderr),
	}
	if err := checkBenchFlags(&cfg, *acks, *compression); err != nil {
		return cfg, out, err
	}
	return cfg, out, nil
}

func checkBenchFlags(cfg *bench.Config, acks, compression string) error {
	var err error
	if cfg.Acks, err = parseAcks(acks); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if cfg.Codec, err = proto.ParseCodec(compression); err != nil {
		return fmt.Errorf("bench: --compression %q: want none, gzip, snappy, lz4 or zstd", compression)
	}
	switch cfg.Mode {
	case bench.ModeProduce, bench.ModeConsume, bench.ModeE2E, bench.ModeTCP, bench.ModeRawlog:
	default:
		return fmt.Errorf("bench: unknown mode %q; usage: %s", cfg.Mode, benchUsage)
	}
	if cfg.Driver != bench.DriverRaw && cfg.Driver != bench.DriverClient {
		return fmt.Errorf("bench: --driver must be raw or client, not %q", cfg.Driver)
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
