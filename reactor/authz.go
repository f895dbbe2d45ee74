package reactor

import (
	"github.com/ringmq/ringmq/acl"
	"github.com/ringmq/ringmq/proto"
)

// Authorization (server.authorization = on): each request is checked
// against the published acl.Authorizer for the connection's principal.
// Produce, Fetch, ListOffsets, Metadata and DescribeTopic check their
// topics in their handlers (a denied topic gets TOPIC_AUTHORIZATION_FAILED
// in its place of the response; Metadata leaves out, when listing every
// topic, those the principal may not describe); every other API is checked
// in dispatch by authorizeRequest before it is served.
//
//	Produce                   write topic
//	Fetch                     read topic
//	ListOffsets, Metadata,
//	DescribeTopic             describe topic
//	CreateTopic               create topic (or create cluster)
//	DeleteTopic               delete topic
//	AlterTopic, AddPartitions alter topic
//	JoinGroup, OffsetCommit,
//	ResetOffsets              read group + read each topic
//	OffsetFetch               describe group + describe each topic
//	Heartbeat, LeaveGroup     read group
//	DescribeGroup             describe group
//	DeleteGroup               delete group
//	ListGroups                describe group (describe cluster for all)
//	ClusterStatus, ListUsers,
//	ACLs list                 describe cluster
//	AlterUser, ACLs change,
//	FindCoordinator           describe group
//	RaftMessages,
//	BrokerHeartbeat,
//	ReplicaFetch              alter cluster
//	InitProducer, Hello, SASL any principal

// authzCacheMax bounds a connection's decision cache (names); a full cache
// is emptied.
const authzCacheMax = 256

// authzCache holds a connection's decisions by resource name, two bits per
// (resource type, operation): known and allowed. It is emptied when the
// published Authorizer changes (a new ACL list) or the principal does.
type authzCache struct {
	from *acl.Authorizer
	m    map[string]uint64
}

func (a *authzCache) reset() {
	a.from = nil
	clear(a.m)
}

// authorized reports whether c's principal may do op on the resource of
// type rt named name: always true with authorization off. A decision
// cached for the current Authorizer costs a map lookup and no allocation.
func authorized[T ~string | ~[]byte](r *Reactor, c *conn, op acl.Operation, rt acl.ResourceType, name T) bool {
	if !r.srv.sec.authzOn {
		return true
	}
	authz := r.srv.secTable.Load().authz
	a := &c.authz
	if a.from != authz {
		clear(a.m)
		a.from = authz
	}
	bit := 2 * (uint(rt&3)*8 + uint(op&7)) // at most 62
	if v, ok := a.m[string(name)]; ok && v&(1<<bit) != 0 {
		return v&(2<<bit) != 0
	}
	key := string(name)
	ok := authz.Allowed(c.principal, op, rt, key)
	if a.m == nil {
		a.m = make(map[string]uint64)
	}
	if len(a.m) >= authzCacheMax {
		clear(a.m)
	}
	v := a.m[key] | 1<<bit
	if ok {
		v |= 2 << bit
	}
	a.m[key] = v
	return ok
}

func topicAllowed[T ~string | ~[]byte](r *Reactor, c *conn, op acl.Operation, name T) bool {
	return authorized(r, c, op, acl.ResourceTopic, name)
}

func (r *Reactor) clusterAllowed(c *conn, op acl.Operation) bool {
	return authorized(r, c, op, acl.ResourceCluster, acl.ClusterName)
}

// authorizeRequest checks the APIs whose handlers do not (see the table
// above). A body that does not decode passes: its handler refuses it.
func (r *Reactor) authorizeRequest(q *request) proto.ErrorCode {
	if !r.srv.sec.authzOn {
		return proto.None
	}
	c, body := q.c, q.body
	switch q.hdr.API {
	case proto.APICreateTopic:
		var req proto.CreateTopicRequest
		if req.Decode(body) == nil && !topicAllowed(r, c, acl.OpCreate, req.Name) && !r.clusterAllowed(c, acl.OpCreate) {
			return proto.TopicAuthorizationFailed
		}
	case proto.APIDeleteTopic:
		var req proto.DeleteTopicRequest
		if req.Decode(body) == nil && !topicAllowed(r, c, acl.OpDelete, req.Name) {
			return proto.TopicAuthorizationFailed
		}
	case proto.APIAlterTopic:
		var req proto.AlterTopicRequest
		if req.Decode(body) == nil && !topicAllowed(r, c, acl.OpAlter, req.Name) {
			return proto.TopicAuthorizationFailed
		}
	case proto.APIAddPartitions:
		var req proto.AddPartitionsRequest
		if req.Decode(body) == nil && !topicAllowed(r, c, acl.OpAlter, req.Name) {
			return proto.TopicAuthorizationFailed
		}
	case proto.APIClusterStatus, proto.APIListUsers:
		if !r.clusterAllowed(c, acl.OpDescribe) {
			return proto.ClusterAuthorizationFailed
		}
	case proto.APIRaftMessages, proto.APIBrokerHeartbeat, proto.APIReplicaFetch:
		if !r.clusterAllowed(c, acl.OpAlter) {
			return proto.ClusterAuthorizationFailed
		}
	case proto.APIACLs:
		var req proto.ACLsRequest
		op := acl.OpAlter
		if req.Decode(body) == nil && req.Op == proto.ACLList {
			op = acl.OpDescribe
		}
		if !r.clusterAllowed(c, op) {
			return proto.ClusterAuthorizationFailed
		}
	case proto.APIFindCoordinator:
		var req proto.FindCoordinatorRequest
		if req.Decode(body) == nil && !authorized(r, c, acl.OpDescribe, acl.ResourceGroup, req.Group) {
			return proto.GroupAuthorizationFailed
		}
	case proto.APIOffsetCommit, proto.APIOffsetFetch, proto.APIListGroups, proto.APIJoinGroup,
		proto.APIHeartbeat, proto.APILeaveGroup, proto.APIDescribeGroup, proto.APIDeleteGroup,
		proto.APIResetOffsets:
		return r.authorizeGroup(q)
	}
	return proto.None
}

// authorizeGroup checks a group request: the group, then its topics.
func (r *Reactor) authorizeGroup(q *request) proto.ErrorCode {
	c := q.c
	group := func(op acl.Operation, name string, topics ...string) proto.ErrorCode {
		if !authorized(r, c, op, acl.ResourceGroup, name) {
			return proto.GroupAuthorizationFailed
		}
		for _, t := range topics {
			if !topicAllowed(r, c, op, t) {
				return proto.TopicAuthorizationFailed
			}
		}
		return proto.None
	}
	switch q.hdr.API {
	case proto.APIJoinGroup:
		var req proto.JoinGroupRequest
		if req.Decode(q.body) == nil {
			return group(acl.OpRead, req.Group, req.Topics...)
		}
	case proto.APIOffsetCommit:
		var req proto.OffsetCommitRequest
		if req.Decode(q.body) == nil {
			topics := make([]string, len(req.Topics))
			for i := range req.Topics {
				topics[i] = string(req.Topics[i].Name)
			}
			return group(acl.OpRead, string(req.Group), topics...)
		}
	case proto.APIOffsetFetch:
		var req proto.OffsetFetchRequest
		if req.Decode(q.body) == nil {
			topics := make([]string, len(req.Topics))
			for i := range req.Topics {
				topics[i] = string(req.Topics[i].Name)
			}
			return group(acl.OpDescribe, string(req.Group), topics...)
		}
	case proto.APIResetOffsets:
		var req proto.ResetOffsetsRequest
		if req.Decode(q.body) == nil {
			return group(acl.OpRead, req.Group, req.Topic)
		}
	case proto.APIHeartbeat:
		var req proto.HeartbeatRequest
		if req.Decode(q.body) == nil {
			return group(acl.OpRead, req.Group)
		}
	case proto.APILeaveGroup:
		var req proto.LeaveGroupRequest
		if req.Decode(q.body) == nil {
			return group(acl.OpRead, req.Group)
		}
	case proto.APIDescribeGroup:
		var req proto.DescribeGroupRequest
		if req.Decode(q.body) == nil {
			return group(acl.OpDescribe, req.Group)
		}
	case proto.APIDeleteGroup:
		var req proto.DeleteGroupRequest
		if req.Decode(q.body) == nil {
			return group(acl.OpDelete, req.Group)
		}
	case proto.APIListGroups:
		var req proto.ListGroupsRequest
		if req.Decode(q.body) == nil {
			if req.Group == "" {
				if !r.clusterAllowed(c, acl.OpDescribe) {
					return proto.ClusterAuthorizationFailed
				}
				return proto.None
			}
			return group(acl.OpDescribe, req.Group)
		}
	}
	return proto.None
}

// mayCreate reports whether c's principal may create topic name (create on
// the topic or on the cluster), for auto_create.
func (r *Reactor) mayCreate(c *conn, name []byte) bool {
	return topicAllowed(r, c, acl.OpCreate, name) || r.clusterAllowed(c, acl.OpCreate)
}

// refuseUnauthorized answers a request its principal may not make. A
// one-way RaftMessages gets no answer: its connection is closed.
func (r *Reactor) refuseUnauthorized(q *request, code proto.ErrorCode) {
	if q.hdr.API == proto.APIRaftMessages {
		c := q.c
		r.finishNoResponse(q)
		r.protocolError(c)
		return
	}
	r.respondError(q, code)
}
