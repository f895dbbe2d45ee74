package bench

import (
	"encoding/json"
	"fmt"
	htmltpl "html/template"
	"io"
	"math"
	"strings"
	"time"
)

// WriteHTML writes the report as one self-contained HTML page (inline CSS
// and SVG, no script, nothing loaded from elsewhere): the summary, a chart
// of throughput over the run, the latency percentile curve, and the JSON
// summary (the --json object, also in <script type="application/json"
// id="summary"> for tools). generated is the time printed in the title.
func (r *Report) WriteHTML(w io.Writer, generated time.Time) error {
	summary, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	page := htmlPage{
		R:          r,
		Generated:  generated.UTC().Format("2006-01-02 15:04:05 UTC"),
		Setup:      r.setup(),
		Summary:    string(summary),
		SummaryJS:  htmltpl.JS(summary), // encoding/json escapes <, > and &
		Throughput: throughputChart(r),
		Latency:    latencyChart(r),
	}
	return htmlTemplate.Execute(w, page)
}

type htmlPage struct {
	R          *Report
	Generated  string
	Setup      string
	Summary    string
	SummaryJS  htmltpl.JS
	Throughput chart
	Latency    chart
}

// chart is one SVG line chart, laid out in Go: the template only places
// the numbers.
type chart struct {
	ID, Title, XLabel, YLabel, Y2Label string
	Points                             string // polyline points, "x,y x,y ..."
	N                                  int    // number of points
	XTicks, YTicks, Y2Ticks            []tick
	Empty                              string // shown instead of the line when there is no data
}

type tick struct {
	Pos   float64 // x or y in the SVG
	Label string
}

// Chart geometry (SVG user units).
const (
	plotL, plotR, plotT, plotB = 80, 690, 20, 270
	plotW, plotH               = plotR - plotL, plotB - plotT
	latencyXMax                = curveDecades + 0.5 // max is drawn half a decade past the last percentile
	throughputMinGap           = 0.1                // seconds; a shorter tail at the end of a run is left out
)

// throughputChart plots msg/s between successive samples (left axis) and
// the same in MB/s (right axis: every message has MsgSize bytes).
func throughputChart(r *Report) chart {
	c := chart{ID: "throughput", Title: "Throughput over time", XLabel: "seconds since start",
		YLabel: "msg/s", Y2Label: "MB/s"}
	type pt struct{ t, v float64 }
	var pts []pt
	for i, a := 1, 0; i < len(r.Timeline); i++ {
		from, to := r.Timeline[a], r.Timeline[i]
		if dt := to.Seconds - from.Seconds; dt >= throughputMinGap {
			pts = append(pts, pt{to.Seconds, float64(to.Messages-from.Messages) / dt})
			a = i
		}
	}
	if len(pts) == 0 {
		c.Empty = "the run was too short to sample"
		return c
	}
	xMax, yMax := pts[len(pts)-1].t, 0.0
	for _, p := range pts {
		yMax = max(yMax, p.v)
	}
	xStep, yStep := niceStep(xMax/6), niceStep(yMax/5)
	xMax, yMax = math.Max(xStep, math.Ceil(xMax/xStep)*xStep), math.Max(yStep, math.Ceil(yMax/yStep)*yStep)
	var b strings.Builder
	for _, p := range pts {
		fmt.Fprintf(&b, "%.1f,%.1f ", plotL+p.t/xMax*plotW, plotB-p.v/yMax*plotH)
	}
	c.Points, c.N = strings.TrimSpace(b.String()), len(pts)
	for x := 0.0; x <= xMax+xStep/2; x += xStep {
		c.XTicks = append(c.XTicks, tick{plotL + x/xMax*plotW, trimFloat(x)})
	}
	mbPerMsg := float64(r.MsgSize) / 1e6
	for y := 0.0; y <= yMax+yStep/2; y += yStep {
		pos := plotB - y/yMax*plotH
		c.YTicks = append(c.YTicks, tick{pos, groupDigits(int64(y))})
		c.Y2Ticks = append(c.Y2Ticks, tick{pos, trimFloat(y * mbPerMsg)})
	}
	return c
}

// latencyChart plots the percentile curve: x is log10(1/(1-q)), so 90%,
// 99%, 99.9% ... are evenly spaced; the max sits past the last one.
func latencyChart(r *Report) chart {
	c := chart{ID: "latency", Title: "Latency by percentile (" + r.LatencyOf + ")",
		XLabel: "percentile", YLabel: "ms"}
	if len(r.Percentiles) == 0 {
		c.Empty = "no latency was measured"
		return c
	}
	yMax := 0.0
	for _, p := range r.Percentiles {
		yMax = max(yMax, p.Ms)
	}
	yStep := niceStep(yMax / 5)
	yMax = math.Max(yStep, math.Ceil(yMax/yStep)*yStep)
	var b strings.Builder
	for _, p := range r.Percentiles {
		fmt.Fprintf(&b, "%.1f,%.1f ", plotL+percentileX(p.Percentile)/latencyXMax*plotW, plotB-p.Ms/yMax*plotH)
	}
	c.Points, c.N = strings.TrimSpace(b.String()), len(r.Percentiles)
	labels := []string{"0%", "90%", "99%", "99.9%", "99.99%", "99.999%"}
	for d, l := range labels {
		c.XTicks = append(c.XTicks, tick{plotL + float64(d)/latencyXMax*plotW, l})
	}
	c.XTicks = append(c.XTicks, tick{plotR, "max"})
	for y := 0.0; y <= yMax+yStep/2; y += yStep {
		c.YTicks = append(c.YTicks, tick{plotB - y/yMax*plotH, trimFloat(y)})
	}
	return c
}

// percentileX places percentile p (0 to 100) on the log axis; 100 (the
// max) goes to latencyXMax.
func percentileX(p float64) float64 {
	if p >= 100 {
		return latencyXMax
	}
	return math.Min(math.Log10(100/(100-p)), curveDecades)
}

// niceStep rounds v up to 1, 2 or 5 times a power of ten.
func niceStep(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "" || s == "-0" {
		return "0"
	}
	return s
}

var htmlTemplate = htmltpl.Must(htmltpl.New("report").Funcs(htmltpl.FuncMap{
	"digits": func(v float64) string { return groupDigits(int64(v)) },
	"f1":     func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"f2":     func(v float64) string { return fmt.Sprintf("%.2f", v) },
	"f3":     func(v float64) string { return fmt.Sprintf("%.3f", v) },
	"n":      func(v int64) string { return groupDigits(v) },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ringmq bench {{.R.Mode}} · {{.Generated}}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 820px; color: #1d2330; background: #fafbfc; }
h1 { font-size: 1.5em; margin: 0; }
.sub { color: #667; margin: .2em 0 1.2em; }
.cards { display: flex; flex-wrap: wrap; gap: .6em; margin-bottom: 1.2em; }
.card { background: #fff; border: 1px solid #e3e6ea; border-radius: 6px; padding: .5em .9em; min-width: 7.5em; }
.card b { display: block; font-size: 1.3em; }
.card span { color: #667; font-size: .85em; }
figure { background: #fff; border: 1px solid #e3e6ea; border-radius: 6px; margin: 0 0 1.2em; padding: .6em; }
figcaption { font-weight: 600; margin-bottom: .3em; }
svg text { font: 11px system-ui, sans-serif; fill: #445; }
svg .grid { stroke: #e8ebef; }
svg .axis { stroke: #889; }
svg .line { fill: none; stroke-width: 2; stroke-linejoin: round; }
#throughput .line { stroke: #2f6fdd; }
#latency .line { stroke: #d9480f; }
pre { background: #fff; border: 1px solid #e3e6ea; border-radius: 6px; padding: .8em; overflow-x: auto; font-size: 12px; }
</style>
</head>
<body>
<h1>ringmq bench {{.R.Mode}}</h1>
<div class="sub">{{n .R.Messages}} messages of {{.R.MsgSize}} B in {{f2 .R.Seconds}} s · {{.Setup}} · {{.Generated}}</div>
<div class="cards" id="cards">
<div class="card"><b>{{digits .R.MsgsPerSec}}</b><span>msg/s</span></div>
<div class="card"><b>{{f1 .R.MBPerSec}}</b><span>MB/s</span></div>
{{- if gt .R.Latency.Count 0}}
<div class="card"><b>{{f3 .R.Latency.P50}}</b><span>p50 ms</span></div>
<div class="card"><b>{{f3 .R.Latency.P99}}</b><span>p99 ms</span></div>
<div class="card"><b>{{f3 .R.Latency.P999}}</b><span>p99.9 ms</span></div>
<div class="card"><b>{{f3 .R.Latency.Max}}</b><span>max ms</span></div>
{{- end}}
<div class="card"><b>{{n .R.Errors}}</b><span>errors</span></div>
</div>
{{template "chart" .Throughput}}
{{template "chart" .Latency}}
<h2>JSON summary</h2>
<pre id="json">{{.Summary}}</pre>
<script type="application/json" id="summary">{{.SummaryJS}}</script>
</body>
</html>
{{define "chart" -}}
<figure>
<figcaption>{{.Title}}</figcaption>
<svg id="{{.ID}}" viewBox="0 0 760 320" width="100%" role="img" aria-label="{{.Title}}">
{{- range .YTicks}}
<line class="grid" x1="80" x2="690" y1="{{f1 .Pos}}" y2="{{f1 .Pos}}"/>
<text x="74" y="{{f1 .Pos}}" text-anchor="end" dominant-baseline="middle">{{.Label}}</text>
{{- end}}
{{- range .Y2Ticks}}
<text x="696" y="{{f1 .Pos}}" dominant-baseline="middle">{{.Label}}</text>
{{- end}}
{{- range .XTicks}}
<line class="grid" x1="{{f1 .Pos}}" x2="{{f1 .Pos}}" y1="20" y2="270"/>
<text x="{{f1 .Pos}}" y="286" text-anchor="middle">{{.Label}}</text>
{{- end}}
<line class="axis" x1="80" x2="690" y1="270" y2="270"/>
<line class="axis" x1="80" x2="80" y1="20" y2="270"/>
<text x="385" y="312" text-anchor="middle">{{.XLabel}}</text>
<text x="16" y="145" text-anchor="middle" transform="rotate(-90 16 145)">{{.YLabel}}</text>
{{- if .Y2Label}}
<text x="748" y="145" text-anchor="middle" transform="rotate(90 748 145)">{{.Y2Label}}</text>
{{- end}}
{{- if .Empty}}
<text x="385" y="145" text-anchor="middle">{{.Empty}}</text>
{{- else}}
<polyline class="line" points="{{.Points}}"/>
{{- end}}
</svg>
</figure>
{{- end}}`))
