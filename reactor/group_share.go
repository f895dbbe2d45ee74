package reactor

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ringmq/ringmq/group"
	"github.com/ringmq/ringmq/group/ack"
	"github.com/ringmq/ringmq/proto"
)

// The shared-subscription requests (ShareAcquire, ShareAck,
// ShareDescribe), run on the coordinator goroutine like the other group
// requests: the answer waits for the turn's records (the acquisitions
// and acks, as ack-tracker frames) to be durable, so a crash never
// forgets a delivery a member was told of nor an ack it was confirmed.

// shareConfig is the trackers' policy from [groups].
func (s *Server) shareConfig() group.ShareConfig {
	g := s.cfg.Groups
	return group.ShareConfig{
		AckTimeout: g.AckTimeout, MaxUnacked: g.MaxUnacked, MaxDeliveries: g.MaxDeliveries,
		Backoff: slices.Clone([]time.Duration(g.RedeliveryBackoff)), MaxDelay: g.MaxDelay,
	}
}

// dispatchShare runs a shared-subscription request (UnsupportedAPI for
// anything else).
func (d *groupDriver) dispatchShare(j groupJob) (int, proto.ErrorCode, proto.Message) {
	switch j.api {
	case proto.APIShareAcquire:
		var req proto.ShareAcquireRequest
		if err := req.Decode(j.body); err != nil {
			return -1, proto.InvalidRequest, nil
		}
		return d.shareAcquire(&req)
	case proto.APIShareAck:
		var req proto.ShareAckRequest
		if err := req.Decode(j.body); err != nil {
			return -1, proto.InvalidRequest, nil
		}
		return d.shareAck(&req)
	case proto.APIShareDescribe:
		var req proto.ShareDescribeRequest
		if err := req.Decode(j.body); err != nil {
			return -1, proto.InvalidRequest, nil
		}
		return d.shareDescribe(&req)
	}
	return -1, proto.UnsupportedAPI, nil
}

// maxShareAcquire bounds the records one ShareAcquire hands out.
const maxShareAcquire = 10_000

func (d *groupDriver) shareAcquire(req *proto.ShareAcquireRequest) (int, proto.ErrorCode, proto.Message) {
	gp, code, msg := d.partition(req.Group)
	if gp == nil {
		return -1, proto.None, &proto.ShareAcquireResponse{Error: code, Message: msg}
	}
	info := d.s.topics.Load().byName[req.Topic]
	if _, code := partOwner(info, req.Partition); code != proto.None {
		return -1, proto.None, &proto.ShareAcquireResponse{Error: code,
			Message: fmt.Sprintf("topic %q partition %d", req.Topic, req.Partition)}
	}
	ps := info.shared[req.Partition]
	want := int(min(max(req.MaxRecords, 1), maxShareAcquire))
	tp := group.TopicPartition{Topic: req.Topic, Partition: req.Partition}
	logStart := ps.logStart.Load()
	// A stranger must not move the Meta reader: check first.
	if err := gp.c.CheckShareMember(req.Group, req.MemberID, req.MemberEpoch, tp); err != nil {
		return gp.id, proto.None, &proto.ShareAcquireResponse{Error: shareErrorCode(err), Message: groupMessage(err)}
	}
	// Records are handed out only as far as their Meta (key hash,
	// delivery time) is known.
	w := d.window(tp, gp.c.ShareStart(req.Group, tp, logStart))
	rs, err := gp.c.ShareAcquire(time.Now(), req.Group, req.MemberID, req.MemberEpoch, tp, want,
		logStart, min(ps.logEnd.Load(), w.end()), w)
	if err != nil {
		return gp.id, proto.None, &proto.ShareAcquireResponse{Error: shareErrorCode(err), Message: groupMessage(err)}
	}
	resp := &proto.ShareAcquireResponse{AckTimeoutMs: uint32(d.cfg.Share.AckTimeout / time.Millisecond)}
	for _, r := range rs {
		resp.Ranges = append(resp.Ranges, proto.ShareRange{Start: r.Start, End: r.End, Deliveries: uint32(r.Deliveries)})
	}
	return gp.id, proto.None, resp
}

func (d *groupDriver) shareAck(req *proto.ShareAckRequest) (int, proto.ErrorCode, proto.Message) {
	gp, code, msg := d.partition(req.Group)
	if gp == nil {
		return -1, proto.None, &proto.ShareAckResponse{Error: code, Message: msg}
	}
	tp := group.TopicPartition{Topic: req.Topic, Partition: req.Partition}
	resp := &proto.ShareAckResponse{Results: make([]proto.ErrorCode, len(req.Acks))}
	now := time.Now()
	for i, a := range req.Acks {
		op := group.ShareAck{TopicPartition: tp, Op: group.ShareOp(a.Op), Start: a.Start, End: a.End, Reason: a.Reason}
		op.Delay = time.Duration(a.DelayMs) * time.Millisecond
		if a.DelayMs == proto.ShareBackoff {
			op.Delay = ack.UseBackoff
		}
		_, err := gp.c.ShareAcknowledge(now, req.Group, req.MemberID, req.MemberEpoch, op)
		resp.Results[i] = shareErrorCode(err)
		if err != nil && resp.Message == "" {
			resp.Message = groupMessage(err)
		}
	}
	return gp.id, proto.None, resp
}

func (d *groupDriver) shareDescribe(req *proto.ShareDescribeRequest) (int, proto.ErrorCode, proto.Message) {
	gp, code, msg := d.partition(req.Group)
	if gp == nil {
		return -1, proto.None, &proto.ShareDescribeResponse{Error: code, Message: msg}
	}
	if _, err := gp.c.Describe(req.Group); err != nil {
		return -1, proto.None, &proto.ShareDescribeResponse{Error: groupErrorCode(err), Message: groupMessage(err)}
	}
	stats := gp.c.ShareStats(req.Group)
	tps := make([]group.TopicPartition, 0, len(stats))
	for tp := range stats {
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, func(a, b group.TopicPartition) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition) - int(b.Partition)
	})
	resp := &proto.ShareDescribeResponse{}
	tt := d.s.topics.Load()
	for _, tp := range tps {
		st := stats[tp]
		ps := proto.SharePartitionState{Topic: tp.Topic, Partition: tp.Partition, Floor: st.Floor,
			InFlight: uint32(st.InFlight), Waiting: uint32(st.Waiting), Redeliveries: st.Redeliveries, DeadLetters: st.DeadLetters}
		if info := tt.byName[tp.Topic]; info != nil && tp.Partition < info.partitions {
			ps.LogEnd = info.shared[tp.Partition].logEnd.Load()
		}
		resp.Partitions = append(resp.Partitions, ps)
	}
	return -1, proto.None, resp
}

// shareErrorCode maps a refusal of a shared request to its wire code.
func shareErrorCode(err error) proto.ErrorCode {
	if errors.Is(err, group.ErrNotHeld) {
		return proto.RecordNotHeld
	}
	return groupErrorCode(err)
}

// expireShares releases the locks that expired (each turn).
func (d *groupDriver) expireShares() {
	now := time.Now()
	for _, gp := range d.parts {
		if gp.broken == nil {
			if next := gp.c.NextShareDeadline(); !next.IsZero() && !next.After(now) {
				gp.c.ExpireShares(now)
			}
		}
	}
}

// shareSleep bounds the loop's sleep by the next lock deadline.
func (d *groupDriver) shareSleep(wait time.Duration) time.Duration {
	now := time.Now()
	for _, gp := range d.parts {
		if next := gp.c.NextShareDeadline(); !next.IsZero() && next.Sub(now) < wait {
			wait = next.Sub(now)
		}
	}
	return wait
}
