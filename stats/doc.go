// Package stats defines every metric the ringmq server exports and serves
// them over HTTP: /metrics in the Prometheus text format, /healthz
// (liveness) and /readyz (readiness).
//
// The metrics live in one process-wide set (registered with
// github.com/VictoriaMetrics/metrics, so metrics.WritePrometheus includes
// them). Server-wide series are created when the package loads; series with
// labels are created on demand by ForTopic, ForPartition, ForGroup and API,
// which return a cached handle for the same labels. Those lookups lock and
// may allocate: call them when a topic, partition, group or request type
// first appears, keep the handle, and update it on the hot path. Updates
// (Produced, SetLogEnd, Observe, ConnOpened, ...) are atomic operations or
// one uncontended mutex, never allocate, and never format a name.
//
// Series (labels in braces):
//
//	ringmq_request_duration_seconds{api}          histogram, per request type
//	ringmq_request_errors_total{api}              requests answered with an error
//	ringmq_fsync_duration_seconds                 histogram of fdatasync latency
//	ringmq_connections_open                       gauge
//	ringmq_connections_accepted_total             counter
//	ringmq_connections_rejected_total             counter (max_connections reached)
//	ringmq_partitions                             gauge: partition handles alive
//	ringmq_partitions_fenced                      gauge: partitions refusing appends after an I/O failure
//	ringmq_partitions_corrupt                     gauge: partitions with damaged data (served around it)
//	ringmq_corrupt_ranges                         gauge: damaged ranges in those partitions
//	ringmq_segments{state}                        gauge: active, sealed, flushed, archived
//	ringmq_produce_messages_total{topic}          counter
//	ringmq_produce_bytes_total{topic}             counter
//	ringmq_fetch_messages_total{topic}            counter
//	ringmq_fetch_bytes_total{topic}               counter
//	ringmq_disk_bytes{topic}                      gauge: bytes of segments on disk
//	ringmq_log_end_offset{topic,partition}        gauge
//	ringmq_group_committed_offset{group,topic,partition}  gauge
//	ringmq_group_lag{group,topic,partition}       gauge: log end - committed, at scrape time
//
// Histograms are VictoriaMetrics histograms: their buckets carry a vmrange
// label (log-spaced, 18 per decade) instead of le.
//
// Concurrency: every function and method is safe for concurrent use. The
// package-level metric set is its only state.
package stats
