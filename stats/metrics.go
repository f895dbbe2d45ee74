package stats

import (
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/ringmq/ringmq/storage"
)

// set holds every ringmq series; it is registered with the metrics
// package's global list, so metrics.WritePrometheus writes it.
var set = metrics.NewSet()

// LatencyBuckets are the upper bounds, in seconds, of every latency
// histogram's le buckets: 50 µs to 10 s, 1-2.5-5 per decade.
var LatencyBuckets = []float64{
	0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
	0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// Server-wide series, created when the package loads.
var (
	fsyncDuration = set.NewPrometheusHistogramExt("ringmq_fsync_duration_seconds", LatencyBuckets)
	fetchWait     = set.NewPrometheusHistogramExt("ringmq_fetch_wait_seconds", LatencyBuckets)

	connsOpen     atomic.Int64
	connsAccepted = set.NewCounter("ringmq_connections_accepted_total")
	connsRejected = set.NewCounter("ringmq_connections_rejected_total")
	acceptErrors  = set.NewCounter("ringmq_accept_errors_total")
	badFrames     = set.NewCounter("ringmq_bad_frames_total")
	backpressured = set.NewCounter("ringmq_backpressure_pauses_total")
	bytesSent     = set.NewCounter("ringmq_bytes_sent_total")
	coldReadBytes = set.NewCounter("ringmq_fetch_cold_read_bytes_total")
	fetchWakeups  = set.NewCounter("ringmq_fetch_wakeups_total")
	indexFaults   = set.NewCounter("ringmq_index_faults_total")
	connsTimedOut = set.NewCounter("ringmq_connections_timed_out_total")
	duplicates    = set.NewCounter("ringmq_produce_duplicates_total")
	appendsHeld   = set.NewCounter("ringmq_appends_held_total")
	writtenBack   = set.NewCounter("ringmq_writeback_bytes_total")

	partitionsAlive   atomic.Int64
	partitionsFenced  atomic.Int64
	partitionsCorrupt atomic.Int64
	corruptRanges     atomic.Int64

	segmentCounts [storage.NumSegmentStates]atomic.Int64

	sends [numSendPaths]*metrics.Counter
)

func init() {
	metrics.RegisterSet(set)
	metrics.ExposeMetadata(true)
	set.NewGauge("ringmq_connections_open", func() float64 { return float64(connsOpen.Load()) })
	set.NewGauge("ringmq_partitions", func() float64 { return float64(partitionsAlive.Load()) })
	set.NewGauge("ringmq_partitions_fenced", func() float64 { return float64(partitionsFenced.Load()) })
	set.NewGauge("ringmq_partitions_corrupt", func() float64 { return float64(partitionsCorrupt.Load()) })
	set.NewGauge("ringmq_corrupt_ranges", func() float64 { return float64(corruptRanges.Load()) })
	for p := range SendPath(numSendPaths) {
		sends[p] = set.NewCounter(`ringmq_sends_total{path="` + p.String() + `"}`)
	}
	for s := range storage.SegmentState(storage.NumSegmentStates) {
		set.NewGauge(`ringmq_segments{state="`+s.String()+`"}`, func() float64 {
			return float64(segmentCounts[s].Load())
		})
	}
}

// ObserveFsync records the latency of one fdatasync (or fsync).
func ObserveFsync(d time.Duration) { fsyncDuration.Update(d.Seconds()) }

// AppendHeld counts a produce part held because its partition's next
// segment was not ready yet.
func AppendHeld() { appendsHeld.Inc() }

// WrittenBack counts n segment bytes whose writeback the server started
// (storage.writeback_bytes).
func WrittenBack(n int64) { writtenBack.Add(int(n)) }

// WritebackBytes is the total counted by WrittenBack (for tests).
func WritebackBytes() uint64 { return writtenBack.Get() }

// AppendsHeld is ringmq_appends_held_total (for tests).
func AppendsHeld() uint64 { return appendsHeld.Get() }

// PartitionFenced counts partitions that refuse appends after an I/O
// failure (delta 1) or resumed or went away (delta -1).
func PartitionFenced(delta int64) { partitionsFenced.Add(delta) }

// PartitionsCorrupt counts partitions with known damaged data (delta 1),
// or one going away (delta -1).
func PartitionsCorrupt(delta int64) { partitionsCorrupt.Add(delta) }

// CorruptRanges counts damaged ranges found in partition logs (recovery
// or reads), less those of partitions that went away.
func CorruptRanges(delta int64) { corruptRanges.Add(delta) }

// ObserveFetchWait records how long one fetch was parked waiting for data
// (long poll); a fetch that never parked is not observed.
func ObserveFetchWait(d time.Duration) { fetchWait.Update(d.Seconds()) }

// AcceptError counts an accept that failed for lack of descriptors or
// memory (EMFILE, ENFILE, ENOBUFS, ENOMEM).
func AcceptError() { acceptErrors.Inc() }

// BadFrame counts a connection closed for a malformed or oversized frame.
func BadFrame() { badFrames.Inc() }

// BackpressurePause counts a connection whose reading paused because it,
// or its reactor, held more memory than its budget.
func BackpressurePause() { backpressured.Inc() }

// SendPath is how a response went out to its socket.
type SendPath uint8

// Send paths.
const (
	// SendPlain: send or sendmsg, the kernel copying the bytes.
	SendPlain SendPath = iota
	// SendZeroCopy: sendmsg_zc, and the notification said the kernel
	// sent from the server's pages.
	SendZeroCopy
	// SendZeroCopyCopied: sendmsg_zc, but the notification said the
	// kernel copied anyway (IORING_NOTIF_USAGE_ZC_COPIED; loopback always
	// does).
	SendZeroCopyCopied
	numSendPaths
)

var sendPathNames = [numSendPaths]string{"plain", "zerocopy", "zerocopy_copied"}

func (p SendPath) String() string { return sendPathNames[p] }

// Sent counts one send on path p. A zero-copy send is counted when its
// notification arrives, which says whether the kernel copied.
func Sent(p SendPath) {
	if p >= numSendPaths {
		panic("BUG: stats: unknown send path")
	}
	sends[p].Inc()
}

// BytesSent counts response bytes handed to the kernel.
func BytesSent(n int) { bytesSent.Add(n) }

// ColdReadBytes counts bytes a fetch read through the ring because they
// were not in page cache.
func ColdReadBytes(n int) { coldReadBytes.Add(n) }

// FetchWakeup counts a parked fetch woken by data past what it read.
func FetchWakeup() { fetchWakeups.Inc() }

// IndexFault counts a read that found a wrong offset index entry and
// scanned the segment instead.
func IndexFault() { indexFaults.Inc() }

// ConnTimedOut counts a connection closed by frame_timeout or
// idle_timeout.
func ConnTimedOut() { connsTimedOut.Inc() }

// ProduceDuplicate counts an idempotent batch answered with the offsets
// it was already stored at, not written again.
func ProduceDuplicate() { duplicates.Inc() }

// ConnOpened counts an accepted connection that the server keeps.
func ConnOpened() {
	connsAccepted.Inc()
	connsOpen.Add(1)
}

// ConnClosed counts the end of a connection that ConnOpened counted.
func ConnClosed() { connsOpen.Add(-1) }

// ConnRejected counts a connection closed at once because the server has
// max_connections already.
func ConnRejected() { connsRejected.Inc() }

// SegmentEntered counts a segment that was created in state s (or opened in
// it at recovery).
func SegmentEntered(s storage.SegmentState) { segmentCounts[checkState(s)].Add(1) }

// SegmentLeft counts a segment that left state s and the life cycle
// (deleted, or closed at shutdown).
func SegmentLeft(s storage.SegmentState) { segmentCounts[checkState(s)].Add(-1) }

// SegmentMoved counts a segment going from one state to the next.
func SegmentMoved(from, to storage.SegmentState) {
	segmentCounts[checkState(from)].Add(-1)
	segmentCounts[checkState(to)].Add(1)
}

func checkState(s storage.SegmentState) storage.SegmentState {
	if int(s) >= storage.NumSegmentStates {
		panic("BUG: stats: segment state out of range")
	}
	return s
}

// APIStats are the series of one request type. Get it once from API.
type APIStats struct {
	name     string
	duration *metrics.PrometheusHistogram
	// errors[code] is created on the code's first use (see Failed); the
	// last slot counts every code past the table.
	errors [maxErrorCodes]atomic.Pointer[metrics.Counter]
}

// maxErrorCodes bounds the error codes counted one by one; the wire table
// (proto/errors.go) is far smaller.
const maxErrorCodes = 64

// Observe records the time the server worked on one request, from its
// frame being read to its response being queued, less any long-poll wait.
func (a *APIStats) Observe(d time.Duration) { a.duration.Update(d.Seconds()) }

// Failed counts one error code (code > 0) in a response: the response's
// own code or a partition's or topic's code inside it. codeName labels the
// series ("UNKNOWN_TOPIC"). The first use of a code registers its series
// (one lock and allocation); later uses are one atomic add.
func (a *APIStats) Failed(code uint16, codeName string) {
	if code == 0 {
		return
	}
	slot := min(int(code), maxErrorCodes-1)
	c := a.errors[slot].Load()
	if c == nil {
		if slot == maxErrorCodes-1 {
			codeName = "OTHER"
		}
		c = a.errorCounter(slot, codeName)
	}
	c.Inc()
}

func (a *APIStats) errorCounter(slot int, codeName string) *metrics.Counter {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if c := a.errors[slot].Load(); c != nil {
		return c
	}
	c := set.NewCounter(`ringmq_request_errors_total{api="` + escapeLabel(a.name) +
		`",code="` + escapeLabel(codeName) + `"}`)
	a.errors[slot].Store(c)
	return c
}
