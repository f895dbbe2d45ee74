package reactor

import (
	"fmt"
	"testing"

	"github.com/ringmq/ringmq/acl"
	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

// authzReactor is a reactor with just what authorized reads: authorization
// on and a published Authorizer built from entries.
func authzReactor(t *testing.T, entries ...acl.Entry) *Reactor {
	t.Helper()
	s := &Server{}
	s.sec.authzOn = true
	publishACLs(t, s, entries...)
	return &Reactor{srv: s}
}

func publishACLs(t *testing.T, s *Server, entries ...acl.Entry) {
	t.Helper()
	a, err := acl.New(entries, []string{"User:admin"})
	if err != nil {
		t.Fatal(err)
	}
	s.secTable.Store(&secTable{authz: a, acls: entries})
}

func TestAuthorizationCache(t *testing.T) {
	write := allow("User:alice", acl.ResourceTopic, "orders", acl.OpWrite)
	r := authzReactor(t, write)
	c := &conn{principal: "User:alice"}
	name := []byte("orders")
	if !authorized(r, c, acl.OpWrite, acl.ResourceTopic, name) || authorized(r, c, acl.OpRead, acl.ResourceTopic, name) ||
		!authorized(r, c, acl.OpDescribe, acl.ResourceTopic, name) || authorized(r, c, acl.OpRead, acl.ResourceGroup, name) {
		t.Fatal("decisions differ from the ACL: write and describe on topic orders only")
	}
	// A decided question is answered from the cache without allocating.
	if n := testing.AllocsPerRun(100, func() {
		authorized(r, c, acl.OpWrite, acl.ResourceTopic, name)
		authorized(r, c, acl.OpRead, acl.ResourceTopic, name)
	}); n != 0 {
		t.Fatalf("%v allocations per cached decision", n)
	}
	// A new Authorizer empties the cache: the grant is seen at once.
	publishACLs(t, r.srv, write, allow("User:alice", acl.ResourceTopic, "orders", acl.OpRead))
	if !authorized(r, c, acl.OpRead, acl.ResourceTopic, name) {
		t.Fatal("a new grant is not seen by a connection that cached the refusal")
	}
	// Bounded: many names never grow it past authzCacheMax.
	for i := range 3 * authzCacheMax {
		authorized(r, c, acl.OpRead, acl.ResourceTopic, fmt.Sprintf("t%d", i))
		if len(c.authz.m) > authzCacheMax {
			t.Fatalf("cache holds %d names, bound %d", len(c.authz.m), authzCacheMax)
		}
	}
	// Authorization off: everything is allowed and nothing is cached.
	r.srv.sec.authzOn = false
	other := &conn{principal: "User:nobody"}
	if !authorized(r, other, acl.OpDelete, acl.ResourceCluster, acl.ClusterName) || len(other.authz.m) != 0 {
		t.Fatal("authorization off refused or cached")
	}
}

// TestHandoffKeepsAuthentication authenticates a connection, then moves it
// to the other reactor with a Hello asking for that shard: the connection
// keeps its principal there.
func TestHandoffKeepsAuthentication(t *testing.T) {
	srv, admin := secureServer(t)
	ctx := ringtest.Ctx(t)
	if err := admin.UpsertUser(ctx, "alice", proto.MechanismScramSHA256, "alice-pw", 0); err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateTopic(ctx, "orders", 1, nil); err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateACLs(ctx, []acl.Entry{allow("User:alice", acl.ResourceTopic, "orders", acl.OpDescribe)}); err != nil {
		t.Fatal(err)
	}
	c := ringtest.Dial(t, srv.Addr(), client.Options{SASL: client.SASL{User: "alice", Password: "alice-pw"}})
	from := c.Hello().Shard
	var hello proto.HelloResponse
	if err := c.Do(ctx, &proto.HelloRequest{MinVersion: proto.ProtocolVersion, MaxVersion: proto.ProtocolVersion,
		RequestedShard: int16(1 - from)}, &hello); err != nil || !hello.Moved || hello.Shard != 1-from {
		t.Fatalf("hand-off from shard %d: %+v, %v", from, hello, err)
	}
	md, err := c.Metadata(ctx, &proto.MetadataRequest{})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].Name != "orders" {
		t.Fatalf("metadata after the hand-off: %+v, %v; want alice's view (orders)", md, err)
	}
}
