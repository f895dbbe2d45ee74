package bench

import (
	"fmt"
	"io"
	"math"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/ringmq/ringmq/proto"
)

// Histogram bounds, in microseconds.
const (
	histLowestUs  = 1
	histHighestUs = int64(10 * time.Minute / time.Microsecond)
	histSigFigs   = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowestUs, histHighestUs, histSigFigs)
}

// Report is the outcome of a run. Its JSON form is what `ringmq bench
// --json` prints; field names never change.
type Report struct {
	Mode       Mode    `json:"mode"`
	Driver     Driver  `json:"driver,omitempty"`
	Messages   int64   `json:"messages"`
	Bytes      int64   `json:"bytes"`
	Seconds    float64 `json:"seconds"`
	MsgsPerSec float64 `json:"msgs_per_sec"`
	MBPerSec   float64 `json:"mb_per_sec"`
	Latency    Latency `json:"latency_ms"`
	// LatencyOf says what Latency measures: "send to ack", "produce to
	// consume", "fetch round trip" or "write call".
	LatencyOf string `json:"latency_of"`
	Errors    int64  `json:"errors"`

	MsgSize     int     `json:"msg_size"`
	Partitions  int     `json:"partitions"`
	Producers   int     `json:"producers"`
	Consumers   int     `json:"consumers"`
	InFlight    int     `json:"inflight"`
	BatchBytes  int     `json:"batch_bytes"`
	WriteBytes  int     `json:"write_bytes,omitempty"` // tcp: bytes per write call; rawlog: per request
	Acks        string  `json:"acks"`
	Compression string  `json:"compression"`
	Rate        float64 `json:"rate"`
	Idempotent  bool    `json:"idempotent"`

	// For the HTML report (WriteHTML), not in the JSON: the totals sampled
	// four times a second, and the latency percentile curve.
	Timeline    []Sample          `json:"-"`
	Percentiles []PercentilePoint `json:"-"`
}

// PercentilePoint is one point of the latency percentile curve.
type PercentilePoint struct {
	Percentile float64 `json:"percentile"` // 0 to 100
	Ms         float64 `json:"ms"`
}

// curveDecades and curveSteps shape the percentile curve: points evenly
// spaced on a log scale of 1/(1-q), from 0% to 99.999%, then the max.
const (
	curveDecades = 5
	curveSteps   = 10 // per decade
)

// percentileCurve samples h (microseconds) for the latency chart; nil when
// h is empty.
func percentileCurve(h *hdrhistogram.Histogram) []PercentilePoint {
	if h.TotalCount() == 0 {
		return nil
	}
	var out []PercentilePoint
	for i := 0; i <= curveDecades*curveSteps; i++ {
		p := 100 * (1 - math.Pow(10, -float64(i)/curveSteps))
		out = append(out, PercentilePoint{Percentile: p, Ms: float64(h.ValueAtQuantile(p)) / 1000})
	}
	return append(out, PercentilePoint{Percentile: 100, Ms: float64(h.Max()) / 1000})
}

// Latency is a latency distribution in milliseconds; all zero when
// nothing was measured (acks 0).
type Latency struct {
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
	Count int64   `json:"count"`
}

// latencyOf summarises h (microseconds).
func latencyOf(h *hdrhistogram.Histogram) Latency {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Latency{
		P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)),
		P99: ms(h.ValueAtQuantile(99)), P999: ms(h.ValueAtQuantile(99.9)),
		Max: ms(h.Max()), Count: h.TotalCount(),
	}
}

// newReport fills the rates of a run that moved msgs messages of bytes
// value bytes in elapsed.
func newReport(cfg *Config, msgs, bytes int64, elapsed time.Duration, h *hdrhistogram.Histogram) *Report {
	secs := elapsed.Seconds()
	r := &Report{
		Mode: cfg.Mode, Driver: cfg.Driver, Messages: msgs, Bytes: bytes, Seconds: secs,
		Latency: latencyOf(h), MsgSize: cfg.MsgSize, Partitions: cfg.Partitions,
		Producers: cfg.Producers, Consumers: cfg.Consumers, InFlight: cfg.InFlight,
		BatchBytes: cfg.BatchBytes, Acks: acksName(cfg.Acks), Compression: cfg.Codec.String(),
		Rate: cfg.Rate, Idempotent: cfg.Idempotent && cfg.Acks != proto.AcksNone,
	}
	if cfg.Mode == ModeTCP || cfg.Mode == ModeRawlog {
		r.Driver = ""
	}
	if secs > 0 {
		r.MsgsPerSec = float64(msgs) / secs
		r.MBPerSec = float64(bytes) / secs / 1e6
	}
	return r
}

func acksName(a int8) string {
	switch a {
	case 0:
		return "0"
	case 1:
		return "1"
	}
	return "all"
}

// WriteText writes the report for people, e.g.:
//
//	bench produce: 1000000 msgs of 1024 B in 1.62 s
//	  throughput  617,283 msg/s  632.1 MB/s
//	  latency ms  p50 0.84  p90 1.41  p99 2.30  p99.9 3.95  max 6.12  (send to ack)
//	  setup       4 producers × 4 in flight, 4 partitions, batch 65536 B, acks 1, compression none
func (r *Report) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "bench %s: %d msgs of %d B in %.2f s\n"+
		"  throughput  %s msg/s  %.1f MB/s\n",
		r.Mode, r.Messages, r.MsgSize, r.Seconds, groupDigits(int64(r.MsgsPerSec)), r.MBPerSec)
	if err != nil {
		return err
	}
	if r.Latency.Count > 0 {
		l := r.Latency
		fmt.Fprintf(w, "  latency ms  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (%s)\n",
			l.P50, l.P90, l.P99, l.P999, l.Max, r.LatencyOf)
	}
	if r.Errors > 0 {
		fmt.Fprintf(w, "  errors      %d\n", r.Errors)
	}
	_, err = fmt.Fprintf(w, "  setup       %s\n", r.setup())
	return err
}

func (r *Report) setup() string {
	switch r.Mode {
	case ModeTCP:
		return fmt.Sprintf("%d writer connections, %d B per write, loopback sink in process", r.Producers, r.WriteBytes)
	case ModeRawlog:
		return fmt.Sprintf("%d connections × %d in flight, %d B per request, write(2) to one file each, 8-byte answers, server in process",
			r.Producers, r.InFlight, r.WriteBytes)
	case ModeConsume:
		return fmt.Sprintf("%s driver, %d consumers, %d partitions", r.Driver, r.Consumers, r.Partitions)
	}
	s := fmt.Sprintf("%s driver, %d producers × %d in flight, %d partitions, batch %d B, acks %s, compression %s",
		r.Driver, r.Producers, r.InFlight, r.Partitions, r.BatchBytes, r.Acks, r.Compression)
	if r.Idempotent {
		s += ", idempotent"
	}
	if r.Mode == ModeE2E {
		s += fmt.Sprintf(", %d consumers", r.Consumers)
	}
	if r.Rate > 0 {
		s += fmt.Sprintf(", rate %.0f msg/s", r.Rate)
	}
	return s
}

// groupDigits formats n with thousands separators: 1234567 → "1,234,567".
func groupDigits(n int64) string {
	s := fmt.Sprint(n)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3+1)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}
