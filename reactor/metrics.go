package reactor

import (
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/stats"
)

// serverMetrics holds pre-created series so the hot path never formats a
// metric name.
type serverMetrics struct {
	api         [proto.APIListGroups + 1]*stats.APIStats
	badFrames   *metrics.Counter
	backpressed *metrics.Counter
	bytesSent   *metrics.Counter
	coldReads   *metrics.Counter
	fetchWakes  *metrics.Counter
	idxFaults   *metrics.Counter
	timeouts    *metrics.Counter
}

func newServerMetrics() serverMetrics {
	m := serverMetrics{
		badFrames:   metrics.GetOrCreateCounter("ringmq_bad_frames_total"),
		backpressed: metrics.GetOrCreateCounter("ringmq_backpressure_pauses_total"),
		bytesSent:   metrics.GetOrCreateCounter("ringmq_bytes_sent_total"),
		coldReads:   metrics.GetOrCreateCounter("ringmq_fetch_cold_read_bytes_total"),
		fetchWakes:  metrics.GetOrCreateCounter("ringmq_fetch_wakeups_total"),
		idxFaults:   metrics.GetOrCreateCounter("ringmq_index_faults_total"),
		timeouts:    metrics.GetOrCreateCounter("ringmq_connections_timed_out_total"),
	}
	for k := proto.APIHello; k <= proto.APIListGroups; k++ {
		m.api[k] = stats.API(strings.ToLower(k.String()))
	}
	return m
}

func (m *serverMetrics) connOpened()   { stats.ConnOpened() }
func (m *serverMetrics) connClosed()   { stats.ConnClosed() }
func (m *serverMetrics) connRejected() { stats.ConnRejected() }
func (m *serverMetrics) badFrame()     { m.badFrames.Inc() }
func (m *serverMetrics) backpressure() { m.backpressed.Inc() }
func (m *serverMetrics) bytesOut(n int) {
	m.bytesSent.Add(n)
}
func (m *serverMetrics) coldRead(n int) { m.coldReads.Add(n) }

// indexFault counts reads that found a wrong offset index entry and
// scanned the segment instead (storage.StoreOptions.OnIndexFault).
func (m *serverMetrics) indexFault() { m.idxFaults.Inc() }

// timedOut counts connections closed by frame_timeout or idle_timeout.
func (m *serverMetrics) timedOut() { m.timeouts.Inc() }

// fetchWake counts parked fetches woken to read again (not deadlines).
func (m *serverMetrics) fetchWake() { m.fetchWakes.Inc() }

func (m *serverMetrics) requestDone(api proto.APIKey, d time.Duration) {
	if int(api) < len(m.api) && m.api[api] != nil {
		m.api[api].Observe(d)
	}
}

func (m *serverMetrics) fsync(d time.Duration) { stats.ObserveFsync(d) }

func (m *serverMetrics) produced(p *partition, records, bytes int) {
	p.topic.stats.Produced(records, bytes)
}

func (m *serverMetrics) dropTopic(name string) { stats.DropTopic(name) }

func (m *serverMetrics) committed(group string, info *topicInfo, p uint32, off uint64) {
	g := stats.ForGroup(group, info.name, int32(p))
	g.SetCommitted(int64(off))
}
