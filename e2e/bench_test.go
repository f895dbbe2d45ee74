package e2e

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
)

// benchReport is the documented JSON of `ringmq bench --json`.
type benchReport struct {
	Mode       string   `json:"mode"`
	Messages   int64    `json:"messages"`
	Bytes      int64    `json:"bytes"`
	Seconds    float64  `json:"seconds"`
	MsgsPerSec float64  `json:"msgs_per_sec"`
	MBPerSec   float64  `json:"mb_per_sec"`
	Errors     int64    `json:"errors"`
	Latency    *latency `json:"latency_ms"`
}

type latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// runBench runs `ringmq bench args... --json` and checks the report's
// arithmetic and the latency distribution's shape.
func runBench(t *testing.T, mode string, messages int64, msgSize int, args ...string) benchReport {
	t.Helper()
	out := mustCLI(t, "", append([]string{"bench", mode, "--json"}, args...)...)
	var r benchReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bench %s printed %q: %v", mode, out, err)
	}
	l := r.Latency
	switch {
	case r.Mode != mode || r.Messages != messages || r.Bytes != messages*int64(msgSize) || r.Errors != 0:
		t.Fatalf("bench %s: report %+v, want %d messages of %d bytes, no errors", mode, r, messages, msgSize)
	case r.Seconds <= 0 || r.Seconds > 60:
		t.Fatalf("bench %s: %v seconds", mode, r.Seconds)
	case !near(r.MsgsPerSec, float64(r.Messages)/r.Seconds) || !near(r.MBPerSec, float64(r.Bytes)/r.Seconds/1e6):
		t.Fatalf("bench %s: rates %v msg/s %v MB/s do not match %d msgs, %d bytes in %v s",
			mode, r.MsgsPerSec, r.MBPerSec, r.Messages, r.Bytes, r.Seconds)
	case l == nil || l.P50 <= 0 || l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.P999 || l.P999 > l.Max || l.Max > r.Seconds*1000+1:
		t.Fatalf("bench %s: latency %+v is not a distribution within the run's %v s", mode, l, r.Seconds)
	}
	return r
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }

func TestBenchProduceAndE2E(t *testing.T) {
	srv := startServer(t, writeConfig(t, t.TempDir()))
	s := "--server=" + srv.addr
	runBench(t, "produce", 20000, 100, s, "--topic", "bp", "--messages", "20000", "--msg-size", "100",
		"--partitions", "3", "--batch-bytes", "16384")
	// The records are really there.
	c := ringtest.Dial(t, srv.addr, client.Options{})
	total := 0
	for p := uint32(0); p < 3; p++ {
		for _, v := range ringtest.ReadPartition(t, c, "bp", p) {
			if len(v) != 100 {
				t.Fatalf("partition %d: record of %d bytes, want 100", p, len(v))
			}
			total++
		}
	}
	if total != 20000 {
		t.Fatalf("topic bp holds %d records after the run, want 20000", total)
	}

	runBench(t, "e2e", 20000, 256, s, "--topic", "be", "--messages", "20000", "--msg-size", "256",
		"--producers", "2", "--consumers", "2", "--compression", "lz4")
	runBench(t, "e2e", 2000, 64, s, "--topic", "br", "--messages", "2000", "--msg-size", "64",
		"--rate", "20000", "--linger", "2ms")
	runBench(t, "consume", 20000, 100, s, "--topic", "bp", "--messages", "20000", "--msg-size", "100")
	runBench(t, "consume", 20000, 100, s, "--topic", "bp") // no count: what the topic holds
	// The same through client.Producer and client.Consumer.
	runBench(t, "e2e", 20000, 128, s, "--driver", "client", "--topic", "bc", "--messages", "20000", "--msg-size", "128",
		"--partitions", "3", "--compression", "zstd")
	runBench(t, "consume", 20000, 100, s, "--driver", "client", "--topic", "bp", "--messages", "20000", "--msg-size", "100")
	r := runBench(t, "tcp", 20000, 100, "--messages", "20000", "--msg-size", "100")
	if r.MBPerSec <= 0 {
		t.Fatalf("tcp baseline: %+v", r)
	}
}

// --report writes one self-contained HTML page; progress on a stderr that
// is not a terminal stays plain lines (no bar, no carriage returns).
func TestBenchHTMLReport(t *testing.T) {
	srv := startServer(t, writeConfig(t, t.TempDir()))
	path := filepath.Join(t.TempDir(), "run.html")
	res := runCLI(t, "", "bench", "produce", "--server="+srv.addr, "--topic", "br-html", "--duration", "1500ms",
		"--msg-size", "100", "--report", path)
	if res.code != 0 {
		t.Fatalf("bench --report: exit %d\n%s", res.code, res.stderr)
	}
	if strings.Contains(res.stderr, "\r") || !strings.Contains(res.stderr, "bench produce:") {
		t.Errorf("progress on a non-terminal stderr = %q", res.stderr)
	}
	page, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<!DOCTYPE html>", `<svg id="throughput"`, `<svg id="latency"`, "<polyline",
		`<script type="application/json" id="summary">`, `"mode": "produce"`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the report lacks %s", want)
		}
	}
	if head, _, _ := strings.Cut(string(page), "<style>"); testing.Verbose() {
		t.Logf("first lines of the report:\n%s", head)
	}
	if res := runCLI(t, "", "bench", "produce", "--server="+srv.addr, "--report", "/nonexistent-dir/run.html"); res.code == 0 ||
		!strings.Contains(res.stderr, "--report") {
		t.Errorf("a report path that cannot be created: exit %d, %q", res.code, res.stderr)
	}
}
