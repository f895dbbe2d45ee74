package client

import (
	"context"

	"github.com/ringmq/ringmq/acl"
	"github.com/ringmq/ringmq/proto"
)

// Users and ACLs (server.sasl, server.authorization). Changes go through
// the controller; each call returns once the change is in effect on the
// node that answered.

// UpsertUser creates user name, or replaces its credential for mechanism
// (proto.MechanismScramSHA256 or -512), salting password here
// (ScramCredential): only the salt, the iteration count and the derived
// keys are sent. iterations 0 means DefaultScramIterations.
func (a *Admin) UpsertUser(ctx context.Context, name, mechanism, password string, iterations int) error {
	req, err := ScramCredential(name, mechanism, password, iterations)
	if err != nil {
		return err
	}
	return a.alterUser(ctx, req)
}

// DeleteUser removes user name and all its credentials. Connections it
// authenticated stay open until they close.
func (a *Admin) DeleteUser(ctx context.Context, name string) error {
	return a.alterUser(ctx, &proto.AlterUserRequest{Delete: true, Name: name})
}

func (a *Admin) alterUser(ctx context.Context, req *proto.AlterUserRequest) error {
	return a.anyNode(ctx, false, func(c *Conn) error {
		resp, err := roundTrip[proto.AlterUserResponse](ctx, c, req)
		if err != nil {
			return err
		}
		return codeErr(proto.APIAlterUser, req.Name, resp.Error, resp.Message)
	})
}

// ListUsers lists the users by name with their mechanisms.
func (a *Admin) ListUsers(ctx context.Context) ([]proto.UserInfo, error) {
	var users []proto.UserInfo
	err := a.anyNode(ctx, true, func(c *Conn) error {
		resp, err := roundTrip[proto.ListUsersResponse](ctx, c, &proto.ListUsersRequest{})
		if err == nil {
			users = resp.Users
		}
		return err
	})
	return users, err
}

// CreateACLs adds entries (those present already are kept once).
func (a *Admin) CreateACLs(ctx context.Context, entries []acl.Entry) error {
	_, err := a.acls(ctx, proto.ACLCreate, entries)
	return err
}

// DeleteACLs removes the entries equal to one of entries.
func (a *Admin) DeleteACLs(ctx context.Context, entries []acl.Entry) error {
	_, err := a.acls(ctx, proto.ACLDelete, entries)
	return err
}

// ListACLs returns every ACL entry in the order they were created.
func (a *Admin) ListACLs(ctx context.Context) ([]acl.Entry, error) {
	return a.acls(ctx, proto.ACLList, nil)
}

func (a *Admin) acls(ctx context.Context, op uint8, entries []acl.Entry) ([]acl.Entry, error) {
	req := &proto.ACLsRequest{Op: op}
	for _, e := range entries {
		req.Entries = append(req.Entries, proto.ACLEntry{Principal: e.Principal, Resource: uint8(e.Resource),
			Pattern: uint8(e.Pattern), Name: e.Name, Operation: uint8(e.Operation), Permission: uint8(e.Permission)})
	}
	var out []acl.Entry
	err := a.anyNode(ctx, op == proto.ACLList, func(c *Conn) error {
		resp, err := roundTrip[proto.ACLsResponse](ctx, c, req)
		if err != nil {
			return err
		}
		if err := codeErr(proto.APIACLs, "", resp.Error, resp.Message); err != nil {
			return err
		}
		out = out[:0]
		for _, e := range resp.Entries {
			out = append(out, acl.Entry{Principal: e.Principal, Resource: acl.ResourceType(e.Resource),
				Pattern: acl.PatternType(e.Pattern), Name: e.Name, Operation: acl.Operation(e.Operation),
				Permission: acl.Permission(e.Permission)})
		}
		return nil
	})
	return out, err
}
