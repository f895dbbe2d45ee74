package stats

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// HTTPServer serves /metrics, /healthz and /readyz on its own goroutine. It
// never touches reactor state: /metrics reads the atomic series of this
// package, and /healthz and /readyz call the functions it was given.
type HTTPServer struct {
	srv       *http.Server
	ln        net.Listener
	done      chan error // Serve's result
	closeOnce sync.Once
	closeErr  error
}

// Serve listens on addr ("127.0.0.1:0" picks a port; see Addr) and serves
//
//	GET /metrics  every registered metric, Prometheus text format, plus the
//	              go_* and process_* metrics of this process
//	GET /healthz  liveness: 200 "ok" when health returns nil (or is nil),
//	              else 503 and the error's text
//	GET /readyz   readiness: the same with ready (the server takes writes
//	              on every partition: none fenced, none left unopened)
//	GET /debug/pprof/...  the Go profiler (net/http/pprof), e.g.
//	              /debug/pprof/profile?seconds=10 for a CPU profile
//
// and 404 elsewhere. The metrics address is meant to stay on a trusted
// interface (127.0.0.1 by default): the profiler is on it too. The listener is bound when Serve returns, so a busy
// port is its error.
func Serve(addr string, health, ready func() error) (*HTTPServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", serveMetrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		serveHealth(w, health)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		serveHealth(w, ready)
	})
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	s := &HTTPServer{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 5 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       60 * time.Second,
		},
		ln:   ln,
		done: make(chan error, 1),
	}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

func serveMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	metrics.WritePrometheus(w, true)
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
