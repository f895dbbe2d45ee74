// Package storage owns ringmq's partition logs on disk: segmented logs of
// record batches (the proto batch format, byte for byte), their sparse
// indexes, flushing and recovery points, retention and archival, and the
// data directory's lock and clean-shutdown marker. A Store is the data
// directory and hands out one Log per partition; a Log plans its I/O and
// accepts completions, so the same code runs on the server's io_uring
// driver and on SyncDriver (tests, fuzzing, crash tests, tools).
//
// # Concurrency
//
// A Log is owned by one goroutine (the reactor that owns the partition)
// and is not safe for concurrent use. Safe from any goroutine: Store
// methods (a mutex; the data directory lock is an flock), View.Release
// (an atomic reference count; the last release unmaps), and the Store's
// background goroutines, two per Store: the worker (seals, checkpoints,
// index extension, retention's unlinks, archive copies, resumes) and the
// roll lane (each log's next segment and the renames of rolled ones;
// roll.go). They talk to a Log only through atomics (the prepared segments)
// and mutex-guarded lists the owner drains without I/O (ApplyBackground,
// PrepareFlush, PrepareAppend, EnforceRetention); a log's notify function
// (SetNotify) tells the owner when it waits for one. Close waits for a
// log's jobs.
//
// # File system
//
// Every file operation goes through the Store's vfs.FS (StoreOptions.FS;
// nil is vfs.OS, the kernel's calls unchanged). The seam speaks
// descriptors, because drivers write and fdatasync segments through them
// (AppendOp.Fd, FlushOp.Fds); mappings are the FS's Mmap. Crash tests run
// a Store and its metalog on a vfs.Mem, which loses or tears at a crash
// everything not made durable (powercut_test.go).
//
// # On-disk layout
//
//	<data>/
//	  .lock                          flock'd by the running Store
//	  .clean-shutdown                written by a clean Close, removed at open
//	  meta/                          storage/metalog (not this package)
//	  topics/<topic>/<partition>/
//	    00000000000000000000.log        record batches back to back (below)
//	    00000000000000000000.index      sparse offset index
//	    00000000000000000000.timeindex  sparse time index
//	    00000000000000004711.log        next segment: named by base offset
//	    ...                             (20 digits, zero-padded)
//	    recovery-point                  checkpoint (checkpoint.go)
//	    leader-epoch-checkpoint         leader epoch → first offset (epoch.go)
//	    .next-<n>.log|.index|.timeindex preallocated next segment
//	    .next-spare-<n>.*               a second one (small segments)
//	    *.deleted                       being unlinked by the worker
//	<archive>/topics/<topic>/<partition>/   same names, archived segments
//
// A .log file is batches (the proto record batch, base_offset patched by
// the log) back to back. The active segment's files are preallocated:
// the .log to SegmentBytes (zero-filled in the background when
// LogConfig.Preallocate, its blocks allocated before its first append when
// LogConfig.AllocateNext), the indexes to the entries it can need (sparse,
// their blocks allocated indexChunk at a time ahead of use). Its data
// therefore ends where the batches stop parsing, not at the file size. A
// sealed segment's files are cut to their used size once a flush made its
// data durable (so either size may survive a power cut: recovery reads
// an uncut sealed segment like the active one).
//
//	.log   ┌──────────────┬──────────────┬─────┬──────────────┬─ zeros ─┐
//	       │ batch @base  │ batch        │ ... │ last batch   │ (active)│
//	       └──────────────┴──────────────┴─────┴──────────────┴─────────┘
//	        ▲ pos 0         ▲ pos p (≥ IndexIntervalBytes after the
//	        │               │        previous entry's batch)
//	.index  (rel 0, pos 0)  (rel r, pos p)  ...      u32 | u32, 8 bytes
//	.timeindex (T0, 0) (T1, r1) ...  i64 | u32, 12 bytes: T is the running
//	        max timestamp through the batch at r, which is where it rose.
//
// Index entries are derived data: written (at PrepareAppend) into the
// mmap'd file, visible to lookups when their append becomes visible,
// fsync'd when their segment is sealed (after the flush that covers it), and validated, completed or
// rebuilt from the log at recovery whenever they do not check out. Index blocks are allocated (fallocate)
// one chunk ahead of the entries, by the background worker, so a write
// through the mapping never lands on a hole: on a full disk that would be
// SIGBUS, not ENOSPC. Entries past the allocated blocks (the worker is
// behind, or the disk is full) are dropped: the index is only sparser.
//
// # Descriptors
//
// A segment keeps its .log descriptor (writes, cold reads). Index files
// are used through their mappings with their descriptors closed (opened
// by path to resize them, and kept by a sealed segment until the flush
// that fdatasyncs them); the partition directory is opened (by the roll
// lane) for the flush after a roll only; a prepared next segment is files
// only until the active one is half full, then its .log is opened and all
// three mapped (and a log with small segments keeps a second one mapped,
// roll.go). A new partition costs one descriptor.
//
// # Segment life cycle
//
//	 active ──roll──▶ sealed ──flush──▶ flushed ──ArchiveAfter──▶ archived
//	(appends)  (trimmed once its       (fsync'd, recovery   (moved to ArchiveDir,
//	           writes complete and      point past it)       still readable)
//	           a flush covered it)
//	                                          │                    │
//	                                          └──── retention ─────┴──▶ deleted
//
// A roll happens when an append would not fit in SegmentBytes, or when its
// max timestamp is SegmentMs past the segment's first batch (Kafka's
// rule), or on Roll. A roll makes no system call: the next segment is
// prepared by the roll lane (files created after the previous roll, opened
// and mapped once the active segment is half full) and becomes the active
// one at once; the lane then renames its files into place, and a flush
// that would cover data in it waits for that (FlushWaiting). When it is
// not ready, PrepareAppend returns ErrRollPending, changes nothing and
// counts the wait (Stats.PreallocMisses); the owner retries once notified
// (roll.go). Retention (EnforceRetention, from the owner's
// timer) deletes the oldest flushed or archived segments while the oldest
// is older than RetentionMs or the rest still hold RetentionBytes, never
// the active one; deletion drops the segment from the log at once and
// leaves its files to the worker (rename to *.deleted, unmap, unlink), and
// Views keep deleted data mapped until released.
//
// # Appends, reads, flushes
//
//	PrepareAppend(batches) ─▶ AppendOp{Fd, Pos, Buf, Base, Last}
//	   validate each batch (header, length, CRC32C), patch base_offset in
//	   place, roll if needed, reserve [Pos, Pos+len), plan index entries
//	driver writes Buf at Pos ─▶ Appended(op) | Failed(op, err)
//	   appends become visible in prepare order: LogEnd advances over the
//	   contiguous completed prefix; a failure fences the log (ErrFenced):
//	   later appends never become visible, new ones are refused, reads go on;
//	   so does a roll that cannot create the next segment (a full disk)
//	StartResume(done) ─▶ worker cuts what failed appends left past the
//	   visible end, drops segments rolled for them, reserves room ─▶
//	   FinishResume(result) lifts the fence (resume.go); retried by the
//	   owner until the disk has room again
//	PrepareFlush() ─▶ FlushOp{Fds, UpTo} ─▶ driver fdatasyncs each fd ─▶
//	   Flushed(op) | FlushFailed(op, err); FlushedOffset becomes UpTo
//	WriteCheckpoint() persists the last flush as the recovery point
//	AppendReplicated(batches) is PrepareAppend for a follower: offsets and
//	   leader epochs kept, the first batch must start at the log end
//	TruncateTo(offset) drops everything at or after offset, crash-safe
//	   (replicate.go); SetLeaderEpoch sets the epoch PrepareAppend stamps
//
// Read(off, maxBytes) returns Views of whole batches from the one holding
// off, at least one batch, up to maxBytes: slices of the segment's shared
// read-only mapping, so data written through any path is visible. It reads
// batch headers through the mapping; View.Resident (mincore) and
// View.Fd/Pos let a driver read cold ranges through its own I/O (see also
// ColdView). Appends, reads, flushes and seeks by time do not allocate.
//
// # Recovery
//
// OpenStore takes the lock and notes whether .clean-shutdown was there.
// OpenLog then loads each segment of the partition in order (archive
// first):
//
//	segments:   [ s0 ][ s1 ][ s2 ...... rp ......][ s3 ][ s4 (active) ]
//	             └── trusted ──────────┘ └── verified ──────────────────┘
//	                                      recovery point (checkpoint)
//
//	  0. Segments written in record batch version 1 are first rewritten
//	     to version 2, crash-safe, dropping the checkpoint and their
//	     indexes (convert.go); recovery then sees only version 2.
//	  1. Before the recovery point (the checkpoint's segment and position):
//	     trusted. Indexes are validated (well-formed prefix, last entry
//	     pointing at the right batch) and completed by walking batch
//	     headers from their last good entry (no CRC): each header must
//	     parse and its base offset must follow on; each segment must start
//	     where the previous one ended. Headers before the last good entry
//	     are not walked (that would read the whole log); a Read that finds
//	     one bad records it like damage found at open.
//	  2. From the recovery point on, after an unclean stop (no marker or
//	     a checkpoint not written by a clean close): every batch's magic,
//	     length, CRC and offset continuity are checked and indexed. In a
//	     segment whose writes may not all have completed (the last one
//	     holding data, or one never sealed: still at SegmentBytes, its
//	     batches not reaching its end) the log ends at the first failure (a
//	     torn tail), later segments (empty or never sealed) are deleted, and
//	     everything after the end of the last segment's data is cut off
//	     (truncate and re-extend, leaving holes), so stale bytes can never
//	     line up as batches after later appends. After a power cut any
//	     segment past the recovery point may be torn (the disk keeps
//	     unsynced writes and trims in any order): a failure there followed
//	     by a whole zero sector (a lost write; segment files are new files),
//	     or offsets missing after such a segment, ends the log the same way
//	     (not when the store's clean-shutdown marker was there: a clean
//	     stop synced everything).
//	     A clean stop skips this:
//	     the checkpoint's position is the log end.
//	  3. Any other failure is damage (damage.go): recorded as a
//	     Corruption (file, byte range, offsets), logged at ERROR, and
//	     served around: the walk or scan goes on at the next valid batch
//	     (with an index entry there), a Read of the damaged offsets is
//	     ErrCorrupt, and nothing before or after it is deleted. Only
//	     structural contradictions (a checkpoint past its segment's end,
//	     overlapping segments) still fail the open with ErrCorrupt.
//	  4. The verified part is fsync'd and a new checkpoint written, so a
//	     second crash does not verify it again.
//
// Bytes past a segment file's first hole are never read at recovery: on
// tmpfs, reading a hole through a mapping allocates a page, and on a full
// disk that is SIGBUS.
//
// Only the tail past the recovery point is verified (Stats.
// RecoveryScannedBytes), so recovery time is bounded by the unflushed
// data, not the log size. Batches are the unit of recovery: an append of
// several batches may come back as a prefix of them after a crash (none
// was acknowledged).
package storage
