// Package group is the consumer-group coordinator as a state machine: the
// groups of one coordinator partition, their members, the broker-computed
// incremental assignment of partitions to members (Kafka KIP-848), the
// member epochs that fence stale members, the committed positions, and the
// records that persist all of it. It does no I/O, has no goroutine and no
// clock of its own (the replica/ and controller/ style): a driver feeds it
// requests, topic metadata and the time, and persists what Ready returns.
//
// # Concurrency
//
// A Coordinator is owned by one goroutine (the reactor that leads the
// coordinator partition) and is not safe for concurrent use.
//
// # Inputs
//
//	Join(now, JoinRequest)            new member (group created on first join)
//	Heartbeat(now, HeartbeatRequest)  liveness; the member's owned partitions (its releases)
//	Leave(group, member)              member stops; its partitions are free at once
//	Tick(now)                         members silent past their session timeout are removed
//	SetTopic / DeleteTopic            topic metadata (partition counts)
//	CanCommit / CanFetch / Commit     fencing of a member's commit or fetch; commits
//	Describe / Groups / Delete / ResetOffsets   administration
//	Stats                             numbers for metrics (per state, never per group)
//
// now is the driver's monotonic time (any fixed origin). NextDeadline says
// when Tick is next due.
//
// # Outputs: Ready, then Advance
//
// Ready returns the records of every key changed since the last Ready,
// each once with its current value (a group commit). The driver appends
// them to the coordinator partition (the internal topic, Kafka's
// __consumer_offsets), waits until they are durable, then sends the
// responses of the requests handled before that Ready, then calls Advance.
// A response is never sent before the records of its change are durable,
// so an acknowledged commit survives a crash. If the append fails, the
// driver drops the Coordinator, answers those requests with an error, and
// rebuilds it with Restore from the log.
//
// # Rules
//
//   - Failover: each topic's partitions are spread evenly over the members
//     subscribed to it (counts differ by at most one). A partition keeps
//     its target member while that member is within its share (sticky):
//     a join moves only the partitions the newcomer needs; a leave or
//     timeout moves only the dead member's.
//   - Exclusive: one member at a time holds every partition of its
//     topics; a second join is ErrExclusiveHeld naming the holder, and
//     succeeds once the holder left or timed out. A non-empty group
//     refuses a join of another type (ErrTypeMismatch); an empty one takes
//     the type of its first member.
//   - Ownership: a partition has at most one owner at any time. It moves
//     to its new target member only when the owner released it (a
//     heartbeat that no longer lists it after it was told to revoke it),
//     left, or timed out. Until then it is Pending for the new member.
//   - Epochs: the group epoch grows with each join and each input that
//     changes any member's owned partitions; the member epoch is the group
//     epoch at which its owned set last changed, and each owned partition
//     remembers the epoch it was granted at (since). A commit or fetch
//     from member m at epoch e for partition p is allowed only if m owns p
//     now and since(p) ≤ e ≤ epoch(m): a member that lost p, a request
//     from before it got p back, or a removed member (ErrUnknownMember) is
//     refused with ErrFenced, so a commit can never go backwards through a
//     stale member.
//   - Member ids are unique for good: JoinRequest.MemberID is the
//     client's (a UUID) or one the driver draws at random. Without one the
//     coordinator generates client-id#epoch, unique only while the group
//     exists: a group deleted and created again starts its epochs over.
//   - A commit without a member id (manual assignment) is allowed only
//     while the group has no members; the driver checks that its
//     partition exists (the coordinator knows only the topics it is fed).
//   - Delete and ResetOffsets are refused while the group has members
//     (ErrGroupActive); ResetOffsets takes offsets the driver resolved
//     (ResetSpec.Resolve over each partition's bounds) and with dryRun
//     only returns the plan.
//   - Bounds: Config.MaxGroups, MaxMembers, MaxTopicsPerMember, session
//     timeouts within [MinSessionTimeout, MaxSessionTimeout], client id,
//     address and metadata lengths.
//
// # Record format
//
// Each record is the latest value of one key, or its deletion (tombstone).
// Little-endian; persisted: never change.
//
//	offset size field
//	     0    4 length    bytes after the crc field (>= 3)
//	     4    4 crc32c    Castagnoli over those length bytes
//	     8    1 version   recordVersion = 1
//	     9    1 kind      1 group, 2 member, 3 commit, 4 ack
//	    10    1 flags     bit 0: tombstone (no value fields)
//	    11    … key, then value: uvarints; strings as uvarint length + bytes
//
//	kind    key                          value
//	group   group                        type (1 byte), group epoch
//	member  group, member id             client id, addr, session timeout ms, member epoch,
//	                                     n × topic, n × (topic, partition, since),
//	                                     n × (topic, partition)   [target]
//	commit  group, topic, partition      offset, metadata
//	ack     group, topic, partition      uvarint length + group/ack frames (snapshot or deltas)
//
// Compact keeps the last record per key (Record.Key), but of an ack key
// every record from its last snapshot on; Restore rebuilds the
// coordinator from the log, and Records returns the state as the records a
// compacted log would hold. Liveness is not persisted: restored members
// get a full session timeout to heartbeat again.
//
// # Shared and key_shared (share.go)
//
// Two more Types and one more record kind. Their members share partitions
// instead of owning them: the owner map and targets stay empty, and every
// member is assigned every partition of its topics (key_shared splits keys
// inside the tracker, not partitions). Per (group, partition) an
// ack.Tracker decides hand-outs and acks:
//
//	ShareAcquire(wall, group, member, epoch, tp, max, logStart, logEnd, src)
//	ShareAcknowledge(wall, group, member, epoch, ShareAck)   accept, accept up to, release, reject
//	ExpireShares(wall) / NextShareDeadline                    lock expiry
//	DeadLettered(group, tp, offset)                           a dead letter is appended
//	ShareStats / ShareStart / ShareFloors                     describe; the driver's Meta window
//
// fenced by member id and epoch. A member that leaves or times out
// releases its records at once. Each tracker's Ready frames go out as an
// ack record in the coordinator's Ready (same group commit), its dead
// letters in Ready.DeadLetters; wall is the wall-clock time (delivery
// times and lock deadlines are absolute), distinct from the monotonic now
// of sessions.
package group
