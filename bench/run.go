package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

// stallTimeout ends a run whose consumers stop receiving (the client
// driver's consumer retries a lost server forever).
const stallTimeout = 30 * time.Second

// Run performs one benchmark run. Cancelling ctx ends it early; the report
// then covers what was done until then.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	readAll := cfg.Mode == ModeConsume && cfg.Messages <= 0 && cfg.Duration <= 0
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	switch cfg.Mode {
	case ModeTCP:
		return runTCP(ctx, &cfg)
	case ModeRawlog:
		return runRawlog(ctx, &cfg)
	}
	admin, err := dial(ctx, &cfg, -1)
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	parts, err := ensureTopic(ctx, admin, &cfg)
	if err != nil {
		return nil, err
	}
	switch cfg.Mode {
	case ModeProduce:
		return runProduce(ctx, &cfg, parts)
	case ModeConsume:
		return runConsume(ctx, &cfg, admin, parts, readAll)
	}
	return runE2E(ctx, &cfg, admin, parts)
}

// produceDriver and consumeDriver are the raw and client drivers' runs.
type produceDriver interface {
	run(ctx context.Context, start time.Time) error
	close()
}

type consumeDriver interface {
	run(ctx context.Context, deadline time.Time) error
	setEnds(end map[uint32]uint64)
	close()
}

func newProduceDriver(ctx context.Context, cfg *Config, parts []proto.PartitionInfo, m *meter) (produceDriver, error) {
	if cfg.Driver == DriverClient {
		return startClientProducers(cfg, parts, m)
	}
	return startProducers(ctx, cfg, parts, m)
}

func newConsumeDriver(ctx context.Context, cfg *Config, parts []proto.PartitionInfo, from, end map[uint32]uint64, m *meter) (consumeDriver, error) {
	if cfg.Type != "" {
		return startGroupConsumers(ctx, cfg, from, end, m) // group.go
	}
	if cfg.Driver == DriverClient {
		return startClientConsumers(ctx, cfg, parts, from, end, m)
	}
	return startConsumers(ctx, cfg, parts, from, end, m)
}

// withProgress samples and shows m's progress until the returned stop is
// called; total is the messages the run will move (0: unknown).
func withProgress(cfg *Config, m *meter, label string, total int64) (stop func()) {
	stopCh, done := make(chan struct{}), make(chan struct{})
	o := progressOpts{out: cfg.Progress, bar: cfg.ProgressBar, label: label,
		interval: cfg.ProgressInterval, total: total, duration: cfg.Duration}
	if cfg.Duration > 0 {
		o.total = 0
	}
	go m.progress(o, stopCh, done)
	return func() {
		close(stopCh)
		<-done
	}
}

func runProduce(ctx context.Context, cfg *Config, parts []proto.PartitionInfo) (*Report, error) {
	m := &meter{}
	ps, err := newProduceDriver(ctx, cfg, parts, m)
	if err != nil {
		return nil, err
	}
	defer ps.close()
	stop := withProgress(cfg, m, string(cfg.Mode), cfg.Messages)
	start := time.Now()
	err = ps.run(ctx, start)
	elapsed := time.Since(start)
	stop()
	return finish(cfg, m, m, elapsed, "send to ack"), err
}

// finish builds the report: throughput and latency from m, errors from
// errs (the producers' meter).
func finish(cfg *Config, m, errs *meter, elapsed time.Duration, latencyOf string) *Report {
	msgs, bytes, _ := m.totals()
	h := m.histogram()
	r := newReport(cfg, msgs, bytes, elapsed, h)
	_, _, r.Errors = errs.totals()
	r.Timeline = m.samples
	r.Percentiles = percentileCurve(h)
	r.LatencyOf = latencyOf
	return r
}

func runConsume(ctx context.Context, cfg *Config, admin *client.Conn, parts []proto.PartitionInfo, readAll bool) (*Report, error) {
	from, err := logOffsets(ctx, admin, cfg.Topic, parts, proto.TimestampEarliest)
	if err != nil {
		return nil, err
	}
	end, err := logOffsets(ctx, admin, cfg.Topic, parts, proto.TimestampLatest)
	if err != nil {
		return nil, err
	}
	want := cfg.Messages
	if readAll && available(from, end) > 0 {
		want = 0 // read what is there; only an empty topic is filled (with DefaultMessages)
	}
	if have := available(from, end); cfg.Duration <= 0 && have < want {
		if err := prefill(ctx, cfg, parts, want-have); err != nil {
			return nil, err
		}
		if end, err = logOffsets(ctx, admin, cfg.Topic, parts, proto.TimestampLatest); err != nil {
			return nil, err
		}
	}
	if !readAll && cfg.Duration <= 0 {
		end = planEnds(from, end, cfg.Messages)
	}
	m := &meter{}
	cs, err := newConsumeDriver(ctx, cfg, parts, from, end, m)
	if err != nil {
		return nil, err
	}
	defer cs.close()
	stop := withProgress(cfg, m, string(cfg.Mode), available(from, end))
	start := time.Now()
	var deadline time.Time
	if cfg.Duration > 0 {
		deadline = start.Add(cfg.Duration)
	}
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	consumed := make(chan error, 1)
	go func() { consumed <- cs.run(cctx, deadline) }()
	err = waitConsumers(cctx, cancel, m, consumed)
	elapsed := time.Since(start)
	stop()
	latencyOf := "fetch round trip"
	switch {
	case cfg.Type == "shared" || cfg.Type == "key_shared":
		latencyOf = "bulk ack round trip"
	case cfg.Driver == DriverClient || cfg.Type != "":
		latencyOf = "poll call returning records"
	}
	return finish(cfg, m, m, elapsed, latencyOf), err
}

func available(from, end map[uint32]uint64) int64 {
	var n int64
	for p, e := range end {
		n += int64(e - from[p])
	}
	return n
}

// prefill produces n records, unmeasured, for a consume run.
func prefill(ctx context.Context, cfg *Config, parts []proto.PartitionInfo, n int64) error {
	pc := *cfg
	pc.Mode, pc.Messages, pc.Duration, pc.Rate = ModeProduce, n, 0, 0
	if cfg.Progress != nil {
		fmt.Fprintf(cfg.Progress, "bench consume: pre-filling %q with %d records of %d B\n", cfg.Topic, n, cfg.MsgSize)
	}
	ps, err := startProducers(ctx, &pc, parts, &meter{})
	if err != nil {
		return err
	}
	defer ps.close()
	if err := ps.run(ctx, time.Now()); err != nil {
		return fmt.Errorf("bench: pre-fill: %w", err)
	}
	return ctx.Err()
}

func runE2E(ctx context.Context, cfg *Config, admin *client.Conn, parts []proto.PartitionInfo) (*Report, error) {
	from, err := logOffsets(ctx, admin, cfg.Topic, parts, proto.TimestampLatest)
	if err != nil {
		return nil, err
	}
	pm, cm := &meter{}, &meter{}
	cs, err := newConsumeDriver(ctx, cfg, parts, from, nil, cm)
	if err != nil {
		return nil, err
	}
	defer cs.close()
	ps, err := newProduceDriver(ctx, cfg, parts, pm)
	if err != nil {
		return nil, err
	}
	defer ps.close()
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := withProgress(cfg, cm, string(cfg.Mode), cfg.Messages)
	defer stop()
	consumed := make(chan error, 1)
	start := time.Now()
	go func() { consumed <- cs.run(cctx, time.Time{}) }()
	if err := ps.run(ctx, start); err != nil || ctx.Err() != nil {
		cancel(err)
		<-consumed
		return finish(cfg, cm, pm, time.Since(start), "produce to consume"), err
	}
	end, err := logOffsets(ctx, admin, cfg.Topic, parts, proto.TimestampLatest)
	if err != nil {
		cancel(err)
		<-consumed
		return nil, err
	}
	cs.setEnds(end)
	err = waitConsumers(cctx, cancel, cm, consumed)
	return finish(cfg, cm, pm, time.Since(start), "produce to consume"), err
}

var errStalled = errors.New("bench: consumers stopped receiving")

// waitConsumers waits for the consumers, cancelling them when they stall.
func waitConsumers(ctx context.Context, cancel context.CancelCauseFunc, m *meter, consumed <-chan error) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last, lastChange := int64(-1), time.Now()
	for {
		select {
		case err := <-consumed:
			return err
		case now := <-t.C:
			if msgs, _, _ := m.totals(); msgs != last {
				last, lastChange = msgs, now
			} else if now.Sub(lastChange) > stallTimeout {
				cancel(fmt.Errorf("%w for %v (%d records received)", errStalled, stallTimeout, msgs))
				<-consumed
				return context.Cause(ctx)
			}
		}
	}
}
