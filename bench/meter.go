package bench

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// worker is one goroutine's counters and latency histogram. The counters
// are atomics, read by the progress line; the histogram belongs to the
// goroutine until it ends, then to meter.histogram.
type worker struct {
	msgs  atomic.Int64
	bytes atomic.Int64
	errs  atomic.Int64
	_     [40]byte // keep workers' hot counters on their own cache lines
	hist  *hdrhistogram.Histogram
}

// recordUs records n samples of us microseconds (clamped into range).
func (w *worker) recordUs(us, n int64) {
	if us < histLowestUs {
		us = histLowestUs
	}
	if us > histHighestUs {
		us = histHighestUs
	}
	w.hist.RecordValues(us, n)
}

// meter owns a run's workers.
type meter struct {
	mu      sync.Mutex
	workers []*worker
	samples []Sample // written by the progress goroutine only
}

func (m *meter) newWorker() *worker {
	w := &worker{hist: newHistogram()}
	m.mu.Lock()
	m.workers = append(m.workers, w)
	m.mu.Unlock()
	return w
}

// totals sums the counters of every worker.
func (m *meter) totals() (msgs, bytes, errs int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range m.workers {
		msgs += w.msgs.Load()
		bytes += w.bytes.Load()
		errs += w.errs.Load()
	}
	return msgs, bytes, errs
}

// histogram merges every worker's histogram; call it once they all ended.
func (m *meter) histogram() *hdrhistogram.Histogram {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := newHistogram()
	for _, w := range m.workers {
		h.Merge(w.hist)
	}
	return h
}

// Sample is a run's totals at one moment, for the throughput chart.
type Sample struct {
	Seconds  float64 `json:"t"` // since the run started
	Messages int64   `json:"messages"`
	Bytes    int64   `json:"bytes"`
}

// sampleEvery is how often the progress goroutine samples the totals (and
// redraws the bar); it prints a plain line every ProgressInterval.
const sampleEvery = 250 * time.Millisecond

// progressOpts says how a run shows its progress.
type progressOpts struct {
	out      io.Writer // nil: sample only
	bar      bool      // redraw one line with a bar (a terminal)
	label    string
	interval time.Duration // between plain lines
	total    int64         // messages the run will move; 0: unknown
	duration time.Duration // how long the run lasts; 0: until total
}

// progress samples m's totals into m.samples until stop is closed, and
// shows them on o.out, then closes done. m.samples is this goroutine's
// until done is closed.
func (m *meter) progress(o progressOpts, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	start := time.Now()
	t := time.NewTicker(min(sampleEvery, o.interval))
	defer t.Stop()
	var lastMsgs, lastBytes int64
	last := start
	m.samples = append(m.samples, Sample{})
	sample := func(now time.Time) (msgs, bytes, errs int64) {
		msgs, bytes, errs = m.totals()
		m.samples = append(m.samples, Sample{Seconds: now.Sub(start).Seconds(), Messages: msgs, Bytes: bytes})
		return msgs, bytes, errs
	}
	for {
		select {
		case <-stop:
			now := time.Now()
			msgs, bytes, errs := sample(now)
			if o.out != nil && o.bar {
				fmt.Fprintf(o.out, "\r%s\x1b[K\n", o.barLine(now.Sub(start), msgs, bytes, errs))
			}
			return
		case now := <-t.C:
			msgs, bytes, errs := sample(now)
			switch {
			case o.out == nil:
			case o.bar:
				fmt.Fprintf(o.out, "\r%s\x1b[K", o.barLine(now.Sub(start), msgs, bytes, errs))
			case now.Sub(last) >= o.interval-sampleEvery/2:
				dt := now.Sub(last).Seconds()
				line := fmt.Sprintf("bench %s: %5.1fs %14s msgs %12s msg/s %9.1f MB/s",
					o.label, now.Sub(start).Seconds(), groupDigits(msgs),
					groupDigits(int64(float64(msgs-lastMsgs)/dt)), float64(bytes-lastBytes)/dt/1e6)
				if errs > 0 {
					line += fmt.Sprintf("  %d errors", errs)
				}
				fmt.Fprintln(o.out, line)
				lastMsgs, lastBytes, last = msgs, bytes, now
			}
		}
	}
}

// barWidth is the number of cells of the progress bar.
const barWidth = 30

// barLine is the progress bar line after elapsed, e.g.
//
//	bench produce [###########...................]  37%   3.7s   370,000 msgs   100,000 msg/s  102.4 MB/s  ETA 6s
//
// Rates are averages since the start; without a known end (total and
// duration both 0) the bar is left out.
func (o progressOpts) barLine(elapsed time.Duration, msgs, bytes, errs int64) string {
	frac := -1.0
	switch {
	case o.duration > 0:
		frac = elapsed.Seconds() / o.duration.Seconds()
	case o.total > 0:
		frac = float64(msgs) / float64(o.total)
	}
	secs := max(elapsed.Seconds(), 1e-9)
	line := "bench " + o.label
	if frac >= 0 {
		frac = min(frac, 1)
		full := int(frac * barWidth)
		line += " [" + strings.Repeat("#", full) + strings.Repeat(".", barWidth-full) + "]" +
			fmt.Sprintf(" %3.0f%%", frac*100)
	}
	line += fmt.Sprintf(" %6.1fs %12s msgs %11s msg/s %7.1f MB/s", secs, groupDigits(msgs),
		groupDigits(int64(float64(msgs)/secs)), float64(bytes)/secs/1e6)
	if frac > 0 && frac < 1 {
		eta := time.Duration(secs * (1 - frac) / frac * float64(time.Second))
		line += "  ETA " + eta.Round(time.Second).String()
	}
	if errs > 0 {
		line += fmt.Sprintf("  %d errors", errs)
	}
	return line
}
