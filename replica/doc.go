// Package replica is the state machine of one partition replica: the
// offsets of the partition (log start, log end, flushed offset, high
// watermark), when a produce part is acknowledged, when a long-poll fetch
// is woken, and when a flush or a checkpoint is due. It does no I/O, has
// no goroutine and no clock of its own (etcd raft's RawNode is the model):
// a driver feeds it inputs and executes the Ready it returns. It also
// keeps the partition's idempotent-producer state (ProducerState), which
// decides whether a producer's batch is new, a retry, or refused.
//
// # Concurrency
//
// A Replica is owned by one goroutine (the reactor that owns the
// partition) and is not safe for concurrent use.
//
// # Offsets and their invariant
//
//	LogStart                HW                Flushed               LogEnd         next
//	    │ readable: on every │ fdatasync'd here, │ written here, not   │ writes in   │
//	    │ in-sync replica    │ not yet on every  │ yet fdatasync'd     │ flight      │
//	────┼────────────────────┼───────────────────┼─────────────────────┼─────────────┼──
//
//	LogStart ≤ HighWatermark ≤ local match ≤ LogEnd,   LogStart ≤ Flushed ≤ LogEnd
//
// (flush=sync shown; with flush=interval the HW follows LogEnd and may
// pass Flushed.) The local match offset
// is Flushed for flush=sync topics (Config.Sync) and LogEnd otherwise.
// Each follower has a match offset too (FollowerMatch), and the HW is the
// minimum of the match offsets of the in-sync replicas, held while they
// are fewer than Config.MinInsync. On one node that makes the HW the
// flushed offset (flush=sync: a consumer never sees what a power cut can
// take back) or the log end (flush=interval). The HW only moves forward
// (Reset aside). check enforces the invariant after every input and
// panics with "BUG:" when it breaks; with -tags invariants it also walks
// the queues.
//
// # Inputs
//
//	CheckAppend(level)      before storage.PrepareAppend: fenced? enough in-sync replicas?
//	AppendPlanned(Append)   after PrepareAppend: offsets, bytes, ack level, token
//	AppendCompleted(base)   the write completed (any order; the log end advances
//	                        over the contiguous completed prefix)
//	AppendFailed(base, err) the write failed: fence
//	FlushCompleted(upTo)    the flush from Ready completed (upTo = FlushOp.UpTo)
//	FlushFailed(err)        it failed, or storage refused to plan it: fence
//	Tick(now)               the driver's clock: deadlines, interval flush, checkpoint
//	Wait(Wait)/CancelWait   long-poll registrations
//	LogStartMoved(start)    retention moved the log start
//	SetISR, FollowerMatch   follower progress (replication)
//	Reset(Offsets)          clear a fence after the driver reopened the log
//	CheckProducer(batch)    after CheckAppend: new, a duplicate, or refused
//	AckDuplicate(...)       answer a duplicate (through Ready) instead of planning
//	ExpireProducers(now)    the driver's producer-expiry timer
//	Producers()             the producer state: Restore and Replay at recovery,
//	                        Snapshot beside each checkpoint
//
// Replication inputs (replication.go, leader.go, follower.go):
//
//	SetEpochs(entries)      the leader-epoch cache storage rebuilt at open
//	BecomeLeader(state)     the controller made this replica leader (epoch, partition
//	                        epoch, ISR); BecomeFollower(epoch, leader): a follower
//	FollowerFetch(req)      leader: a follower's fetch → FetchAnswer (read [Offset,
//	                        UpTo), or Diverging: where the follower's log diverges)
//	ISRChanged(pe, isr)     leader: the ISR the controller committed; ISRChangeRefused(pe)
//	Fetched(answer)         follower: the leader's answer; FetchFailed: none came
//	TruncateCompleted(off)  follower: storage cut the log as Ready.Truncate asked
//
// A replica starts as the leader in epoch 0 (one node: nothing changes).
// A follower asks for one fetch at a time, only with nothing in flight; a
// divergence becomes a truncation (never to the HW: to where its epoch
// ended on the leader, KIP-101/279/320), batches a replicated append that
// keeps the leader's offsets and epochs. The leader counts each
// follower's match offset (its fetch offset, or its flushed offset on
// flush=sync topics) over the ISR plus a follower being added, and
// proposes ISR shrink (not caught up for ReplicaLagTime) and expand
// (caught up to the HW and its epoch's start), fenced by partition epoch.
//
// # Outputs: Ready, then Advance
//
// Ready returns Acks to send (a Token and Level per produce part, with an
// error when it failed), Wakes (a Token and WakeReason per waiter), at
// most one flush to start (with its FlushUpTo), a checkpoint to write and
// the offsets to publish; for replication, the new role and epoch
// (EpochChanged: a leader stamps LeaderEpoch into its batches), a
// truncation (Truncate), a replicated append (Replicate), a fetch to send
// (SendFetch) and an ISR change to propose (ProposeISR). The driver does
// all of it and calls Advance.
//
// # Acks by level
//
//   - AckNone (acks=0): released when the write completes; no response.
//   - AckLeader (acks=1): released when the append is visible (the log end
//     passed it); never waits for a flush.
//   - AckAll (acks=all): released when the HW passed its last offset.
//
// An Ack is never released before the append's write completion was
// reported, so the driver may free the part's buffer when it answers.
//
// # Fencing
//
// A failed write or flush fences the replica: every Ack not yet released
// is released with an error wrapping ErrFenced (each once its write
// completion is in), appends at or after the failed one (all in-flight
// ones, for a flush) never become visible, CheckAppend refuses new ones,
// waiters are woken with WakeFenced and new ones refused, until Reset.
//
// # Idempotent producers
//
// For each producer id the replica remembers its epoch and its last
// ProducerBatches (5) batches: sequence range, offsets, max timestamp.
// CheckProducer compares an incoming batch with the producer's newest
// batch, in flight or visible: the next sequence of the same epoch (or 0
// of a newer epoch, or 0 of a producer it does not know) is new; a retry
// of a remembered batch is a Duplicate with the original offsets, which
// the driver answers with AckDuplicate and does not write; a retry of a
// batch still being written is ErrDuplicateInFlight (retriable: the retry
// after the write completed is a Duplicate, or, if it failed, new);
// anything else is ErrOutOfOrderSequence, ErrProducerFenced (older epoch)
// or ErrUnknownProducer. A batch joins the state when its append becomes
// visible (the log end passes it) and is forgotten if it never does (a
// fence), so the state is always the one the log's batches imply. Replay
// applies batch headers read from the log (recovery) or replicated from a
// leader, unchecked; Snapshot and Restore, with AppendProducerSnapshot and
// ParseProducerSnapshot (CRC-framed, versioned; layout in
// producer_snapshot.go), bound recovery to the log after the snapshot.
// An idempotent batch is the only batch of its produce part.
//
// # Waiters
//
// A registration is woken exactly once (WakeData when MinBytes more bytes
// are readable at its offset below the HW, WakeDeadline, WakeOutOfRange
// when retention passes it, WakeFenced, WakeReset) or cancelled; Wait
// refuses, with the answer, a registration that could not be served by
// waiting (an offset outside the log, a fenced replica, a passed
// deadline). WakeData needs the HW to have moved, so a driver that
// registers again after every wake cannot spin.
//
// # How the reactor drives it
//
// Per partition, on its owner reactor:
//
//	produce part:   err := rep.CheckAppend(Level(acks))
//	                → dup, err := rep.CheckProducer(batch header)  (dup.Found: rep.AckDuplicate, done)
//	                → op := log.PrepareAppend(records)
//	                → rep.AppendPlanned({op.Base, op.Last, len(op.Buf), level, token, batch header})
//	                → ring write(op)
//	write CQE:      log.Appended(op) / log.Failed(op) → rep.AppendCompleted(op.Base) /
//	                rep.AppendFailed(op.Base, err)
//	fsync CQEs:     all of the flush's fds done → log.Flushed(fl) → rep.FlushCompleted(fl.UpTo),
//	                or log.FlushFailed → rep.FlushFailed(err)
//	fetch below min_bytes: rep.Wait({token, offset, HW the read saw, min_bytes - have, deadline}):
//	                WakeNone parks; WakeData reads again; anything else is answered now
//	timer:          rep.Tick(now) for partitions whose NextDeadline passed
//	retention:      log.EnforceRetention → rep.LogStartMoved(log.LogStart())
//	open:           rep.Producers().Restore(snapshot, log end), then Replay of each
//	                batch header from the snapshot's offset (or the log start)
//	expiry timer:   rep.ExpireProducers(now)
//	end of turn:    for each partition touched: if rep.HasReady() { rd := rep.Ready(); ...; rep.Advance() }
//	                  Acks → partResult to the origin (AckNone: finish without a response)
//	                  Wakes → post the wake to the fetch's origin
//	                  Flush → fl, ok := log.PrepareFlush(); fdatasync each fd
//	                          (!ok: rep.FlushFailed — storage is fenced or closed)
//	                  Checkpoint → log.WriteCheckpointAsync(), and the producer
//	                               snapshot (AppendProducerSnapshot) beside it
//	                  OffsetsChanged → publish log start, HW, log end (partShared, metrics)
//
// Fetch reads only below Offsets().HighWatermark and reports it as the
// high watermark. Tokens are the reactor's names: a slot of its ack table
// ({request, origin, topic index, partition index}) for a produce part, a
// slot of its wait table ({origin, request, park generation}) for a fetch.
// A flush-mode change of an altered topic is SetSync.
package replica
