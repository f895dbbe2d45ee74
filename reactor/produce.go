package reactor

import (
	"errors"

	"github.com/ringmq/ringmq/acl"
	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/replica"
	"github.com/ringmq/ringmq/stats"
	"github.com/ringmq/ringmq/storage"
	"golang.org/x/sys/unix"
)

// Produce path: the origin reactor decodes the request, answers unknown
// topics and partitions itself, and hands every other partition to its
// owner (itself or another reactor through the mailbox). The owner asks
// the partition's replica whether the append may be planned, plans it with
// storage, hands it to the replica with the ack level and a token, and
// writes through its ring; the replica releases the ack (drive.go) when
// its level is met: acks=0 and acks=1 when the records are visible,
// acks=all when the high watermark passes them. An idempotent batch is
// checked against the partition's producer state first (producer.go): a
// retry of an appended one is answered with its offsets, not written.

func (r *Reactor) handleProduce(q *request, body []byte) {
	req := &q.produce
	if err := req.Decode(body); err != nil {
		r.respondError(q, proto.InvalidRequest)
		return
	}
	if req.Acks != proto.AcksNone && req.Acks != proto.AcksLeader && req.Acks != proto.AcksAll {
		r.respondError(q, proto.InvalidRequiredAcks)
		return
	}
	if r.autoCreate(q, len(req.Topics), func(i int) []byte { return req.Topics[i].Name }) {
		return
	}
	resp := &q.produceResp
	resp.Topics = growSlice(resp.Topics, len(req.Topics))
	tt := r.srv.topics.Load()
	q.pending = 1 // held until every part is dispatched
	for ti := range req.Topics {
		t := &req.Topics[ti]
		rt := &resp.Topics[ti]
		rt.Name = t.Name
		rt.Partitions = growSlice(rt.Partitions, len(t.Partitions))
		info := tt.lookup(t.Name)
		denied := !topicAllowed(r, q.c, acl.OpWrite, t.Name)
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			owner, code := partOwner(info, p.Partition)
			if denied {
				code = proto.TopicAuthorizationFailed
			}
			if code == proto.None && len(p.Records) == 0 {
				code = proto.InvalidRequest // nothing to append: a client bug, not a disk error
			}
			rt.Partitions[pi] = proto.ProducePartitionResponse{Partition: p.Partition, Error: code}
			if code != proto.None {
				continue
			}
			q.pending++
			if owner == r.id {
				r.appendPart(q, r, ti, pi)
			} else {
				r.srv.reactors[owner].mb.post(message{kind: msgProduce, origin: r, req: q, ti: int32(ti), pi: int32(pi)})
			}
		}
	}
	r.produceStep(q)
}

// appendPart runs on the partition's owner.
func (r *Reactor) appendPart(q *request, origin *Reactor, ti, pi int) {
	r.tryAppend(q, origin, ti, pi, false)
}

// tryAppend plans and starts one produce part, answers it with an error,
// or holds it while its partition's next segment is made (rollwait.go).
// retry says the part is the first one held: it returns false, and holds
// nothing, when the segment is still not ready.
func (r *Reactor) tryAppend(q *request, origin *Reactor, ti, pi int, retry bool) bool {
	t := &q.produce.Topics[ti]
	p := &t.Partitions[pi]
	part := r.partition(t.Name, p.Partition)
	if part == nil {
		r.partResult(q, origin, ti, pi, proto.UnknownPartition, 0, 0)
		return true
	}
	if r.stopping {
		r.partResult(q, origin, ti, pi, proto.ServerShuttingDown, 0, 0)
		return true
	}
	if !retry && len(part.held) > 0 {
		r.holdAppend(part, q, origin, ti, pi) // behind the held ones
		return true
	}
	level := levelOf(q.produce.Acks)
	if err := part.rep.CheckAppend(level); err != nil {
		code := replicaErrorCode(err)
		if errors.Is(err, replica.ErrFenced) {
			code = proto.PartitionFenced
		}
		r.partResult(q, origin, ti, pi, code, 0, 0)
		return true
	}
	prod, done := r.checkProducer(q, origin, ti, pi, part, level)
	if done {
		return true
	}
	op, err := part.log.PrepareAppend(p.Records)
	if errors.Is(err, storage.ErrRollPending) {
		if retry {
			return false
		}
		r.holdAppend(part, q, origin, ti, pi)
		return true
	}
	if err != nil {
		r.partResult(q, origin, ti, pi, storageErrorCode(err), 0, 0)
		r.noteFence(part) // the next segment could not be made
		return true
	}
	tok := r.acks.put(ackEntry{req: q, origin: origin, ti: int32(ti), pi: int32(pi), part: part, writing: true})
	part.rep.AppendPlanned(replica.Append{Base: op.Base, Last: op.Last, Bytes: len(op.Buf), Level: level,
		Token: replica.Token(tok), Producer: prod})
	slot, o := r.ops.alloc()
	*o = ioOp{part: part, append: op, ack: tok, wbuf: op.Buf, wpos: op.Pos}
	r.ring.PrepareWrite(op.Fd, op.Buf, uint64(op.Pos), makeUD(udWrite, 0, slot))
	r.srv.metrics.produced(part, int(op.Records()), len(op.Buf))
	return true
}

// partResult reports one produce part to its origin.
func (r *Reactor) partResult(q *request, origin *Reactor, ti, pi int, code proto.ErrorCode, base, end uint64) {
	if origin == r {
		r.producePartDone(q, ti, pi, code, base, end)
		return
	}
	origin.mb.post(message{kind: msgProduceDone, req: q, ti: int32(ti), pi: int32(pi), code: code, base: base, end: end})
}

// producePartDone runs on the origin.
func (r *Reactor) producePartDone(q *request, ti, pi int, code proto.ErrorCode, base, end uint64) {
	res := &q.produceResp.Topics[ti].Partitions[pi]
	res.Error, res.BaseOffset, res.LogEnd = code, base, end
	r.produceStep(q)
}

func (r *Reactor) produceStep(q *request) {
	q.pending--
	if q.pending > 0 {
		return
	}
	if q.produce.Acks == proto.AcksNone {
		// No response carries the errors: count them here.
		r.srv.metrics.responseErrors(proto.APIProduce, proto.None, &q.produceResp)
		r.finishNoResponse(q)
		return
	}
	r.respond(q, proto.None, &q.produceResp)
}

// onWriteDone handles a segment write completion on the owner: storage
// and the replica both learn of it; the replica's Ready (end of the turn)
// says which acks it released.
func (r *Reactor) onWriteDone(o *ioOp, res int32) {
	part := o.part
	if res >= 0 && int(res) < len(o.wbuf) {
		// Short write (rare on regular files): write the rest.
		o.wbuf = o.wbuf[res:]
		o.wpos += int64(res)
		o.resubmit = true
		return
	}
	if !o.replicated {
		r.acks.ents[o.ack].writing = false
	}
	r.touch(part)
	if res < 0 {
		err := errnoErr(res)
		part.log.Failed(o.append, err)
		part.rep.AppendFailed(o.append.Base, err)
		r.srv.log.Error("segment write failed; partition fenced", "topic", part.topic.name, "partition", part.id, "err", err)
		r.noteFence(part)
		return
	}
	// Past a fence (an earlier write failed) the append is never exposed:
	// storage and the replica both say so, and the replica fails its ack.
	if err := part.log.Appended(o.append); err == nil {
		r.addDiskBytes(part, int64(len(o.append.Buf)))
		r.startWriteback(part)
	}
	part.rep.AppendCompleted(o.append.Base)
}

// startWriteback submits the writeback storage plans once enough of the
// active segment became visible (storage.writeback_bytes; writeback.go in
// storage): a sync_file_range through the ring, so the reactor never
// blocks on it.
func (r *Reactor) startWriteback(p *partition) {
	wb, ok := p.log.PrepareWriteback()
	if !ok {
		return
	}
	slot, o := r.ops.alloc()
	*o = ioOp{part: p, wb: wb}
	r.ring.PrepareSyncFileRange(wb.Fd, uint64(wb.Off), uint32(wb.Len), unix.SYNC_FILE_RANGE_WRITE,
		makeUD(udWriteback, 0, slot))
}

// onWritebackDone hands a writeback's completion to storage. A failure
// fences the log (the next flush is refused, which fences the replica).
func (r *Reactor) onWritebackDone(o *ioOp, res int32) {
	p := o.part
	if res >= 0 {
		p.log.WrittenBack(o.wb)
		stats.WrittenBack(o.wb.Len)
		r.startWriteback(p) // appends completed meanwhile may make the next step
		return
	}
	err := errnoErr(res)
	p.log.WritebackFailed(o.wb, err)
	r.srv.log.Error("segment writeback failed; partition fenced", "topic", p.topic.name, "partition", p.id, "err", err)
	r.noteFence(p)
	r.touch(p)
}

func growSlice[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
