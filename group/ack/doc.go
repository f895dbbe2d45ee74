// Package ack is the ack state of a shared or key_shared subscription:
// per (group, partition), which records are done, which are locked by
// which member until when, how often each was delivered, which go to the
// dead-letter topic, and the records that persist all of it in the
// group's internal log. It decides; it does no I/O, has no goroutine and
// no clock of its own: the coordinator feeds it inputs with explicit
// `now` values and executes the Ready it returns (etcd raft's RawNode is
// the model, as for replica/).
//
// # Concurrency
//
// A Tracker is owned by one goroutine (the group's coordinator) and is
// not safe for concurrent use.
//
// # State
//
//	       floor F                                      F + MaxUnacked
//	done   │ done bitmap (roaring) + a slot per offset:     │ never handed out
//	───────┼── done │ locked(m, deadline, n) │ waiting(n) ──┼──────────────
//	                 dead (n, error) │ fresh
//
// Everything below F is done. Above it a Roaring bitmap holds the done
// offsets (relative to a base ≤ F; F advances over the contiguous done
// prefix and the bitmap is trimmed), and a ring of 16-byte slots, one
// per offset in the window, holds each record's state: fresh (never
// handed out), locked by a member until a deadline, waiting for
// redelivery (after a nack, a lock expiry or its member leaving), dead
// (waiting for its dead-letter append) or done; and its delivery count.
// No record at or past F + MaxUnacked is handed out, so the window bounds
// the memory: delayed or poison records pin F, and with it retention,
// until they are done.
//
// # Inputs
//
//	Acquire(m, now, max, logEnd, src)  hand m records (offset order:
//	                                   redeliveries first); src gives key
//	                                   hashes and delivery times
//	Ack(m, off), AckCumulative(m, upTo) done
//	Nack(m, off, now, delay, reason)   release (delay, or UseBackoff)
//	Reject(m, off, reason)             dead-letter (or done when off)
//	Expire(now)                        release expired locks (NextDeadline)
//	MemberJoined(m), MemberLeft(m, now) key ranges; release m's records
//	DeadLettered(off)                  the dead-letter append is durable
//
// A record delivered MaxDeliveries times and released again, or
// rejected, goes to the dead-letter topic (DeadLetter in Ready) instead of
// being delivered again, and is done once DeadLettered confirms it.
//
// # key_shared
//
// Key hashes map to members by a consistent-hash ring (VNodes points per
// member, placed by a fixed hash of the member number), so keys move only
// when members join or leave. A record goes only to the owner of its key
// hash, never while an earlier record of its key is in flight to another
// member (a key that moved waits for the old owner to ack or release),
// and never past an earlier record of its key that is not available yet
// (a nack backoff or a delivery time): per-key order holds across
// redeliveries and member changes.
//
// # Outputs: Ready, then Advance
//
// Ready returns the frames to append to the internal log (deltas, or a
// snapshot every SnapshotEvery changes and first of all) and the dead
// letters to append. Restore rebuilds a tracker from the frames. Stats
// gives F, the in-flight and waiting counts, redeliveries and dead letters
// (what `groups describe` shows).
//
// # Record format (version 1; never change a wire constant)
//
//	frame:     len u32 LE | crc32c u32 LE | version u8 = 1 | kind u8 | body
//	           (len and crc cover version, kind and body)
//	snapshot   (kind 1): floor uv | n uv | n bytes: roaring portable
//	           bitmap of offset-floor of the done offsets |
//	           entries uv | entries × (offset-previous uv (first: -floor),
//	           deliveries uv, flags u8 (1: dead), [dead: len uv | last error])
//	acquired   (kind 2): runs uv | runs × (start-previous start sv,
//	           length uv, deliveries uv)
//	done       (kind 3): runs uv | runs × (start-previous start sv, length uv)
//	dead letter (kind 4): offset uv | deliveries uv | len uv | last error
//
// uv is an unsigned varint, sv a signed (zig-zag) varint. Deltas commute
// (counts merge by maximum, done is final); a Ready writes its done runs
// first all the same, so that on replay every offset lies below the
// floor + 2^30 (Restore refuses others: a damaged log cannot make it
// allocate without bound). Lock holders, deadlines and nack backoffs are not
// persisted: after a restart every record handed out and not done is
// available again at once, with its delivery count.
package ack
