package reactor

import (
	"errors"
	"time"

	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/replica"
)

// The leader's side of replication: a follower broker's ReplicaFetch runs
// through the fetch path (fetch.go: the origin gathers every partition,
// owners read theirs, cold data through the ring, the same budgets and
// bounds) with three differences. Each partition's owner first asks the
// replica (replica.FollowerFetch), which checks the follower's epoch and
// log against its own, records its progress (the HW may move) and says
// what to read: [Offset, log end), not only below the HW, or nothing when
// the follower's log diverges. A fetch that finds nothing parks on the
// partition (not on the replica's HW waiters: a follower waits for the
// log end, which the HW follows only after it) and is woken when the
// partition's log end moves: a follower learns a new HW with its next
// answer (at the latest after max wait), as Kafka's do. The answer carries
// the epoch, HW, log start and the divergence per partition.

// replicaPart is what a partition's owner decided for one partition of a
// replica fetch: written by the owner before it reports the part done,
// read by the origin after.
type replicaPart struct {
	epoch     int32
	diverging bool
	divEpoch  int32
	divEnd    uint64
}

// handleReplicaFetch decodes a follower's fetch into the fetch path's
// request (one part per partition, the response's byte budget for each).
func (r *Reactor) handleReplicaFetch(q *request, body []byte) {
	fs := &q.fetch
	rq := &fs.rreq
	if err := rq.Decode(body); err != nil {
		r.respondError(q, proto.InvalidRequest)
		return
	}
	fs.replica = true
	fs.req.MaxWaitMs, fs.req.MinBytes, fs.req.MaxBytes = rq.MaxWaitMs, 1, rq.MaxBytes
	fs.req.Topics = growTo(fs.req.Topics, len(rq.Topics))
	fs.parts = fs.parts[:0]
	for ti := range rq.Topics {
		t, ft := &rq.Topics[ti], &fs.req.Topics[ti]
		ft.Name = t.Name
		ft.Partitions = growTo(ft.Partitions, len(t.Partitions))
		for pi, p := range t.Partitions {
			ft.Partitions[pi] = proto.FetchPartition{Partition: p.Partition, Offset: p.FetchOffset, PartitionMaxBytes: rq.MaxBytes}
			fs.parts = append(fs.parts, fetchPart{ti: int32(ti), pi: int32(pi), owner: -1})
		}
	}
	fs.rparts = growTo(fs.rparts, len(fs.parts))
	if fs.hasDuplicates() {
		r.respondError(q, proto.InvalidRequest)
		return
	}
	cfg := &r.srv.cfg.Server
	fs.maxBytes = int(min(int64(fs.req.MaxBytes), cfg.FetchMaxBytes))
	fs.final = fs.req.MaxWaitMs == 0
	fs.deadline = r.now.Add(min(time.Duration(fs.req.MaxWaitMs)*time.Millisecond, cfg.FetchMaxWait))
	r.gatherFetch(q)
}

// growTo returns s with length n, reusing its array when large enough.
func growTo[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}

// partRangeOf is partRange for part idx of q: a replica fetch asks the
// replica first.
func (r *Reactor) partRangeOf(q *request, idx int) (*partition, proto.ErrorCode, replica.Offsets, int) {
	t, p := r.fetchReq(q, idx)
	if !q.fetch.replica {
		return r.partRange(t, p, q.fetch.maxBytes)
	}
	return r.followerRange(q, idx, t, p)
}

// followerRange runs on the partition's owner: the replica checks the
// follower's fetch and records its progress; the range to read is from
// the follower's log end to ours (never past it: Read stops there).
func (r *Reactor) followerRange(q *request, idx int, t *proto.FetchTopic, p *proto.FetchPartition) (
	part *partition, code proto.ErrorCode, o replica.Offsets, limit int) {
	fs := &q.fetch
	fp := &fs.parts[idx]
	rp := &fs.rreq.Topics[fp.ti].Partitions[fp.pi]
	rs := &fs.rparts[idx]
	*rs = replicaPart{}
	part = r.partition(t.Name, p.Partition)
	if part == nil {
		return nil, proto.UnknownPartition, o, 0
	}
	a := part.rep.FollowerFetch(replica.FetchRequest{Replica: replica.ID(fs.rreq.ReplicaID), LeaderEpoch: rp.LeaderEpoch,
		Offset: rp.FetchOffset, Flushed: rp.Flushed, LastEpoch: rp.LastEpoch})
	r.touch(part) // the HW may have moved
	o = part.rep.Offsets()
	if a.Err != nil {
		return part, followerFetchCode(a.Err), o, 0
	}
	rs.epoch = a.LeaderEpoch
	o.HighWatermark, o.LogStart = a.HighWatermark, a.LogStart
	if a.Diverging {
		rs.diverging, rs.divEpoch, rs.divEnd = true, a.DivergingEpoch, a.DivergingEnd
		return part, proto.None, o, 0
	}
	if a.UpTo <= a.Offset {
		return part, proto.None, o, 0
	}
	return part, proto.None, o, fs.maxBytes
}

// followerFetchCode maps FollowerFetch's refusals to wire codes.
func followerFetchCode(err error) proto.ErrorCode {
	switch {
	case errors.Is(err, replica.ErrNotLeader):
		return proto.NotLeader
	case errors.Is(err, replica.ErrFencedEpoch):
		return proto.FencedLeaderEpoch
	case errors.Is(err, replica.ErrUnknownEpoch):
		return proto.UnknownLeaderEpoch
	case errors.Is(err, replica.ErrFetchOutOfRange):
		return proto.OffsetOutOfRange
	}
	return proto.InvalidRequest
}

// replicaAnswerNow reports whether a part of a replica fetch must be
// answered without waiting (a divergence).
func (fs *fetchState) replicaAnswerNow() bool {
	if !fs.replica {
		return false
	}
	for i := range fs.parts {
		if fs.rparts[i].diverging {
			return true
		}
	}
	return false
}

// followerWait is a parked replica fetch registered with a partition it
// reads: woken by the next change of the partition's offsets.
type followerWait struct {
	waiter
	deadline time.Time
}

// watchFollower runs on the partition's owner: it parks the follower's
// fetch on the partition, or wakes it now when the log already passed its
// offset.
func (r *Reactor) watchFollower(m *message) {
	var part *partition
	if ps := r.parts[m.topic.name]; int(m.idx) < len(ps) {
		part = ps[m.idx]
	}
	w := waiter{origin: m.origin, req: m.req, gen: m.gen}
	switch {
	case part == nil:
		r.notify(w, true)
		return
	case part.topic != m.topic:
		r.notify(w, false)
		return
	}
	if o := part.rep.Offsets(); o.LogEnd > m.base {
		r.notify(w, false)
		return
	}
	keep := part.followers[:0]
	for _, fw := range part.followers {
		if fw.deadline.After(r.now) {
			keep = append(keep, fw)
		}
	}
	clear(part.followers[len(keep):])
	part.followers = append(keep, followerWait{waiter: w, deadline: m.at})
}

// wakeFollowers wakes every replica fetch parked on p (its log end moved,
// its role changed, or it is gone: final).
func (r *Reactor) wakeFollowers(p *partition, final bool) {
	for _, fw := range p.followers {
		r.notify(fw.waiter, final)
	}
	clear(p.followers)
	p.followers = p.followers[:0]
}

// sendReplicaFetch queues a replica fetch's response: header bytes
// interleaved with the records slices, as sendFetch does.
func (r *Reactor) sendReplicaFetch(q *request) {
	fs := &q.fetch
	fs.trim()
	var size proto.ReplicaFetchResponseSize
	pi := 0
	for ti := range fs.req.Topics {
		size.AddTopic(fs.req.Topics[ti].Name)
		for range fs.req.Topics[ti].Partitions {
			size.AddPartition(fs.parts[pi].size)
			pi++
		}
	}
	hdr := r.pool.get(size.FrameLen() - fs.bytes)[:0]
	hdr = proto.AppendResponseHeader(hdr, proto.ResponseHeader{CorrelationID: q.hdr.CorrelationID}, size.BodyLen())
	hdr = proto.AppendFetchResponseStart(hdr, len(fs.req.Topics))
	out := fs.out[:0]
	mark, pi := 0, 0
	for ti := range fs.req.Topics {
		t := &fs.req.Topics[ti]
		hdr = proto.AppendFetchResponseTopicHeader(hdr, t.Name, len(t.Partitions))
		for range t.Partitions {
			fp, rs := &fs.parts[pi], &fs.rparts[pi]
			pi++
			ph := proto.ReplicaFetchPartitionHeader{Partition: t.Partitions[fp.pi].Partition, Error: fp.code,
				LeaderEpoch: rs.epoch, HighWatermark: fp.hw, LogStart: fp.logStart, Diverging: rs.diverging,
				DivergingEpoch: rs.divEpoch, DivergingEnd: rs.divEnd, RecordsLen: uint32(fp.size)}
			hdr = proto.AppendReplicaFetchPartitionHeader(hdr, &ph)
			r.srv.metrics.requestError(proto.APIReplicaFetch, fp.code)
			if fp.size == 0 {
				continue
			}
			out = append(out, hdr[mark:])
			mark = len(hdr)
			left := fp.size
			fs.eachSlice(fp, func(b []byte) {
				if left > 0 {
					b = b[:min(len(b), left)]
					left -= len(b)
					out = append(out, b)
				}
			})
		}
	}
	if mark < len(hdr) {
		out = append(out, hdr[mark:])
	}
	fs.out = out
	r.respondFrame(q, outFrame{parts: out, buf: hdr})
}
