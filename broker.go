package main

import (
	"context"
	"log/slog"
	"runtime"

	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/reactor"
	"github.com/ringmq/ringmq/status"
)

// broker is what serve drives: the part of reactor.Server's API it uses.
type broker interface {
	// Start runs the reactors; the server listens once it returns.
	Start() error
	// Addr is the client listener's address, with the actual port.
	Addr() string
	// Shutdown stops accepting, finishes requests in flight, flushes and
	// writes the clean-shutdown marker, or gives up when ctx ends.
	Shutdown(ctx context.Context) error
	// Healthy is nil while the server serves; /healthz reports it.
	Healthy() error
	// Ready is nil while every partition is open and takes writes;
	// /readyz reports it.
	Ready() error
	// Failed is closed when the server stops serving on its own (a
	// reactor died); serve then shuts it down and exits non-zero.
	Failed() <-chan struct{}
	// Status is the document behind the status page (/status.json).
	Status() status.Snapshot
}

// newBroker opens storage and binds the listeners for cfg. It first makes
// sure the Go scheduler has two Ps more than there are reactors: a reactor
// returning from io_uring_enter needs a P, and must not wait behind the
// metrics server, the admin goroutine or the garbage collector.
func newBroker(cfg config.Config, logger *slog.Logger) (broker, error) {
	if want := cfg.Reactor.NumReactors() + 2; runtime.GOMAXPROCS(0) < want {
		runtime.GOMAXPROCS(want)
	}
	s, err := reactor.NewServer(cfg, logger)
	if err != nil {
		return nil, err // never a typed nil inside the interface
	}
	return s, nil
}
