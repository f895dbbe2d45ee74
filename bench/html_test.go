package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// element is one parsed element of the report, with its attributes and
// its character data.
type element struct {
	name  string
	attrs map[string]string
	text  string
	path  []string // ids of the enclosing elements that have one
}

// parseHTML reads the report with the HTML leniencies of encoding/xml and
// returns every element; it fails on markup that does not nest.
func parseHTML(t *testing.T, page string) []*element {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(page))
	d.Strict, d.AutoClose, d.Entity = false, xml.HTMLAutoClose, xml.HTMLEntity
	var all, stack []*element
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the report does not parse: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			e := &element{name: tok.Name.Local, attrs: map[string]string{}}
			for _, a := range tok.Attr {
				e.attrs[a.Name.Local] = a.Value
			}
			for _, s := range stack {
				if id := s.attrs["id"]; id != "" {
					e.path = append(e.path, id)
				}
			}
			all, stack = append(all, e), append(stack, e)
		case xml.EndElement:
			if len(stack) == 0 || stack[len(stack)-1].name != tok.Name.Local {
				t.Fatalf("</%s> closes nothing open", tok.Name.Local)
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(tok)
			}
		}
	}
	if len(stack) != 0 {
		t.Fatalf("%d elements left open", len(stack))
	}
	return all
}

func find(all []*element, name, within string) []*element {
	var out []*element
	for _, e := range all {
		if e.name == name && (within == "" || strings.Join(e.path, "/") == within || e.attrs["id"] == within) {
			out = append(out, e)
		}
	}
	return out
}

// points parses a polyline's points.
func points(t *testing.T, s string) [][2]float64 {
	t.Helper()
	var out [][2]float64
	for _, p := range strings.Fields(s) {
		x, y, ok := strings.Cut(p, ",")
		fx, err1 := strconv.ParseFloat(x, 64)
		fy, err2 := strconv.ParseFloat(y, 64)
		if !ok || err1 != nil || err2 != nil {
			t.Fatalf("bad point %q", p)
		}
		out = append(out, [2]float64{fx, fy})
	}
	return out
}

func sampleReport() *Report {
	cfg := Config{Mode: ModeProduce, Driver: DriverRaw, MsgSize: 1024, Partitions: 4, Producers: 4,
		InFlight: 4, BatchBytes: 65536, Acks: 1}
	h := newHistogram()
	for us := int64(1); us <= 10_000; us++ {
		h.RecordValue(us * 3) // 3 µs to 30 ms, uniform
	}
	r := newReport(&cfg, 200_000, 200_000*1024, 2*time.Second, h)
	r.LatencyOf = "send to ack"
	for i := range 9 { // 0, 0.25 s, ... 2 s; 100,000 msg/s with a dip
		n := int64(i) * 25_000
		if i >= 5 {
			n -= 10_000
		}
		r.Timeline = append(r.Timeline, Sample{Seconds: float64(i) / 4, Messages: n, Bytes: n * 1024})
	}
	r.Percentiles = percentileCurve(h)
	return r
}

func TestHTMLReportStructure(t *testing.T) {
	r := sampleReport()
	var b bytes.Buffer
	if err := r.WriteHTML(&b, time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if !strings.HasPrefix(page, "<!DOCTYPE html>") {
		t.Fatalf("the report starts with %q", page[:min(40, len(page))])
	}
	// Self-contained: nothing is fetched from elsewhere.
	for _, bad := range []string{"http:", "https:", "<link", " src=", " href=", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("the report refers to something outside it (%s)", bad)
		}
	}
	all := parseHTML(t, page)
	if title := find(all, "title", ""); len(title) != 1 || !strings.Contains(title[0].text, "ringmq bench produce") ||
		!strings.Contains(title[0].text, "2026-11-30 12:00:00 UTC") {
		t.Errorf("title = %+v", title)
	}

	// Throughput: one point per sample gap, x ascending, the dip lower.
	tp := find(all, "polyline", "throughput")
	if len(tp) != 1 {
		t.Fatalf("%d polylines in the throughput chart, want 1", len(tp))
	}
	pts := points(t, tp[0].attrs["points"])
	if len(pts) != len(r.Timeline)-1 {
		t.Fatalf("throughput has %d points, want %d", len(pts), len(r.Timeline)-1)
	}
	for i := 1; i < len(pts); i++ {
		if pts[i][0] <= pts[i-1][0] {
			t.Fatalf("throughput x not ascending at %d: %v", i, pts)
		}
	}
	if !(pts[4][1] > pts[3][1]) || pts[5][1] != pts[3][1] { // SVG y grows downwards
		t.Errorf("the dip between 1.0 and 1.25 s is not drawn lower than its neighbours: %v", pts)
	}
	var axis []string
	for _, e := range find(all, "text", "throughput") {
		axis = append(axis, e.text)
	}
	for _, want := range []string{"msg/s", "MB/s", "seconds since start", "100,000"} {
		if !strings.Contains(strings.Join(axis, "|"), want) {
			t.Errorf("the throughput chart lacks the label %q (has %q)", want, axis)
		}
	}

	// Latency: the whole percentile curve, non-decreasing, log x axis.
	lp := find(all, "polyline", "latency")
	if len(lp) != 1 {
		t.Fatalf("%d polylines in the latency chart, want 1", len(lp))
	}
	pts = points(t, lp[0].attrs["points"])
	if len(pts) != len(r.Percentiles) || len(pts) != curveDecades*curveSteps+2 {
		t.Fatalf("latency curve has %d points, want %d", len(pts), len(r.Percentiles))
	}
	for i := 1; i < len(pts); i++ {
		if pts[i][0] <= pts[i-1][0] || pts[i][1] > pts[i-1][1] {
			t.Fatalf("latency curve not rising left to right at %d: %v", i, pts[i-1:i+1])
		}
	}
	axis = nil
	for _, e := range find(all, "text", "latency") {
		axis = append(axis, e.text)
	}
	for _, want := range []string{"90%", "99.9%", "99.999%", "max", "ms"} {
		if !strings.Contains(strings.Join(axis, "|"), want) {
			t.Errorf("the latency chart lacks the label %q", want)
		}
	}

	// The JSON summary is the --json object.
	want, _ := json.Marshal(r)
	for _, id := range []string{"summary", "json"} {
		var e *element
		for _, x := range all {
			if x.attrs["id"] == id {
				e = x
			}
		}
		if e == nil {
			t.Fatalf("no element with id %q", id)
		}
		var got Report
		if err := json.Unmarshal([]byte(e.text), &got); err != nil {
			t.Fatalf("#%s is not the JSON summary: %v", id, err)
		}
		if b, _ := json.Marshal(&got); string(b) != string(want) {
			t.Errorf("#%s = %s\nwant %s", id, b, want)
		}
	}
}

// A run without latency (acks 0) or too short to sample still renders,
// saying so instead of drawing.
func TestHTMLReportWithoutData(t *testing.T) {
	r := sampleReport()
	r.Timeline, r.Percentiles, r.Latency = r.Timeline[:1], nil, Latency{}
	var b bytes.Buffer
	if err := r.WriteHTML(&b, time.Now()); err != nil {
		t.Fatal(err)
	}
	all := parseHTML(t, b.String())
	if n := len(find(all, "polyline", "")); n != 0 {
		t.Errorf("%d lines drawn without data", n)
	}
	for _, want := range []string{"too short to sample", "no latency was measured"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}

func TestProgressBarLine(t *testing.T) {
	o := progressOpts{label: "produce", total: 1_000_000}
	got := o.barLine(2*time.Second, 250_000, 256_000_000, 0)
	want := "bench produce [#######.......................]  25%    2.0s      250,000 msgs     125,000 msg/s   128.0 MB/s  ETA 6s"
	if got != want {
		t.Errorf("barLine =\n%q\nwant\n%q", got, want)
	}
	o = progressOpts{label: "e2e", duration: 10 * time.Second}
	if got := o.barLine(5*time.Second, 10, 10, 2); !strings.Contains(got, "[###############...............]  50%") ||
		!strings.Contains(got, "2 errors") {
		t.Errorf("duration bar = %q", got)
	}
	o = progressOpts{label: "consume"}
	if got := o.barLine(time.Second, 10, 10, 0); strings.Contains(got, "[") || strings.Contains(got, "ETA") {
		t.Errorf("a run of unknown length drew a bar: %q", got)
	}
}

// The progress goroutine samples the totals for the timeline, with or
// without output, and prints plain lines when there is no bar.
func TestProgressSamples(t *testing.T) {
	m := &meter{}
	w := m.newWorker()
	out := &lockedBuffer{}
	stop, done := make(chan struct{}), make(chan struct{})
	go m.progress(progressOpts{out: out, label: "produce", interval: 50 * time.Millisecond}, stop, done)
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(out.String(), "\n") < 2 && time.Now().Before(deadline) {
		w.msgs.Add(10)
		time.Sleep(5 * time.Millisecond) // the load being measured, not synchronization
	}
	close(stop)
	<-done
	if len(m.samples) < 3 {
		t.Fatalf("%d samples", len(m.samples))
	}
	for i := 1; i < len(m.samples); i++ {
		if m.samples[i].Seconds < m.samples[i-1].Seconds || m.samples[i].Messages < m.samples[i-1].Messages {
			t.Fatalf("samples not cumulative: %+v", m.samples)
		}
	}
	last := m.samples[len(m.samples)-1]
	if msgs, _, _ := m.totals(); last.Messages != msgs {
		t.Errorf("the last sample has %d messages, the run %d", last.Messages, msgs)
	}
	if !strings.HasPrefix(out.String(), "bench produce: ") || strings.Contains(out.String(), "\r") {
		t.Errorf("plain progress output = %q", out.String())
	}
}

// lockedBuffer is a bytes.Buffer the progress goroutine writes while the
// test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
