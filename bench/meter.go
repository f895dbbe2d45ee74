package bench

import (
	"fmt"
	"io"
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

// progress writes a line to out every interval until stop is closed, then
// closes done.
func (m *meter) progress(out io.Writer, label string, interval time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	if out == nil {
		<-stop
		return
	}
	start := time.Now()
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastMsgs, lastBytes int64
	last := start
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			msgs, bytes, errs := m.totals()
			dt := now.Sub(last).Seconds()
			line := fmt.Sprintf("bench %s: %5.1fs %14s msgs %12s msg/s %9.1f MB/s",
				label, now.Sub(start).Seconds(), groupDigits(msgs),
				groupDigits(int64(float64(msgs-lastMsgs)/dt)), float64(bytes-lastBytes)/dt/1e6)
			if errs > 0 {
				line += fmt.Sprintf("  %d errors", errs)
			}
			fmt.Fprintln(out, line)
			lastMsgs, lastBytes, last = msgs, bytes, now
		}
	}
}
