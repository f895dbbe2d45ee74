package reactor

import (
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/ringmq/ringmq/acl"
	"github.com/ringmq/ringmq/controller"
	"github.com/ringmq/ringmq/proto"
)

// User and ACL administration: AlterUser, ListUsers and ACLs. The reactor
// checks who may ask, then the admin goroutine answers lists from the
// published table and proposes changes to the controller (like topic
// changes, cluster_admin.go); the change is in effect on the answering
// node when the answer comes (the reconcile before it publishes a new
// table, and a new Authorizer empties every connection's cache).
//
// Bootstrap: while the cluster has no user, AlterUser creating one is
// served without authentication and without authorization to a connection
// from the loopback interface, so that the operator of a server started
// with server.sasl = scram can create the first (super)user on its host.

func (r *Reactor) handleSecurityAdmin(q *request, body []byte) {
	c := q.c
	if q.hdr.API == proto.APIAlterUser {
		switch {
		case r.bootstrapUser(c):
		case !c.authed:
			r.refuseUnauthenticated(q)
			return
		case !r.clusterAllowed(c, acl.OpAlter):
			r.respondError(q, proto.ClusterAuthorizationFailed)
			return
		}
	}
	r.srv.postAdmin(adminJob{origin: r, req: q, api: q.hdr.API, body: body})
}

// bootstrapUser reports whether c may create the first user: the cluster
// has none, server.sasl is on, and c comes from a loopback address
// (getpeername: a socket call that does not block).
func (r *Reactor) bootstrapUser(c *conn) bool {
	if !r.srv.sec.sasl || len(r.srv.secTable.Load().users) != 0 {
		return false
	}
	sa, err := unix.Getpeername(c.fd)
	if err != nil {
		return false
	}
	return loopbackPeer(sa)
}

func loopbackPeer(sa unix.Sockaddr) bool {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(a.Addr).IsLoopback()
	case *unix.SockaddrInet6:
		return netip.AddrFrom16(a.Addr).Unmap().IsLoopback()
	}
	return false
}

// runSecurityAdmin answers a user or ACL request (admin goroutine).
func (s *Server) runSecurityAdmin(j adminJob) {
	switch j.api {
	case proto.APIAlterUser:
		s.alterUser(j)
	case proto.APIListUsers:
		s.reply(j, proto.None, s.listUsers())
	case proto.APIACLs:
		s.alterACLs(j)
	}
}

func (s *Server) alterUser(j adminJob) {
	var req proto.AlterUserRequest
	if err := req.Decode(j.body); err != nil {
		s.reply(j, proto.InvalidRequest, nil)
		return
	}
	c := controller.Command{Type: controller.CmdDeleteUser, User: req.Name}
	if !req.Delete {
		c = controller.Command{Type: controller.CmdUpsertUser, User: req.Name, Credential: controller.Credential{
			Mechanism: mechanismOf(req.Mechanism), Salt: req.Salt, Iterations: req.Iterations,
			StoredKey: req.StoredKey, ServerKey: req.ServerKey}}
		if c.Credential.Mechanism == 0 {
			s.reply(j, proto.None, &proto.AlterUserResponse{Error: proto.InvalidRequest,
				Message: fmt.Sprintf("mechanism %q: want %s or %s", req.Mechanism, proto.MechanismScramSHA256, proto.MechanismScramSHA512)})
			return
		}
	}
	s.proposeSecurity(j, c, func(code proto.ErrorCode, msg string) proto.Message {
		if code == proto.None {
			s.log.Info("user changed", "user", req.Name, "deleted", req.Delete, "mechanism", req.Mechanism)
		}
		return &proto.AlterUserResponse{Error: code, Message: msg}
	})
}

// proposeSecurity validates c against the current state, proposes it and
// answers with the code and the response resp builds.
func (s *Server) proposeSecurity(j adminJob, c controller.Command, resp func(proto.ErrorCode, string) proto.Message) {
	if err := s.cl.ctrl().State().Validate(c); err != nil {
		code := controllerCode(err)
		s.reply(j, proto.None, resp(code, err.Error()))
		return
	}
	s.startProposal(s.proposeOne(c), func(p proposal) {
		code := controllerCode(p.err)
		s.reply(j, proto.None, resp(code, errText(p.err)))
	})
}

func (s *Server) listUsers() *proto.ListUsersResponse {
	st := s.cl.ctrl().State()
	resp := &proto.ListUsersResponse{}
	for _, u := range st.Users() {
		info := proto.UserInfo{Name: u.Name}
		for _, c := range u.Credentials {
			info.Mechanisms = append(info.Mechanisms, proto.UserMechanism{Mechanism: c.Mechanism.String(), Iterations: c.Iterations})
		}
		resp.Users = append(resp.Users, info)
	}
	return resp
}

func (s *Server) alterACLs(j adminJob) {
	var req proto.ACLsRequest
	if err := req.Decode(j.body); err != nil {
		s.reply(j, proto.InvalidRequest, nil)
		return
	}
	if req.Op == proto.ACLList {
		s.reply(j, proto.None, &proto.ACLsResponse{Entries: toWireACLs(s.cl.ctrl().State().ACLs())})
		return
	}
	entries := fromWireACLs(req.Entries)
	c := controller.Command{Type: controller.CmdCreateACLs, ACLs: entries}
	switch req.Op {
	case proto.ACLCreate:
	case proto.ACLDelete:
		c.Type = controller.CmdDeleteACLs
	default:
		s.reply(j, proto.None, &proto.ACLsResponse{Error: proto.InvalidRequest, Message: fmt.Sprintf("ACLs operation %d: want 0 (list), 1 (create) or 2 (delete)", req.Op)})
		return
	}
	s.proposeSecurity(j, c, func(code proto.ErrorCode, msg string) proto.Message {
		if code != proto.None {
			return &proto.ACLsResponse{Error: code, Message: msg}
		}
		s.log.Info("ACL entries changed", "op", c.Type, "entries", len(entries))
		return &proto.ACLsResponse{Entries: req.Entries}
	})
}

func toWireACLs(es []acl.Entry) []proto.ACLEntry {
	out := make([]proto.ACLEntry, len(es))
	for i, e := range es {
		out[i] = proto.ACLEntry{Principal: e.Principal, Resource: uint8(e.Resource), Pattern: uint8(e.Pattern),
			Name: e.Name, Operation: uint8(e.Operation), Permission: uint8(e.Permission)}
	}
	return out
}

func fromWireACLs(es []proto.ACLEntry) []acl.Entry {
	out := make([]acl.Entry, len(es))
	for i, e := range es {
		out[i] = acl.Entry{Principal: e.Principal, Resource: acl.ResourceType(e.Resource), Pattern: acl.PatternType(e.Pattern),
			Name: e.Name, Operation: acl.Operation(e.Operation), Permission: acl.Permission(e.Permission)}
	}
	return out
}
