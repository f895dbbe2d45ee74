package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/stats"
	"github.com/ringmq/ringmq/status"
)

const defaultConfigPath = "config.toml"

// serveOptions are the parsed flags of `ringmq serve`. An override is nil
// when its flag was not given, so that an explicit empty value
// (--metrics-listen "") still overrides the file.
type serveOptions struct {
	configPath     string
	configExplicit bool // --config given: a missing file is an error
	dataDir        *string
	listen         *string
	metricsListen  *string
	nodeID         *uint64
	peers          []config.Peer // nil: not given
}

// flagForKey names the flag that overrides a setting, for error messages.
var flagForKey = map[string]string{
	"storage.data_dir":      "--data-dir",
	"server.listen":         "--listen",
	"server.metrics_listen": "--metrics-listen",
	"cluster.node_id":       "--node-id",
	"cluster.peers":         "--peers",
}

// parseServeFlags parses serve's arguments; configDefault is the file read
// when --config is not given. -h prints the flags to stdout and returns
// flag.ErrHelp.
func parseServeFlags(args []string, configDefault string, stdout io.Writer) (serveOptions, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, printed once by main
	o := serveOptions{}
	fs.StringVar(&o.configPath, "config", configDefault,
		"TOML configuration `file`; when the default is missing, built-in defaults apply")
	dataDir := fs.String("data-dir", "", "overrides storage.data_dir")
	listen := fs.String("listen", "", "overrides server.listen (host:port)")
	metricsListen := fs.String("metrics-listen", "", `overrides server.metrics_listen (host:port, "" for none)`)
	nodeID := fs.Uint64("node-id", 0, "overrides cluster.node_id")
	peers := fs.String("peers", "", "overrides cluster.peers (`ID@HOST:PORT,...`)")
	if len(args) == 1 && args[0] == listFlagsArg {
		var names flagNames
		fs.VisitAll(func(f *flag.Flag) { names = append(names, "--"+f.Name) })
		return o, names
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, "usage: ringmq serve [flags]")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
		}
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "config":
			o.configExplicit = true
		case "data-dir":
			o.dataDir = dataDir
		case "listen":
			o.listen = listen
		case "metrics-listen":
			o.metricsListen = metricsListen
		case "node-id":
			o.nodeID = nodeID
		case "peers":
			o.peers = []config.Peer{}
		}
	})
	if o.peers != nil {
		p, err := config.ParsePeers(*peers)
		if err != nil {
			return o, fmt.Errorf("--peers %w", err)
		}
		o.peers = p
	}
	return o, nil
}

// loadServeConfig reads the configuration file (or takes the defaults when
// the default file is missing), applies the flag overrides and validates the
// result. Precedence: flag, then file, then built-in default.
func loadServeConfig(o serveOptions) (cfg config.Config, usedDefaults bool, err error) {
	cfg, err = config.LoadUnvalidated(o.configPath) // validated below, with the flags

	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist) && !o.configExplicit:
		cfg, usedDefaults = config.Default(), true
	default:
		return config.Config{}, false, err
	}
	override(&cfg.Storage.DataDir, o.dataDir)
	override(&cfg.Server.Listen, o.listen)
	override(&cfg.Server.MetricsListen, o.metricsListen)
	if o.nodeID != nil {
		cfg.Cluster.NodeID = *o.nodeID
	}
	if o.peers != nil {
		cfg.Cluster.Peers = o.peers
	}
	if err := cfg.Validate(); err != nil {
		var ke *config.KeyError
		if errors.As(err, &ke) && flagForKey[ke.Key] != "" {
			return config.Config{}, false, fmt.Errorf("%s %s: %s", flagForKey[ke.Key], ke.Value, ke.Reason)
		}
		return config.Config{}, false, err
	}
	return cfg, usedDefaults, nil
}

func override(dst *string, flagValue *string) {
	if flagValue != nil {
		*dst = *flagValue
	}
}

func newLogger(lc config.LogConfig, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: lc.Level}
	if lc.Format == config.LogJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serveEnv is what serve takes from the process; tests replace it.
type serveEnv struct {
	newBroker func(config.Config, *slog.Logger) (broker, error)
	signals   <-chan os.Signal // SIGINT and SIGTERM
	stdout    io.Writer        // -h output
	stderr    io.Writer        // the log
	ready     func(b broker, metricsAddr string)
	// setDefaultLogger makes the configured logger the process default
	// (nil in tests, which share one process).
	setDefaultLogger func(*slog.Logger)
}

// cmdServe is `ringmq serve`.
func cmdServe(args []string) error {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	return runServe(args, serveEnv{
		// Every log line of the process goes through the configured
		// logger, the standard log package's included (libraries).
		setDefaultLogger: slog.SetDefault,
		newBroker:        newBroker,
		signals:          sigs,
		stdout:           os.Stdout,
		stderr:           os.Stderr,
	})
}

// runServe starts the broker and its metrics server, then waits for a
// signal: the first shuts down within server.shutdown_timeout (nil on
// success), a second during the shutdown returns an error at once.
func runServe(args []string, env serveEnv) error {
	opts, err := parseServeFlags(args, defaultConfigPath, env.stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	cfg, usedDefaults, err := loadServeConfig(opts)
	if err != nil {
		return err
	}
	logger := newLogger(cfg.Log, env.stderr)
	if env.setDefaultLogger != nil {
		env.setDefaultLogger(logger)
	}
	if usedDefaults {
		logger.Info("no configuration file; using the built-in defaults", "path", opts.configPath)
	}
	warnExposedListeners(logger, cfg.Server)
	srv, err := env.newBroker(cfg, logger)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return withShutdown(fmt.Errorf("start: %w", err), srv, cfg.Server.ShutdownTimeout)
	}
	metricsAddr := "off"
	if cfg.Server.MetricsListen != "" {
		m, err := stats.Serve(cfg.Server.MetricsListen, srv.Healthy,
			stats.WithReady(srv.Ready),
			stats.WithPprof(cfg.Server.Pprof), stats.WithLogger(logger),
			stats.WithHandler("GET /{$}", status.PageHandler()),
			stats.WithHandler("GET /status.json", status.JSONHandler(srv.Status)))
		if err != nil {
			return withShutdown(err, srv, cfg.Server.ShutdownTimeout)
		}
		defer m.Close()
		metricsAddr = m.Addr()
	}
	logger.Info("serving", "listen", srv.Addr(), "metrics", metricsAddr,
		"reactors", cfg.Reactor.NumReactors(), "data_dir", cfg.Storage.DataDir)
	if env.ready != nil {
		env.ready(srv, metricsAddr)
	}
	select {
	case sig := <-env.signals:
		logger.Info("shutting down", "signal", sig.String(), "timeout", cfg.Server.ShutdownTimeout)
	case <-srv.Failed():
		failure := srv.Healthy()
		logger.Error("server failed; shutting down", "err", failure)
		return withShutdown(fmt.Errorf("server failed: %w", failure), srv, cfg.Server.ShutdownTimeout)
	}
	if err := shutdown(srv, cfg.Server.ShutdownTimeout, env.signals); err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}

// withShutdown shuts srv down after a failed start and returns err, with
// the shutdown's error on the same line if it fails too.
func withShutdown(err error, srv broker, timeout time.Duration) error {
	if serr := shutdown(srv, timeout, nil); serr != nil {
		return fmt.Errorf("%w; %v", err, serr)
	}
	return err
}

// shutdown runs srv.Shutdown with a deadline of timeout. A signal on
// signals (nil: none) abandons it and returns an error at once.
func shutdown(srv broker, timeout time.Duration, signals <-chan os.Signal) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
		return nil
	case sig := <-signals:
		return fmt.Errorf("%s during shutdown: exiting without a clean shutdown", sig)
	}
}
