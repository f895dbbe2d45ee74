package replica

import (
	"errors"
	"fmt"
	"time"
)

// Replication: the replica is the partition's leader (the default: one
// node, leader epoch 0) or a follower of another replica. The controller
// decides which, and the driver feeds its decisions in (BecomeLeader,
// BecomeFollower, ISRChanged). Followers pull: a follower's Ready asks for
// a fetch (SendFetch), the leader answers it (FollowerFetch: what to read,
// or where the follower's log diverges), the follower applies the answer
// (Fetched → Replicate or Truncate in a later Ready). The leader tracks
// each follower's match offset, computes the HW over the in-sync replicas
// and proposes ISR changes (ProposeISR) that the controller fences by
// partition epoch. See replication.go's rules in DESIGN.md §17.

// Errors of replication.
var (
	// ErrNotLeader: an append (or a follower fetch) reached a replica
	// that is not the partition's leader; an acks=all Ack waiting when the
	// leader became a follower fails with it too.
	ErrNotLeader = errors.New("replica: not the partition's leader")
	// ErrNotFollower: a follower input (Fetched, TruncateCompleted) on a
	// replica that is not a follower.
	ErrNotFollower = errors.New("replica: not a follower")
	// ErrFencedEpoch: the request's leader epoch is older than ours
	// (Kafka's FENCED_LEADER_EPOCH).
	ErrFencedEpoch = errors.New("replica: leader epoch fenced")
	// ErrUnknownEpoch: the request's leader epoch is newer than ours: we
	// have not heard of it yet (Kafka's UNKNOWN_LEADER_EPOCH); retriable.
	ErrUnknownEpoch = errors.New("replica: leader epoch not known yet")
	// ErrStaleEpoch: a BecomeLeader/BecomeFollower with an older epoch than
	// the replica's.
	ErrStaleEpoch = errors.New("replica: leader epoch older than the current one")
	// ErrFetchOutOfRange: a follower fetch below the leader's log start.
	ErrFetchOutOfRange = errors.New("replica: follower fetch offset out of range")
	// ErrStaleFetch: a fetch answer for another epoch or leader, or one
	// whose batches do not start at the log end: ignored.
	ErrStaleFetch = errors.New("replica: stale fetch answer")
	// ErrBadEpochs: an epoch cache that is not growing.
	ErrBadEpochs = errors.New("replica: leader epochs out of order")
)

// DefaultReplicaLagTime is Config.ReplicaLagTime when zero (Kafka's
// replica.lag.time.max.ms).
const DefaultReplicaLagTime = 30 * time.Second

// Role is the replica's part in replication.
type Role uint8

const (
	RoleLeader   Role = iota // accepts appends, answers follower fetches
	RoleFollower             // fetches from the leader, appends its batches
)

func (r Role) String() string {
	if r == RoleFollower {
		return "follower"
	}
	return "leader"
}

// LeaderState is what the controller decided for a replica that leads.
type LeaderState struct {
	Epoch          int32 // the leader epoch (grows with every change of leader)
	PartitionEpoch int32 // fences ISR changes (grows with every leader or ISR change)
	ISR            []ID  // in-sync replicas (the local one included or not)
}

// FetchRequest is a follower's fetch: what the follower sends the leader
// (Ready.Fetch) and what the leader's driver passes to FollowerFetch.
type FetchRequest struct {
	Replica     ID    // the follower
	LeaderEpoch int32 // the epoch the follower follows
	Offset      uint64
	// Flushed: the follower has fdatasync'd every offset below it (its
	// match on flush=sync topics).
	Flushed uint64
	// LastEpoch: the epoch of the follower's batch before Offset (NoEpoch
	// for an empty log). The leader checks it against its epoch cache.
	LastEpoch int32
}

// FetchAnswer is the leader's answer to a FetchRequest.
type FetchAnswer struct {
	// Err: ErrNotLeader, ErrFencedEpoch, ErrUnknownEpoch or
	// ErrFetchOutOfRange; nothing else is set.
	Err error
	// Diverging: the follower's log does not match ours at Offset; it
	// must truncate (KIP-320): our epoch at or below its LastEpoch is
	// DivergingEpoch and ends at DivergingEnd. Nothing is to be read.
	Diverging      bool
	DivergingEpoch int32
	DivergingEnd   uint64
	// Read the batches of [Offset, UpTo) (UpTo is the visible log end;
	// empty when equal) and send them with HighWatermark and LeaderEpoch.
	Offset, UpTo  uint64
	HighWatermark uint64
	LogStart      uint64
	LeaderEpoch   int32
}

// Batch is one fetched batch's header, as the follower's driver decoded
// it from the leader's answer.
type Batch struct {
	Base, Last uint64
	Epoch      int32 // partition_leader_epoch
	Bytes      int
	// Producer is the batch's producer fields (ProducerID -1 when it has
	// none): the follower keeps producer state from them (§12.1), so that
	// as a leader it recognises a retry of a batch its predecessor stored.
	Producer ProducerBatch
}

// Fetched is the leader's answer as it reached the follower.
type Fetched struct {
	// Token is the driver's name for the answer's bytes; the replicated
	// append of its batches carries it (Ready.Replicate), and its AckNone
	// Ack (at the write completion) says the bytes may be freed.
	Token       Token
	LeaderEpoch int32
	// Err is the leader's refusal (ErrFencedEpoch, ErrUnknownEpoch,
	// ErrNotLeader, ...): nothing else is used; the next fetch is asked
	// for (the driver backs off).
	Err            error
	Diverging      bool
	DivergingEpoch int32
	DivergingEnd   uint64
	HighWatermark  uint64
	Batches        []Batch
}

// Replicate is a follower's append of fetched batches keeping the leader's
// offsets and epochs (storage's AppendReplicated of the first Batches
// batches of the answer Token): planned from the Ready that returns it,
// completed by AppendCompleted(Base) / AppendFailed(Base, err); its Ack
// (AckNone, Token) comes at the write completion.
type Replicate struct {
	Token      Token
	Base, Last uint64
	Batches    int
	Bytes      int
}

// ISROp is a proposed ISR change.
type ISROp uint8

const (
	ISRShrink ISROp = iota + 1 // Replica lags: remove it
	ISRExpand                  // Replica caught up: add it
)

func (o ISROp) String() string {
	if o == ISRExpand {
		return "expand"
	}
	return "shrink"
}

// ISRChange is a leader's proposal to the controller: the new ISR, fenced
// by the partition epoch the leader saw (a stale one is refused).
type ISRChange struct {
	Op             ISROp
	Replica        ID
	LeaderEpoch    int32
	PartitionEpoch int32
	ISR            []ID // the whole proposed ISR, the leader first
}

// repl is the replication state of a Replica.
type repl struct {
	role           Role
	epoch          int32 // leader epoch the replica leads or follows in
	partitionEpoch int32 // leader: the partition epoch of its ISR
	leader         ID    // follower: whom it follows
	epochs         Epochs
	epochChanged   bool
	decided        bool // a BecomeLeader or BecomeFollower came (not the default role)

	// leader side
	isrBuf    []ID
	proposal  ISRChange
	proposing bool // a proposal exists (handed out or not) until answered
	proposed  bool // Ready handed it out
	lagTime   time.Duration

	// follower side
	leaderHW   uint64
	fetching   bool // a fetch is out (Ready.SendFetch handed out)
	replicate  Replicate
	haveRepl   bool
	truncateTo uint64
	truncate   bool // a truncation is due
	truncating bool // Ready handed it out
}

// Role returns the replica's role and the leader epoch it leads or
// follows in.
func (r *Replica) Role() (Role, int32) { return r.rp.role, r.rp.epoch }

// Leader is the replica a follower follows (its own ID when leading).
func (r *Replica) Leader() ID {
	if r.rp.role == RoleLeader {
		return r.cfg.ID
	}
	return r.rp.leader
}

// Epochs is the replica's leader-epoch cache.
func (r *Replica) Epochs() *Epochs { return &r.rp.epochs }

// SetEpochs sets the epoch cache (storage's, at open). Entries past the
// log end are dropped.
func (r *Replica) SetEpochs(entries []EpochEntry) error {
	c, err := NewEpochs(entries)
	if err != nil {
		return err
	}
	c.TruncateFrom(r.off.LogEnd)
	r.rp.epochs = c
	return nil
}

// lastEpoch is the epoch of the batch before the log end.
func (r *Replica) lastEpoch() int32 {
	if r.off.LogEnd == 0 {
		return NoEpoch
	}
	return r.rp.epochs.EpochAt(r.off.LogEnd - 1)
}

// BecomeLeader makes the replica the leader in s.Epoch (a new epoch, or
// the current one with a new ISR). The leader's epoch starts at the next
// offset; follower progress is forgotten (every follower must fetch again
// before it counts toward the HW) and each follower in the ISR gets a full
// ReplicaLagTime from now. The HW does not move back.
func (r *Replica) BecomeLeader(s LeaderState) error {
	if s.Epoch < r.rp.epoch || (s.Epoch == r.rp.epoch && r.rp.decided && r.rp.role == RoleFollower) {
		return fmt.Errorf("%w: become leader in epoch %d, replica is %v in epoch %d", ErrStaleEpoch, s.Epoch, r.rp.role, r.rp.epoch)
	}
	if s.Epoch == r.rp.epoch && r.rp.decided && r.rp.role == RoleLeader {
		// the same leadership again (a metadata refresh): only the ISR
		return r.ISRChanged(s.PartitionEpoch, s.ISR)
	}
	if err := r.rp.epochs.Assign(s.Epoch, r.next); err != nil {
		return err
	}
	if s.Epoch != r.rp.epoch || r.rp.role != RoleLeader {
		r.rp.epochChanged = true
	}
	r.rp.role, r.rp.epoch, r.rp.partitionEpoch, r.rp.decided = RoleLeader, s.Epoch, s.PartitionEpoch, true
	r.rp.fetching, r.rp.haveRepl, r.rp.truncate, r.rp.truncating = false, false, false, false
	r.rp.proposing, r.rp.proposed = false, false
	for i := range r.followers {
		f := &r.followers[i]
		*f = progress{id: f.id, lastCaughtUp: r.now}
	}
	r.setISR(s.ISR)
	return nil
}

// BecomeFollower makes the replica a follower of leader in epoch (newer
// than the current one, or the current one when it already follows).
// acks=all Acks waiting for the HW fail with ErrNotLeader (the new leader
// may not have those appends), appends in flight complete as they will,
// and the next Ready asks for a fetch.
func (r *Replica) BecomeFollower(epoch int32, leader ID) error {
	if epoch < r.rp.epoch || (epoch == r.rp.epoch && r.rp.decided && (r.rp.role == RoleLeader || leader != r.rp.leader)) {
		return fmt.Errorf("%w: become follower in epoch %d, replica is %v in epoch %d", ErrStaleEpoch, epoch, r.rp.role, r.rp.epoch)
	}
	if leader == r.cfg.ID {
		return fmt.Errorf("%w: replica %d cannot follow itself", ErrBadConfig, leader)
	}
	if epoch != r.rp.epoch || r.rp.role != RoleFollower || leader != r.rp.leader {
		r.rp.epochChanged = true
		r.rp.fetching, r.rp.haveRepl = false, false
	}
	wasLeader := r.rp.role == RoleLeader
	r.rp.role, r.rp.epoch, r.rp.leader, r.rp.decided = RoleFollower, epoch, leader, true
	r.rp.proposing, r.rp.proposed = false, false
	if wasLeader {
		// an epoch this replica led without writing anything is no part
		// of its log: the new leader's batches of an older epoch may follow
		r.rp.epochs.TruncateFrom(r.next)
		for i := 0; i < r.aboveHW.len(); i++ {
			if v := r.aboveHW.at(i); v.waiting {
				v.waiting = false
				r.release(v.token, v.level, v.base, v.last, ErrNotLeader)
			}
		}
		r.failDupWaits(ErrNotLeader)
		r.wakeAll(WakeReset)
		for i := range r.followers {
			r.followers[i] = progress{id: r.followers[i].id}
		}
		r.rp.leaderHW = r.off.HighWatermark
	}
	r.check()
	return nil
}
