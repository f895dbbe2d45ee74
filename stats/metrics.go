package stats

import (
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// set holds every ringmq series; it is registered with the metrics
// package's global list, so metrics.WritePrometheus writes it.
var set = metrics.NewSet()

// Server-wide series, created when the package loads.
var (
	fsyncDuration = set.NewHistogram("ringmq_fsync_duration_seconds")

	connsOpen     atomic.Int64
	connsAccepted = set.NewCounter("ringmq_connections_accepted_total")
	connsRejected = set.NewCounter("ringmq_connections_rejected_total")

	partitionsAlive   atomic.Int64
	partitionsFenced  atomic.Int64
	partitionsCorrupt atomic.Int64
	corruptRanges     atomic.Int64

	segmentCounts [numSegmentStates]atomic.Int64
)

func init() {
	metrics.RegisterSet(set)
	set.NewGauge("ringmq_connections_open", func() float64 { return float64(connsOpen.Load()) })
	set.NewGauge("ringmq_partitions", func() float64 { return float64(partitionsAlive.Load()) })
	set.NewGauge("ringmq_partitions_fenced", func() float64 { return float64(partitionsFenced.Load()) })
	set.NewGauge("ringmq_partitions_corrupt", func() float64 { return float64(partitionsCorrupt.Load()) })
	set.NewGauge("ringmq_corrupt_ranges", func() float64 { return float64(corruptRanges.Load()) })
	for s := range SegmentState(numSegmentStates) {
		set.NewGauge(`ringmq_segments{state="`+s.String()+`"}`, func() float64 {
			return float64(segmentCounts[s].Load())
		})
	}
}

// ObserveFsync records the latency of one fdatasync (or fsync).
func ObserveFsync(d time.Duration) { fsyncDuration.Update(d.Seconds()) }

// PartitionFenced counts partitions that refuse appends after an I/O
// failure (delta 1) or resumed or went away (delta -1).
func PartitionFenced(delta int64) { partitionsFenced.Add(delta) }

// PartitionsCorrupt counts partitions with known damaged data (delta 1),
// or one going away (delta -1).
func PartitionsCorrupt(delta int64) { partitionsCorrupt.Add(delta) }

// CorruptRanges counts damaged ranges found in partition logs (recovery
// or reads), less those of partitions that went away.
func CorruptRanges(delta int64) { corruptRanges.Add(delta) }

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

// SegmentState is a segment's place in its life cycle.
type SegmentState uint8

// Segment life-cycle states. A deleted segment is in none.
const (
	SegmentActive SegmentState = iota
	SegmentSealed
	SegmentFlushed
	SegmentArchived
	numSegmentStates
)

// NumSegmentStates is the number of segment life-cycle states.
const NumSegmentStates = int(numSegmentStates)

var segmentStateNames = [numSegmentStates]string{"active", "sealed", "flushed", "archived"}

func (s SegmentState) String() string {
	if s < numSegmentStates {
		return segmentStateNames[s]
	}
	return "invalid"
}

// SegmentEntered counts a segment that was created in state s (or opened in
// it at recovery).
func SegmentEntered(s SegmentState) { segmentCounts[s.check()].Add(1) }

// SegmentLeft counts a segment that left state s and the life cycle
// (deleted, or closed at shutdown).
func SegmentLeft(s SegmentState) { segmentCounts[s.check()].Add(-1) }

// SegmentMoved counts a segment going from one state to the next.
func SegmentMoved(from, to SegmentState) {
	segmentCounts[from.check()].Add(-1)
	segmentCounts[to.check()].Add(1)
}

func (s SegmentState) check() SegmentState {
	if s >= numSegmentStates {
		panic("BUG: stats: segment state out of range")
	}
	return s
}

// APIStats are the series of one request type. Get it once from API.
type APIStats struct {
	duration *metrics.Histogram
	errors   *metrics.Counter
}

// Observe records the time one request took, from its frame being read to
// its response being queued.
func (a *APIStats) Observe(d time.Duration) { a.duration.Update(d.Seconds()) }

// Failed counts a request answered with an error code.
func (a *APIStats) Failed() { a.errors.Inc() }
