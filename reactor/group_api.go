package reactor

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/ringmq/ringmq/group"
	"github.com/ringmq/ringmq/proto"
	"golang.org/x/sys/unix"
)

// The group requests, decoded and fed to their coordinator on the
// coordinator goroutine (group.go). Each answer is queued as a groupReply
// and sent once the turn's records are durable.

func (d *groupDriver) handle(j groupJob, now time.Duration) {
	part, code, resp := d.dispatch(j, now)
	d.replies = append(d.replies, groupReply{job: j, part: part, code: code, resp: resp})
}

// dispatch runs one request; part is the partition whose state it read or
// changed (-1: none, or several).
func (d *groupDriver) dispatch(j groupJob, now time.Duration) (part int, code proto.ErrorCode, resp proto.Message) {
	switch j.api {
	case proto.APIJoinGroup:
		var req proto.JoinGroupRequest
		if err := req.Decode(j.body); err != nil {
			return -1, proto.InvalidRequest, nil
		}
		return d.join(&req, j.addr, now)
	case proto.APIHeartbeat:
		var req proto.HeartbeatRequest
		if err := req.Decode(j.body); err != nil {
			return -1, proto.InvalidRequest, nil
		}
		return d.heartbeat(&req, now)
	case proto.APILeaveGroup:
		var req proto.LeaveGroupRequest
		if err := req.Decode(j.body); err != nil {
			return -1, proto.InvalidRequest, nil
		}
		gp, resp := d.partitionResult(req.Group)
		if gp != nil {
			setResult(resp, gp.c.Leave(req.Group, req.MemberID))
		}
		return partID(gp), proto.None, resp
	case proto.APIDeleteGroup:
		var req proto.DeleteGroupRequest
		if err := req.Decode(j.body); err != nil {
			return -1, proto.InvalidRequest, nil
		}
		gp, resp := d.partitionResult(req.Group)
		if gp != nil {
			setResult(resp, gp.c.Delete(req.Group))
		}
		return partID(gp), proto.None, resp
	case proto.APIDescribeGroup:
		var req proto.DescribeGroupRequest
		if err := req.Decode(j.body); err != nil {
			return -1, proto.InvalidRequest, nil
		}
		return d.describe(&req)
	case proto.APIResetOffsets:
		var req proto.ResetOffsetsRequest
		if err := req.Decode(j.body); err != nil {
			return -1, proto.InvalidRequest, nil
		}
		return d.resetOffsets(&req)
	case proto.APIOffsetCommit:
		var req proto.OffsetCommitRequest
		if err := req.Decode(j.body); err != nil {
			return -1, proto.InvalidRequest, nil
		}
		return d.offsetCommit(&req)
	case proto.APIOffsetFetch:
		var req proto.OffsetFetchRequest
		if err := req.Decode(j.body); err != nil {
			return -1, proto.InvalidRequest, nil
		}
		return d.offsetFetch(&req)
	case proto.APIListGroups:
		var req proto.ListGroupsRequest
		if err := req.Decode(j.body); err != nil {
			return -1, proto.InvalidRequest, nil
		}
		return d.listGroups(&req)
	}
	return d.dispatchShare(j)
}

func partID(gp *groupPartition) int {
	if gp == nil {
		return -1
	}
	return gp.id
}

// partition returns the coordinator partition of a group, or the code
// that refuses the request.
func (d *groupDriver) partition(name string) (*groupPartition, proto.ErrorCode, string) {
	if !proto.ValidName([]byte(name)) {
		return nil, proto.InvalidGroupName, fmt.Sprintf("group name %q: use 1-249 characters of [a-zA-Z0-9._-]", name)
	}
	gp := d.parts[groupPartitionOf(name, len(d.parts))]
	if !gp.active {
		code, msg := d.notCoordinator(gp)
		return nil, code, msg
	}
	if gp.broken != nil {
		return nil, proto.CoordinatorNotAvailable, gp.broken.Error()
	}
	return gp, proto.None, ""
}

func (d *groupDriver) partitionResult(name string) (*groupPartition, *proto.GroupResultResponse) {
	gp, code, msg := d.partition(name)
	return gp, &proto.GroupResultResponse{Error: code, Message: msg}
}

func setResult(r *proto.GroupResultResponse, err error) {
	if err != nil {
		r.Error, r.Message = groupErrorCode(err), groupMessage(err)
	}
}

func (d *groupDriver) join(req *proto.JoinGroupRequest, addr string, now time.Duration) (int, proto.ErrorCode, proto.Message) {
	gp, code, msg := d.partition(req.Group)
	if gp == nil {
		return -1, proto.None, &proto.AssignmentResponse{Error: code, Message: msg}
	}
	for _, t := range req.Topics {
		if ti := d.topics.byName[t]; ti == nil {
			return -1, proto.None, &proto.AssignmentResponse{Error: proto.UnknownTopic, Message: fmt.Sprintf("topic %q does not exist", t)}
		}
	}
	id := req.MemberID
	if id == "" {
		id = randomMemberID()
	}
	a, err := gp.c.Join(now, group.JoinRequest{
		Group: req.Group, Type: group.Type(req.Type), ClientID: req.ClientID, Addr: addr,
		Topics: req.Topics, SessionTimeout: time.Duration(req.SessionTimeoutMs) * time.Millisecond, MemberID: id,
	})
	return gp.id, proto.None, assignmentResponse(a, err)
}

func randomMemberID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (d *groupDriver) heartbeat(req *proto.HeartbeatRequest, now time.Duration) (int, proto.ErrorCode, proto.Message) {
	gp, code, msg := d.partition(req.Group)
	if gp == nil {
		return -1, proto.None, &proto.AssignmentResponse{Error: code, Message: msg}
	}
	a, err := gp.c.Heartbeat(now, group.HeartbeatRequest{
		Group: req.Group, Member: req.MemberID, MemberEpoch: req.MemberEpoch, Owned: fromGroupPartitions(req.Owned),
	})
	return gp.id, proto.None, assignmentResponse(a, err)
}

func assignmentResponse(a group.Assignment, err error) *proto.AssignmentResponse {
	if err != nil {
		return &proto.AssignmentResponse{Error: groupErrorCode(err), Message: groupMessage(err)}
	}
	return &proto.AssignmentResponse{
		MemberID: a.Member, MemberEpoch: a.MemberEpoch, HeartbeatIntervalMs: uint32(a.HeartbeatInterval / time.Millisecond),
		Assigned: toGroupPartitions(a.Assigned), Revoke: toGroupPartitions(a.Revoke), Pending: toGroupPartitions(a.Pending),
	}
}

// toGroupPartitions groups sorted partitions by topic.
func toGroupPartitions(tps []group.TopicPartition) []proto.GroupPartitions {
	var out []proto.GroupPartitions
	for _, tp := range tps {
		if n := len(out); n == 0 || out[n-1].Topic != tp.Topic {
			out = append(out, proto.GroupPartitions{Topic: tp.Topic})
		}
		last := &out[len(out)-1]
		last.Partitions = append(last.Partitions, tp.Partition)
	}
	return out
}

func fromGroupPartitions(gps []proto.GroupPartitions) []group.TopicPartition {
	var out []group.TopicPartition
	for _, g := range gps {
		for _, p := range g.Partitions {
			out = append(out, group.TopicPartition{Topic: g.Topic, Partition: p})
		}
	}
	return out
}

func (d *groupDriver) describe(req *proto.DescribeGroupRequest) (int, proto.ErrorCode, proto.Message) {
	gp, code, msg := d.partition(req.Group)
	if gp == nil {
		return -1, proto.None, &proto.DescribeGroupResponse{Error: code, Message: msg}
	}
	desc, err := gp.c.Describe(req.Group)
	if err != nil {
		return -1, proto.None, &proto.DescribeGroupResponse{Error: groupErrorCode(err), Message: groupMessage(err)}
	}
	resp := &proto.DescribeGroupResponse{Type: uint8(desc.Type), State: uint8(desc.State), Epoch: desc.Epoch}
	for _, m := range desc.Members {
		resp.Members = append(resp.Members, proto.GroupMember{
			ID: m.ID, ClientID: m.ClientID, Addr: m.Addr, SessionTimeoutMs: uint32(m.SessionTimeout / time.Millisecond),
			Epoch: m.Epoch, Topics: m.Topics, Assigned: toGroupPartitions(m.Assigned),
			Revoking: toGroupPartitions(m.Revoking), Pending: toGroupPartitions(m.Pending),
		})
	}
	resp.Topics = d.positions(desc.Commits)
	return gp.id, proto.None, resp
}

// positions turns commits (sorted by topic, partition) into per-topic
// positions with each partition's log end and lag.
func (d *groupDriver) positions(commits []group.CommitDescription) []proto.GroupTopic {
	var out []proto.GroupTopic
	for _, cm := range commits {
		if n := len(out); n == 0 || out[n-1].Name != cm.Topic {
			out = append(out, proto.GroupTopic{Name: cm.Topic})
		}
		gp := proto.GroupPartition{Partition: cm.Partition, Committed: cm.Offset}
		if info := d.s.topics.Load().byName[cm.Topic]; info != nil && cm.Partition < info.partitions {
			gp.LogEnd = info.shared[cm.Partition].logEnd.Load()
			if gp.LogEnd > gp.Committed {
				gp.Lag = gp.LogEnd - gp.Committed
			}
		}
		t := &out[len(out)-1]
		t.Partitions = append(t.Partitions, gp)
	}
	return out
}

func (d *groupDriver) listGroups(req *proto.ListGroupsRequest) (int, proto.ErrorCode, proto.Message) {
	if req.Group != "" && !proto.ValidName([]byte(req.Group)) {
		return -1, proto.InvalidGroupName, nil
	}
	resp := &proto.ListGroupsResponse{}
	var all []group.Summary
	byName := map[string]*groupPartition{}
	for _, gp := range d.parts {
		for _, sm := range gp.c.Groups() {
			if req.Group == "" || req.Group == sm.Name {
				all = append(all, sm)
				byName[sm.Name] = gp
			}
		}
	}
	slices.SortFunc(all, func(a, b group.Summary) int {
		if a.Name < b.Name {
			return -1
		}
		return 1
	})
	for _, sm := range all {
		gi := proto.GroupInfo{Name: sm.Name, Type: uint8(sm.Type), State: uint8(sm.State), Members: uint32(sm.Members)}
		if desc, err := byName[sm.Name].c.Describe(sm.Name); err == nil {
			gi.Topics = d.positions(desc.Commits)
		}
		resp.Groups = append(resp.Groups, gi)
	}
	if req.Group != "" && len(resp.Groups) == 0 {
		return -1, proto.GroupNotFound, nil
	}
	return -1, proto.None, resp
}

func (d *groupDriver) resetOffsets(req *proto.ResetOffsetsRequest) (int, proto.ErrorCode, proto.Message) {
	gp, code, msg := d.partition(req.Group)
	if gp == nil {
		return -1, proto.None, &proto.ResetOffsetsResponse{Error: code, Message: msg}
	}
	info := d.s.topics.Load().byName[req.Topic]
	if info == nil {
		return -1, proto.None, &proto.ResetOffsetsResponse{Error: proto.UnknownTopic, Message: fmt.Sprintf("topic %q does not exist", req.Topic)}
	}
	to := make(map[uint32]uint64, len(req.Partitions))
	for _, p := range req.Partitions {
		if p.Partition >= info.partitions {
			return -1, proto.None, &proto.ResetOffsetsResponse{Error: proto.UnknownPartition,
				Message: fmt.Sprintf("topic %q has no partition %d", req.Topic, p.Partition)}
		}
		if end := info.shared[p.Partition].logEnd.Load(); info.lead[p.Partition].code == proto.None && p.Offset > end {
			return -1, proto.None, &proto.ResetOffsetsResponse{Error: proto.OffsetOutOfRange,
				Message: fmt.Sprintf("offset %d is past the log end %d of partition %d", p.Offset, end, p.Partition)}
		}
		to[p.Partition] = p.Offset
	}
	plan, err := gp.c.ResetOffsets(req.Group, req.Topic, to, req.DryRun)
	if err != nil {
		return -1, proto.None, &proto.ResetOffsetsResponse{Error: groupErrorCode(err), Message: groupMessage(err)}
	}
	resp := &proto.ResetOffsetsResponse{}
	for _, ch := range plan {
		resp.Partitions = append(resp.Partitions, proto.ResetResult{Partition: ch.Partition, Had: ch.Had, From: ch.From, To: ch.To})
		if !req.DryRun {
			d.lag.set(req.Group, req.Topic, ch.Partition, ch.To)
		}
	}
	return gp.id, proto.None, resp
}

func (d *groupDriver) offsetCommit(req *proto.OffsetCommitRequest) (int, proto.ErrorCode, proto.Message) {
	name := string(req.Group)
	gp, code, _ := d.partition(name)
	if gp == nil {
		return -1, code, nil
	}
	member := string(req.MemberID)
	tt := d.s.topics.Load()
	resp := &proto.OffsetCommitResponse{Topics: make([]proto.OffsetCommitTopicResponse, len(req.Topics))}
	for i, t := range req.Topics {
		rt := &resp.Topics[i]
		rt.Name = t.Name
		info := tt.lookup(t.Name)
		for _, p := range t.Partitions {
			_, code := partOwner(info, p.Partition)
			if code == proto.NotLeader || code == proto.LeaderNotAvailable {
				// In a cluster the coordinator need not lead the partition:
				// the commit is kept without the log-end check.
				code = proto.None
			} else if code == proto.None && p.Offset > info.shared[p.Partition].logEnd.Load() {
				// Kafka semantics: the committed offset is the next one to
				// read, so the log end itself is the highest valid commit.
				code = proto.OffsetOutOfRange
			}
			if code == proto.None {
				err := gp.c.Commit(name, member, req.MemberEpoch, info.name, p.Partition, p.Offset, string(p.Metadata))
				if code = groupErrorCode(err); code == proto.None {
					d.lag.set(name, info.name, p.Partition, p.Offset)
				}
			}
			rt.Partitions = append(rt.Partitions, proto.PartitionError{Partition: p.Partition, Error: code})
		}
	}
	return gp.id, proto.None, resp
}

func (d *groupDriver) offsetFetch(req *proto.OffsetFetchRequest) (int, proto.ErrorCode, proto.Message) {
	name := string(req.Group)
	gp, code, _ := d.partition(name)
	if gp == nil {
		return -1, code, nil
	}
	member := string(req.MemberID)
	resp := &proto.OffsetFetchResponse{}
	if len(req.Topics) == 0 {
		desc, err := gp.c.Describe(name)
		if err != nil {
			return gp.id, proto.None, resp
		}
		for _, t := range d.positions(desc.Commits) {
			rt := proto.OffsetFetchTopicResponse{Name: []byte(t.Name)}
			for _, p := range t.Partitions {
				cm, _ := gp.c.Committed(name, t.Name, p.Partition)
				rt.Partitions = append(rt.Partitions, proto.OffsetFetchPartitionResponse{
					Partition: p.Partition, Offset: cm.Offset, Metadata: []byte(cm.Metadata)})
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return gp.id, proto.None, resp
	}
	for _, t := range req.Topics {
		rt := proto.OffsetFetchTopicResponse{Name: t.Name}
		for _, p := range t.Partitions {
			pr := proto.OffsetFetchPartitionResponse{Partition: p, Offset: proto.NoOffset}
			if member != "" {
				pr.Error = groupErrorCode(gp.c.CanFetch(name, member, req.MemberEpoch, string(t.Name), p))
			}
			if pr.Error == proto.None {
				if cm, ok := gp.c.Committed(name, string(t.Name), p); ok {
					pr.Offset, pr.Metadata = cm.Offset, []byte(cm.Metadata)
				}
			}
			rt.Partitions = append(rt.Partitions, pr)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return gp.id, proto.None, resp
}

// postGroup sends a group request to the coordinator goroutine; a join
// carries the client's address (getpeername: a socket call that does not
// block).
func (r *Reactor) postGroup(q *request, body []byte) {
	j := groupJob{origin: r, req: q, api: q.hdr.API, body: body}
	if q.hdr.API == proto.APIJoinGroup {
		if sa, err := unix.Getpeername(q.c.fd); err == nil {
			j.addr = sockaddrString(sa)
		}
	}
	r.srv.postGroup(j)
}

func sockaddrString(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String()
	}
	return ""
}
