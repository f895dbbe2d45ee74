// Package reactor is ringmq's server: one io_uring event loop per core,
// each owning its connections and a shard of the partitions.
//
// NewServer opens the data directory and binds one SO_REUSEPORT listener
// per reactor; Start runs the reactors; Shutdown drains and stops them.
//
// # Ownership (the rule everything else rests on)
//
// A Reactor is one goroutine locked to its OS thread (pinned to a CPU when
// configured) with its own ring. Its connections, its partitions'
// storage.Logs, its buffer pool, its op table and its requests are touched
// by that goroutine only. Other goroutines — other reactors, the admin
// goroutine, Shutdown — post messages to its mailbox, which wakes its ring
// through an eventfd. Partition state other goroutines may read (log
// start/end, size) is published with atomics (partShared). The topic table
// is copy-on-write behind an atomic pointer.
//
// # One loop turn
//
//	submit prepared SQEs, wait for ≥1 CQE or the next timer
//	for each CQE: accept → new conn, arm multishot recv
//	              recv   → frame bytes → one pooled buffer per request → dispatch
//	              write  → storage Appended → ack / group-commit queue, wake long polls
//	              fsync  → storage Flushed → ack flush=sync produce parts
//	              send   → release sent frames (and their segment views)
//	drain mailbox (forwarded parts, results, hand-offs, admin replies)
//	timers: interval flush + checkpoints, retention, long-poll deadlines
//	group commit: one fdatasync per flush=sync partition with waiting acks
//	flush sends: one sendmsg per connection with everything queued this turn
//
// # Requests
//
// A request is owned by the reactor that read it (its origin). Each
// partition part goes to its owner: handled inline when that is the
// origin, otherwise posted to the owner's mailbox; the owner posts the
// result back. Each partition's rules live in its replica.Replica, which
// the owner drives (drive.go): it feeds it write and flush completions,
// the clock and fetch registrations, and executes its Ready at the end of
// every loop turn. A produce part is acknowledged by its level: acks=0
// and acks=1 once the visible log end passes it, acks=all once the high
// watermark does (the flushed offset on flush=sync topics, the log end
// otherwise); never across a gap left by a failed or unfinished earlier
// write. A fetch returns only records below the high watermark and
// reports it; it answers with header bytes followed by the mmap'd segment
// slices themselves (sendmsg with iovecs, no copy); slices read by
// another reactor are released back to it after the send. Below
// min_bytes a fetch registers with each partition's replica (Wait) and
// parks until the high watermark moves far enough or max_wait passes.
//
// # Bounds
//
// What a client can make the server hold is bounded (budget.go): fetch
// responses by fetch_max_bytes over all partitions, cold reads by
// fetch_cold_read_bytes, waits by fetch_max_wait; the memory of each
// connection and of each reactor's connections by budgets past which a
// connection is no longer read from; partial frames by frame_timeout and
// connections by idle_timeout.
//
// Metadata changes (create/delete topic) and consumer offsets run on the
// admin goroutine, which writes the metadata store and asks each reactor
// to open or drop its partitions.
package reactor
