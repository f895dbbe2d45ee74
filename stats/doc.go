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
//	ringmq_request_duration_seconds{api}          histogram: server time per request, less any long-poll wait
//	ringmq_request_errors_total{api,code}         error codes returned (the response's own, or a partition's or topic's in it)
//	ringmq_fetch_wait_seconds                     histogram: long-poll wait of fetches that parked
//	ringmq_fsync_duration_seconds                 histogram of fdatasync latency
//	ringmq_connections_open                       gauge
//	ringmq_connections_accepted_total             counter
//	ringmq_connections_rejected_total             counter (max_connections reached)
//	ringmq_accept_errors_total                    counter: accepts failed for lack of descriptors or memory
//	ringmq_bad_frames_total                       counter: connections closed for a bad frame
//	ringmq_backpressure_pauses_total              counter: connections paused for memory
//	ringmq_bytes_sent_total                       counter: response bytes
//	ringmq_fetch_cold_read_bytes_total            counter: fetch bytes read through the ring
//	ringmq_tls_handshakes_total{result}           counter: TLS handshakes, ok or failed
//	ringmq_tls_record_errors_total                counter: TLS connections ended by a bad record
//	ringmq_fetch_wakeups_total                    counter: parked fetches woken by new data
//	ringmq_index_faults_total                     counter: reads that found a wrong index entry
//	ringmq_connections_timed_out_total            counter: closed by frame_timeout or idle_timeout
//	ringmq_produce_duplicates_total               counter: idempotent batches answered as already stored
//	ringmq_appends_held_total                     counter: produce parts that waited for the next segment
//	ringmq_writeback_bytes_total                  counter: segment bytes whose writeback was started ahead of the flush
//	ringmq_partitions                             gauge: partition handles alive
//	ringmq_partitions_fenced                      gauge: partitions refusing appends after an I/O failure
//	ringmq_partitions_corrupt                     gauge: partitions with damaged data (served around it)
//	ringmq_corrupt_ranges                         gauge: damaged ranges in those partitions
//	ringmq_segments{state}                        gauge: by storage.SegmentState (active, sealed, flushed, archived)
//	ringmq_produce_messages_total{topic}          counter
//	ringmq_produce_bytes_total{topic}             counter
//	ringmq_fetch_messages_total{topic}            counter
//	ringmq_fetch_bytes_total{topic}               counter
//	ringmq_disk_bytes{topic}                      gauge: bytes of segments on disk
//	ringmq_log_end_offset{topic,partition}        gauge
//	ringmq_high_watermark{topic,partition}        gauge
//	ringmq_follower_max_lag{topic,partition}      gauge: on the leader, log end - the slowest follower's match
//	ringmq_replicated_bytes_total, ringmq_follower_truncations_total  counters: follower appends, truncations
//	ringmq_isr_{shrinks,expands}_total            counters: ISR changes committed for leaders here
//	ringmq_group_committed_offset{group,topic,partition}  gauge
//	ringmq_group_lag{group,topic,partition}       gauge: log end - committed, at scrape time
//	ringmq_groups{state}, ringmq_group_members    gauges: per state, never per group
//	ringmq_group_{rebalances,commits,fenced,sessions_expired}_total  counters
//	ringmq_group_append_duration_seconds          histogram of __consumer_offsets appends
//
// WritePrometheus (and GET /metrics) writes them in the Prometheus text
// format with a # HELP text (table help in expose.go) and a # TYPE per
// family. Histograms have Prometheus le buckets (LatencyBuckets, 50 µs to
// 10 s) with _sum and _count, so histogram_quantile reads them.
//
// Concurrency: every function and method is safe for concurrent use. The
// package-level metric set is its only state.
package stats
