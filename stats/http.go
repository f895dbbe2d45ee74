package stats

import (
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"
)

// HTTPServer serves /metrics, /healthz and /readyz on its own goroutine.
// It never touches reactor state: /metrics reads the atomic series of this
// package, and /healthz and /readyz call the functions they were given.
type HTTPServer struct {
	srv       *http.Server
	ln        net.Listener
	done      chan error // Serve's result
	closeOnce sync.Once
	closeErr  error
}

// Option adds to what Serve serves.
type Option func(*serveOptions)

type serveOptions struct {
	pprof    bool
	log      *slog.Logger
	ready    func() error
	handlers []pattern
}

type pattern struct {
	pattern string
	h       http.Handler
}

// WithPprof serves the Go profiler (net/http/pprof) under /debug/pprof/
// when on is true (config key server.pprof).
func WithPprof(on bool) Option { return func(o *serveOptions) { o.pprof = on } }

// WithReady serves GET /readyz: 200 "ok" when ready returns nil, else 503
// and the error's text (readiness: every partition open and taking
// writes; /healthz stays liveness).
func WithReady(ready func() error) Option { return func(o *serveOptions) { o.ready = ready } }

// WithLogger sends the HTTP server's own errors (a failed accept, a
// malformed request) to log instead of the standard log package.
func WithLogger(log *slog.Logger) Option { return func(o *serveOptions) { o.log = log } }

// WithHandler serves h for an http.ServeMux pattern such as "GET /{$}".
func WithHandler(pat string, h http.Handler) Option {
	return func(o *serveOptions) { o.handlers = append(o.handlers, pattern{pat, h}) }
}

// Serve listens on addr ("127.0.0.1:0" picks a port; see Addr) and serves
//
//	GET /metrics  every registered metric, Prometheus text format with
//	              # HELP and # TYPE, plus the go_* and process_* metrics of
//	              this process (see WritePrometheus)
//	GET /healthz  liveness: 200 "ok" when health returns nil (or is nil),
//	              else 503 and the error's text
//	GET /readyz   only WithReady: readiness, the same with its function
//	GET /debug/pprof/...  only WithPprof(true): the Go profiler, e.g.
//	              /debug/pprof/profile?seconds=10 for a CPU profile
//
// plus the WithHandler patterns, and 404 elsewhere. The metrics address is
// meant to stay on a trusted interface (127.0.0.1 by default). The
// listener is bound when Serve returns, so a busy port is its error.
func Serve(addr string, health func() error, opts ...Option) (*HTTPServer, error) {
	var o serveOptions
	for _, opt := range opts {
		opt(&o)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", serveMetrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		serveHealth(w, health)
	})
	if o.ready != nil {
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
			serveHealth(w, o.ready)
		})
	}
	if o.pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	}
	for _, p := range o.handlers {
		mux.Handle(p.pattern, p.h)
	}
	var errorLog *log.Logger
	if o.log != nil {
		errorLog = slog.NewLogLogger(o.log.Handler(), slog.LevelWarn)
	}
	s := &HTTPServer{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 5 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       60 * time.Second,
			ErrorLog:          errorLog,
		},
		ln:   ln,
		done: make(chan error, 1),
	}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

func serveMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_ = WritePrometheus(w) // a failed write is a gone client
}

func serveHealth(w http.ResponseWriter, health func() error) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	var err error
	if health != nil {
		err = health()
	}
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, err)
		return
	}
	fmt.Fprintln(w, "ok")
}

// Addr is the address the server listens on, with the actual port.
func (s *HTTPServer) Addr() string { return s.ln.Addr().String() }

// Close stops the server at once: the listener and every connection close,
// requests in progress are cut. It returns when the serving goroutine has
// ended. Calling it again returns the first call's result.
func (s *HTTPServer) Close() error {
	s.closeOnce.Do(func() {
		err := s.srv.Close()
		if serveErr := <-s.done; err == nil && !errors.Is(serveErr, http.ErrServerClosed) {
			err = serveErr
		}
		s.closeErr = err
	})
	return s.closeErr
}
