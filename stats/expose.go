package stats

import (
	"bytes"
	"io"
	"strings"

	"github.com/VictoriaMetrics/metrics"
)

// help is the # HELP text of every ringmq family. A family missing here is
// a test failure (TestEveryFamilyHasHelp), never a silent empty line.
var help = map[string]string{
	"ringmq_request_duration_seconds":      "Time the server worked on a request, from its frame being read to its response being queued, less any long-poll wait.",
	"ringmq_request_errors_total":          "Error codes returned, per API and code: a response's own code, or each partition's or topic's code in it.",
	"ringmq_fetch_wait_seconds":            "Time a fetch was parked waiting for min_bytes (long poll), for fetches that parked.",
	"ringmq_fsync_duration_seconds":        "Latency of one fdatasync of a segment file.",
	"ringmq_connections_open":              "Client connections open now.",
	"ringmq_connections_accepted_total":    "Client connections accepted and kept.",
	"ringmq_connections_rejected_total":    "Client connections closed at once because max_connections was reached.",
	"ringmq_accept_errors_total":           "Accepts that failed for lack of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM).",
	"ringmq_bad_frames_total":              "Connections closed for a malformed or oversized frame.",
	"ringmq_backpressure_pauses_total":     "Times a connection stopped being read because it, or its reactor, held more memory than conn_max_unanswered_bytes or its share of max_buffered_bytes.",
	"ringmq_connections_timed_out_total":   "Connections closed by frame_timeout (a frame did not complete) or idle_timeout.",
	"ringmq_produce_duplicates_total":      "Idempotent producer batches answered with the offsets they were already stored at (retries), not written again.",
	"ringmq_fetch_wakeups_total":           "Parked fetches woken by data past what they had read.",
	"ringmq_index_faults_total":            "Reads that found a wrong offset index entry and scanned the segment instead.",
	"ringmq_appends_held_total":            "Produce parts that waited for their partition's next segment (rolls that outran its preparation).",
	"ringmq_writeback_bytes_total":         "Segment bytes whose writeback the server started ahead of the flush (storage.writeback_bytes).",
	"ringmq_bytes_sent_total":              "Response bytes handed to the kernel.",
	"ringmq_sends_total":                   "Response sends per path: plain (send/sendmsg), zerocopy (sendmsg_zc sent from the server's pages), zerocopy_copied (sendmsg_zc that the kernel copied anyway, as on loopback).",
	"ringmq_tls_handshakes_total":          "TLS handshakes on the client listener, by result (ok, failed: refused certificate, deadline, protocol error, queue full).",
	"ringmq_tls_record_errors_total":       "TLS connections ended by a record that failed to decrypt or broke the protocol (an alert was sent).",
	"ringmq_fetch_cold_read_bytes_total":   "Bytes fetches read through io_uring because they were not in page cache.",
	"ringmq_partitions":                    "Partitions open on this server.",
	"ringmq_partitions_fenced":             "Partitions refusing appends after a failed write or fdatasync (e.g. a full disk); they resume by themselves.",
	"ringmq_partitions_corrupt":            "Partitions with damaged data found by recovery or reads (served around it; see topic describe).",
	"ringmq_corrupt_ranges":                "Damaged byte ranges in the partitions of ringmq_partitions_corrupt.",
	"ringmq_segments":                      "Segments per life-cycle state (active, sealed, flushed, archived).",
	"ringmq_produce_messages_total":        "Records appended, per topic.",
	"ringmq_produce_bytes_total":           "Record batch bytes appended, per topic.",
	"ringmq_fetch_messages_total":          "Records sent to consumers, per topic.",
	"ringmq_fetch_bytes_total":             "Record batch bytes sent to consumers, per topic.",
	"ringmq_disk_bytes":                    "Bytes of segment files on disk, per topic.",
	"ringmq_log_end_offset":                "Next offset to be assigned, per partition.",
	"ringmq_group_committed_offset":        "Offset a consumer group committed (the next it will read), per partition; -1 before its first commit.",
	"ringmq_group_lag":                     "Log end offset minus the group's committed offset, per partition.",
	"ringmq_groups":                        "Consumer groups per state (empty, reconciling, stable).",
	"ringmq_group_members":                 "Members of all consumer groups.",
	"ringmq_group_rebalances_total":        "Group coordinator inputs that changed a group's target assignment.",
	"ringmq_group_commits_total":           "Offset commits accepted by the group coordinator.",
	"ringmq_group_fenced_total":            "Commits and offset fetches refused because the member did not own the partition in its epoch (or was unknown).",
	"ringmq_group_sessions_expired_total":  "Group members removed because their session timed out.",
	"ringmq_group_append_duration_seconds": "Latency of one group-commit append (write and fdatasync) of __consumer_offsets.",

	"ringmq_controller_leader":                 "Node id of the controller (Raft) leader as this node sees it; 0 while none is known.",
	"ringmq_controller_term":                   "Raft term of the controller as this node sees it.",
	"ringmq_controller_commit_index":           "Raft commit index of the controller log on this node.",
	"ringmq_controller_leader_elections_total": "Changes of controller leader this node has seen (a new leader elected).",
	"ringmq_brokers_alive":                     "Brokers the controller counts alive (registered, not fenced).",
	"ringmq_partitions_offline":                "Partitions with no leader: none of their in-sync replicas is alive.",
	"ringmq_partitions_under_replicated":       "Partitions whose in-sync replicas are fewer than their replicas.",
	"ringmq_high_watermark":                    "High watermark per partition: below it, on every in-sync replica (consumers read below it).",
	"ringmq_follower_max_lag":                  "On a partition's leader, the largest lag of its followers (log end less their match offset); 0 elsewhere.",
	"ringmq_replicated_bytes_total":            "Bytes of batches this node appended as a follower.",
	"ringmq_follower_truncations_total":        "Truncations of follower logs (a divergence from the leader's log).",
	"ringmq_isr_shrinks_total":                 "ISR shrinks this node's partition leaders got committed.",
	"ringmq_isr_expands_total":                 "ISR expands this node's partition leaders got committed.",

	// The Go runtime and process series of github.com/VictoriaMetrics/metrics.
	"go_goroutines":                 "Goroutines that currently exist.",
	"go_threads":                    "OS threads created by the Go runtime.",
	"go_gomaxprocs":                 "GOMAXPROCS: the number of Ps.",
	"go_info":                       "Go version that built the binary (label version).",
	"go_info_ext":                   "Go runtime settings (labels).",
	"go_gc_duration_seconds":        "Stop-the-world pause durations of garbage collections.",
	"go_memlimit_bytes":             "Go runtime soft memory limit (GOMEMLIMIT).",
	"go_cgo_calls_total":            "cgo calls made by this process.",
	"go_gc_forced_total":            "Garbage collections forced by the application.",
	"go_cpus":                       "Logical CPUs usable by this process.",
	"process_cpu_seconds_total":     "User and system CPU time spent, in seconds.",
	"process_resident_memory_bytes": "Resident memory size, in bytes.",
	"process_virtual_memory_bytes":  "Virtual memory size, in bytes.",
	"process_start_time_seconds":    "Start time of the process since the Unix epoch, in seconds.",
	"process_open_fds":              "Open file descriptors.",
	"process_max_fds":               "Maximum number of open file descriptors.",
	"process_num_threads":           "OS threads of the process.",
}

// prefixHelp describes the families of the metrics library that help does
// not name one by one.
var prefixHelp = []struct{ prefix, text string }{
	{"go_memstats_", "Go runtime memory statistic (runtime.MemStats)."},
	{"go_gc_", "Go garbage collector statistic (runtime/metrics)."},
	{"go_", "Go runtime statistic (runtime/metrics)."},
	{"process_io_", "I/O counter of the process (/proc/self/io)."},
	{"process_pressure_", "Pressure stall time of the process's cgroup (/sys/fs/cgroup)."},
	{"process_", "Statistic of the process (/proc/self)."},
}

// renamed maps families of the metrics library whose names break the
// Prometheus naming rules (a counter without _total, a _count suffix on a
// plain series) to conforming names.
var renamed = map[string]string{
	"go_cgo_calls_count": "go_cgo_calls_total",
	"go_gc_forced_count": "go_gc_forced_total",
	"go_cpu_count":       "go_cpus",
}

// dropped are families of the metrics library that cannot follow the
// text format: runtime/metrics histograms have buckets but no sum, and a
// histogram without _sum is malformed. go_gc_duration_seconds (a summary)
// still describes garbage-collection pauses.
var dropped = map[string]bool{
	"go_sched_latencies_seconds": true,
	"go_gc_pauses_seconds":       true,
}

// helpText is the # HELP text of family.
func helpText(family string) string {
	if h, ok := help[family]; ok {
		return h
	}
	for _, p := range prefixHelp {
		if strings.HasPrefix(family, p.prefix) {
			return p.text
		}
	}
	return "ringmq metric " + family + "."
}

// typeOf corrects the # TYPE the metrics library declares: cumulative
// process I/O figures ending in _total are counters, not gauges.
func typeOf(family, declared string) string {
	if declared == "gauge" && strings.HasSuffix(family, "_total") {
		return "counter"
	}
	return declared
}

// WritePrometheus writes every registered series, with the go_* and
// process_* series of this process, in the Prometheus text format: one
// # HELP (with its text) and one # TYPE line per family, histograms as
// le buckets with _sum and _count.
func WritePrometheus(w io.Writer) error {
	var src bytes.Buffer
	metrics.WritePrometheus(&src, true)
	_, err := w.Write(annotate(make([]byte, 0, src.Len()+src.Len()/2), src.Bytes()))
	return err
}

// annotate copies the metrics library's exposition src to dst, filling in
// the # HELP text, correcting # TYPE, renaming the families in renamed and
// leaving out those in dropped.
func annotate(dst, src []byte) []byte {
	for line := range bytes.Lines(src) {
		line = bytes.TrimSuffix(line, []byte("\n"))
		switch {
		case bytes.HasPrefix(line, []byte("# HELP ")):
			fields := strings.Fields(string(line[len("# HELP "):]))
			if len(fields) == 0 {
				continue
			}
			if dropped[fields[0]] {
				continue
			}
			family := rename(fields[0])
			dst = append(dst, "# HELP "+family+" "+helpText(family)+"\n"...)
		case bytes.HasPrefix(line, []byte("# TYPE ")):
			fields := strings.Fields(string(line[len("# TYPE "):]))
			if len(fields) != 2 {
				continue
			}
			if dropped[fields[0]] {
				continue
			}
			family := rename(fields[0])
			dst = append(dst, "# TYPE "+family+" "+typeOf(family, fields[1])+"\n"...)
		case len(line) == 0:
		default:
			end := bytes.IndexAny(line, "{ ")
			if end < 0 {
				continue // not a sample line
			}
			name := string(line[:end])
			if dropped[strings.TrimSuffix(name, "_bucket")] {
				continue
			}
			if to, ok := renamed[name]; ok {
				dst = append(dst, to...)
				line = line[end:]
			}
			dst = append(dst, line...)
			dst = append(dst, '\n')
		}
	}
	return dst
}

func rename(family string) string {
	if to, ok := renamed[family]; ok {
		return to
	}
	return family
}
