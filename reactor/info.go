package reactor

import (
	"github.com/ringmq/ringmq/acl"
	"github.com/ringmq/ringmq/proto"
	"slices"
	"strings"
)

// Metadata and DescribeTopic are answered by any reactor from the topic
// table and the partitions' published state; ListOffsets needs the log
// (seek by time) and goes to each partition's owner.

func (r *Reactor) handleMetadata(q *request, body []byte) {
	var req proto.MetadataRequest
	if err := req.Decode(body); err != nil {
		r.respondError(q, proto.InvalidRequest)
		return
	}
	if r.autoCreate(q, len(req.Topics), func(i int) []byte { return []byte(req.Topics[i]) }) {
		return
	}
	tt := r.srv.topics.Load()
	names, all := req.Topics, len(req.Topics) == 0
	if all {
		names = tt.sortedNames()
	}
	var resp proto.MetadataResponse
	for _, name := range names {
		mt := proto.MetadataTopic{Name: name}
		info := tt.byName[name]
		if !topicAllowed(r, q.c, acl.OpDescribe, name) {
			if all {
				continue // only what the principal may describe is listed
			}
			mt.Error = proto.TopicAuthorizationFailed
		} else if info == nil {
			mt.Error = r.srv.unknownTopicCode(name)
		} else {
			for p := uint32(0); p < info.partitions; p++ {
				sh, l := info.shared[p], &info.lead[p]
				mt.Partitions = append(mt.Partitions, proto.PartitionInfo{Partition: p, Shard: info.shards[p],
					LogStart: sh.logStart.Load(), LogEnd: sh.logEnd.Load(),
					Leader: l.leader, LeaderEpoch: l.epoch, Replicas: l.replicas, ISR: l.isr})
			}
		}
		resp.Topics = append(resp.Topics, mt)
	}
	resp.Brokers = r.srv.cl.view.Load().brokers
	resp.ControllerID = uint32(r.srv.cl.ctrl().Status().Leader)
	r.respond(q, proto.None, &resp)
}

func (r *Reactor) handleDescribe(q *request, body []byte) {
	var req proto.DescribeTopicRequest
	if err := req.Decode(body); err != nil {
		r.respondError(q, proto.InvalidRequest)
		return
	}
	if !topicAllowed(r, q.c, acl.OpDescribe, req.Name) {
		r.respond(q, proto.None, &proto.DescribeTopicResponse{Error: proto.TopicAuthorizationFailed})
		return
	}
	info := r.srv.topics.Load().byName[req.Name]
	if info == nil {
		r.respond(q, proto.None, &proto.DescribeTopicResponse{Error: proto.UnknownTopic})
		return
	}
	resp := proto.DescribeTopicResponse{}
	for p := uint32(0); p < info.partitions; p++ {
		sh, l := info.shared[p], &info.lead[p]
		resp.Partitions = append(resp.Partitions, proto.DescribePartition{Partition: p, Shard: info.shards[p],
			LogStart: sh.logStart.Load(), LogEnd: sh.logEnd.Load(), Bytes: uint64(max(sh.bytes.Load(), 0)),
			Status: partitionStatus(sh), Leader: l.leader, LeaderEpoch: l.epoch, Replicas: l.replicas, ISR: l.isr})
	}
	for k, v := range info.cfg.Overrides() {
		resp.Configs = append(resp.Configs, proto.Config{Key: k, Value: v})
	}
	slices.SortFunc(resp.Configs, func(a, b proto.Config) int { return strings.Compare(a.Key, b.Key) })
	r.respond(q, proto.None, &resp)
}

func (r *Reactor) handleListOffsets(q *request, body []byte) {
	req := &q.listOffsets
	if err := req.Decode(body); err != nil {
		r.respondError(q, proto.InvalidRequest)
		return
	}
	resp := &q.listResp
	resp.Topics = growSlice(resp.Topics, len(req.Topics))
	tt := r.srv.topics.Load()
	q.pending = 1
	for ti := range req.Topics {
		t := &req.Topics[ti]
		rt := &resp.Topics[ti]
		rt.Name = t.Name
		rt.Partitions = growSlice(rt.Partitions, len(t.Partitions))
		info := tt.lookup(t.Name)
		denied := !topicAllowed(r, q.c, acl.OpDescribe, t.Name)
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			owner, code := partOwner(info, p.Partition)
			if denied {
				code = proto.TopicAuthorizationFailed
			}
			rt.Partitions[pi] = proto.ListOffsetsPartitionResponse{Partition: p.Partition, Error: code}
			if code != proto.None {
				continue
			}
			q.pending++
			if owner == r.id {
				r.listOffsetPart(q, r, ti, pi)
			} else {
				r.srv.reactors[owner].mb.post(message{kind: msgListOffset, origin: r, req: q, ti: int32(ti), pi: int32(pi)})
			}
		}
	}
	r.listOffsetStep(q)
}

// listOffsetPart runs on the owner.
func (r *Reactor) listOffsetPart(q *request, origin *Reactor, ti, pi int) {
	t := &q.listOffsets.Topics[ti]
	p := &t.Partitions[pi]
	code, off, ts := proto.None, uint64(0), p.Timestamp
	part := r.partition(t.Name, p.Partition)
	switch {
	case part == nil:
		code = proto.UnknownPartition
	case p.Timestamp == proto.TimestampEarliest:
		off = part.rep.Offsets().LogStart
	case p.Timestamp == proto.TimestampLatest:
		// A consumer starting at the latest offset reads from the high
		// watermark: nothing above it is served yet.
		off = part.rep.HighWatermark()
	default:
		o, err := part.log.SeekTime(p.Timestamp)
		if err != nil {
			code = storageErrorCode(err)
		}
		off = min(o, part.rep.HighWatermark())
	}
	if origin == r {
		r.listOffsetDone(q, ti, pi, code, off, ts)
		return
	}
	origin.mb.post(message{kind: msgListDone, req: q, ti: int32(ti), pi: int32(pi), code: code, base: off, ts: ts})
}

func (r *Reactor) listOffsetDone(q *request, ti, pi int, code proto.ErrorCode, off uint64, ts int64) {
	res := &q.listResp.Topics[ti].Partitions[pi]
	res.Error, res.Offset, res.Timestamp = code, off, ts
	r.listOffsetStep(q)
}

func (r *Reactor) listOffsetStep(q *request) {
	q.pending--
	if q.pending > 0 {
		return
	}
	r.respond(q, proto.None, &q.listResp)
}
