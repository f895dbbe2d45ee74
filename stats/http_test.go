package stats

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

func get(t *testing.T, method, url string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body), resp.Header
}

func TestServe(t *testing.T) {
	var healthErr, readyErr atomic.Pointer[error]
	s, err := Serve("127.0.0.1:0", func() error {
		if p := healthErr.Load(); p != nil {
			return *p
		}
		return nil
	}, WithReady(func() error {
		if p := readyErr.Load(); p != nil {
			return *p
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := "http://" + s.Addr()

	ForTopic("scraped").Produced(2, 20)
	defer DropTopic("scraped")
	code, body, hdr := get(t, "GET", base+"/metrics")
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("GET /metrics: %d %q", code, hdr.Get("Content-Type"))
	}
	wantSample(t, body, `ringmq_produce_messages_total{topic="scraped"}`, "2")
	if !strings.Contains(body, "# HELP ringmq_produce_messages_total Records appended, per topic.\n# TYPE ringmq_produce_messages_total counter\n") {
		t.Error("GET /metrics lacks # HELP and # TYPE of ringmq_produce_messages_total")
	}
	for _, series := range []string{"ringmq_connections_open", "ringmq_partitions_fenced", `ringmq_segments{state="active"}`, "go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := sample(body, series); !ok {
			t.Errorf("GET /metrics lacks %s", series)
		}
	}

	if code, body, _ := get(t, "GET", base+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /healthz (healthy) = %d %q, want 200 \"ok\\n\"", code, body)
	}
	if code, body, _ := get(t, "GET", base+"/readyz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /readyz (ready) = %d %q, want 200", code, body)
	}
	fenced := errors.New("1 partition(s) fenced, refusing writes; first t/0: no space left on device")
	readyErr.Store(&fenced)
	if code, body, _ := get(t, "GET", base+"/readyz"); code != http.StatusServiceUnavailable || body != fenced.Error()+"\n" {
		t.Errorf("GET /readyz (fenced) = %d %q, want 503 with the reason", code, body)
	}
	if code, body, _ := get(t, "GET", base+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /healthz (alive, not ready) = %d %q, want 200", code, body)
	}
	stalled := errors.New("reactor 1: no loop turn for 5s")
	healthErr.Store(&stalled)
	if code, body, _ := get(t, "GET", base+"/healthz"); code != http.StatusServiceUnavailable || body != stalled.Error()+"\n" {
		t.Errorf("GET /healthz (unhealthy) = %d %q, want 503 with the error", code, body)
	}
	if code, _, _ := get(t, "GET", base+"/other"); code != http.StatusNotFound {
		t.Errorf("GET /other = %d, want 404", code)
	}
	if code, _, _ := get(t, "POST", base+"/metrics"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics = %d, want 405", code)
	}

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := net.Dial("tcp", s.Addr()); err == nil {
		t.Fatal("the metrics port still accepts connections after Close")
	}
}

// The profiler is served only when asked for (server.pprof).
func TestPprofIsOptIn(t *testing.T) {
	for _, on := range []bool{false, true} {
		s, err := Serve("127.0.0.1:0", nil, WithPprof(on))
		if err != nil {
			t.Fatal(err)
		}
		want := http.StatusNotFound
		if on {
			want = http.StatusOK
		}
		if code, _, _ := get(t, "GET", "http://"+s.Addr()+"/debug/pprof/"); code != want {
			t.Errorf("pprof %v: GET /debug/pprof/ = %d, want %d", on, code, want)
		}
		s.Close()
	}
}

func TestServeNilHealth(t *testing.T) {
	s, err := Serve("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if code, body, _ := get(t, "GET", "http://"+s.Addr()+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /healthz = %d %q", code, body)
	}
}

func TestServeBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if s, err := Serve(ln.Addr().String(), nil); err == nil {
		s.Close()
		t.Fatal("Serve on a busy port succeeded")
	} else if !strings.HasPrefix(err.Error(), "metrics listener: ") {
		t.Fatalf("Serve on a busy port: %v", err)
	}
}
