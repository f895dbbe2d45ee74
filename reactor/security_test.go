package reactor

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/acl"
	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/controller"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

// credentialOf turns a client-side credential into the controller's form.
func credentialOf(t *testing.T, req *proto.AlterUserRequest) controller.Credential {
	t.Helper()
	return controller.Credential{Mechanism: mechanismOf(req.Mechanism), Salt: req.Salt, Iterations: req.Iterations,
		StoredKey: req.StoredKey, ServerKey: req.ServerKey}
}

// TestScramRFC7677Vector runs the SCRAM-SHA-256 exchange of RFC 7677
// section 3 against the server's conversation and credential lookup, with
// the credential the client derives from "pencil" and the RFC's salt.
func TestScramRFC7677Vector(t *testing.T) {
	s := &Server{log: testLogger()}
	if err := s.initSecurity(); err != nil {
		t.Fatal(err)
	}
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	cred, err := client.ScramCredentialWithSalt("user", proto.MechanismScramSHA256, "pencil", 4096, salt)
	if err != nil {
		t.Fatal(err)
	}
	st := controller.NewState(0)
	if err := st.Apply(1, controller.Command{Type: controller.CmdUpsertUser, User: "user", Credential: credentialOf(t, cred)}); err != nil {
		t.Fatal(err)
	}
	s.publishSecurity(st)

	srv := s.sec.scram[controller.ScramSHA256].WithNonceGenerator(func() string { return "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0" })
	conv := srv.NewConversation()
	first, err := conv.Step("n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
	if want := "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"; err != nil || first != want {
		t.Fatalf("server-first %q, %v; want %q", first, err, want)
	}
	final, err := conv.Step("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
	if want := "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="; err != nil || final != want || !conv.Valid() {
		t.Fatalf("server-final %q, %v (valid %v); want %q", final, err, conv.Valid(), want)
	}

	// The same proof with another password's credential fails.
	wrong, _ := client.ScramCredentialWithSalt("user", proto.MechanismScramSHA256, "pencil2", 4096, salt)
	st2 := controller.NewState(0)
	_ = st2.Apply(1, controller.Command{Type: controller.CmdUpsertUser, User: "user", Credential: credentialOf(t, wrong)})
	s.publishSecurity(st2)
	conv = srv.NewConversation()
	_, _ = conv.Step("n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
	if _, err := conv.Step("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="); err == nil || conv.Valid() {
		t.Fatal("a proof for another password was accepted")
	}
}

const adminPassword = "admin-secret"

// secureServer starts a server with SCRAM and authorization on, creates
// the superuser admin through the loopback bootstrap and returns an Admin
// authenticated as it.
func secureServer(t *testing.T) (*Server, *client.Admin) {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	cfg.Server.SASL = config.SASLScram
	cfg.Server.Authorization = config.On
	cfg.Server.Superusers = []string{"User:admin"}
	srv := startServer(t, cfg)
	boot, err := client.NewAdmin(srv.Addr(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer boot.Close()
	if err := boot.UpsertUser(ringtest.Ctx(t), "admin", proto.MechanismScramSHA512, adminPassword, 0); err != nil {
		t.Fatalf("bootstrap the first user: %v", err)
	}
	admin, err := client.NewAdmin(srv.Addr(), client.Options{SASL: client.SASL{User: "admin", Password: adminPassword, Mechanism: proto.MechanismScramSHA512}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	return srv, admin
}

func TestSaslBootstrapAndRefusals(t *testing.T) {
	srv, admin := secureServer(t)
	ctx := ringtest.Ctx(t)
	if err := admin.UpsertUser(ctx, "alice", proto.MechanismScramSHA256, "alice-pw", 8192); err != nil {
		t.Fatal(err)
	}

	// The bootstrap is over: a second unauthenticated create is refused.
	boot, err := client.NewAdmin(srv.Addr(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer boot.Close()
	if err := boot.UpsertUser(ctx, "mallory", proto.MechanismScramSHA256, "x", 0); !errors.Is(err, proto.SaslAuthenticationRequired) {
		t.Fatalf("unauthenticated user create after the bootstrap: %v, want SASL_AUTHENTICATION_REQUIRED", err)
	}

	// Before authentication only Hello and SASL are served; the connection
	// is closed after the refusal.
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	if _, err := c.Metadata(ctx, &proto.MetadataRequest{}); !errors.Is(err, proto.SaslAuthenticationRequired) {
		t.Fatalf("metadata before authentication: %v, want SASL_AUTHENTICATION_REQUIRED", err)
	}
	if _, err := c.Metadata(ctx, &proto.MetadataRequest{}); !errors.Is(err, client.ErrConnectionLost) && !errors.Is(err, client.ErrClosed) {
		t.Fatalf("second request on a refused connection: %v, want the connection closed", err)
	}

	// A right password works with the mechanism it was set for.
	ok := ringtest.Dial(t, srv.Addr(), client.Options{SASL: client.SASL{User: "alice", Password: "alice-pw"}})
	if _, err := ok.Metadata(ctx, &proto.MetadataRequest{}); err != nil {
		t.Fatalf("metadata as alice: %v", err)
	}
	users, err := admin.ListUsers(ctx)
	if err != nil || len(users) != 2 || users[1].Name != "alice" || users[1].Mechanisms[0].Iterations != 8192 {
		t.Fatalf("users %+v, %v", users, err)
	}

	// A wrong password and an unknown user get the same answer.
	_, wrongErr := client.Dial(ctx, srv.Addr(), client.Options{SASL: client.SASL{User: "alice", Password: "nope"}})
	_, unknownErr := client.Dial(ctx, srv.Addr(), client.Options{SASL: client.SASL{User: "nobody", Password: "nope"}})
	for _, err := range []error{wrongErr, unknownErr} {
		if !errors.Is(err, proto.SaslAuthenticationFailed) || !strings.Contains(err.Error(), authFailedMessage) {
			t.Fatalf("bad credentials: %v, want SASL_AUTHENTICATION_FAILED: %s", err, authFailedMessage)
		}
	}
	// The other mechanism has no credential for alice: the same answer.
	if _, err := client.Dial(ctx, srv.Addr(), client.Options{SASL: client.SASL{User: "alice", Password: "alice-pw",
		Mechanism: proto.MechanismScramSHA512}}); !errors.Is(err, proto.SaslAuthenticationFailed) {
		t.Fatalf("alice with SCRAM-SHA-512: %v", err)
	}
}

// TestUnknownUserLooksLikeAUser checks the server-first message for an
// unknown user: a 16-byte salt and the default iterations like a real
// user's, the same on every attempt (a changing salt would tell it apart).
func TestUnknownUserLooksLikeAUser(t *testing.T) {
	srv, admin := secureServer(t)
	ctx := ringtest.Ctx(t)
	if err := admin.UpsertUser(ctx, "alice", proto.MechanismScramSHA256, "alice-pw", 0); err != nil {
		t.Fatal(err)
	}
	serverFirst := func(user string) string {
		c := ringtest.Dial(t, srv.Addr(), client.Options{})
		hs := &proto.SaslHandshakeResponse{}
		if err := c.Do(ctx, &proto.SaslHandshakeRequest{Mechanism: proto.MechanismScramSHA256}, hs); err != nil || hs.Error != proto.None {
			t.Fatalf("handshake: %v %v", err, hs.Error)
		}
		resp := &proto.SaslAuthenticateResponse{}
		if err := c.Do(ctx, &proto.SaslAuthenticateRequest{Auth: []byte("n,,n=" + user + ",r=abcdefgh")}, resp); err != nil || resp.Error != proto.None {
			t.Fatalf("client-first for %s: %v %v %s", user, err, resp.Error, resp.Message)
		}
		_, rest, _ := strings.Cut(string(resp.Auth), ",s=") // drop the nonce
		return rest
	}
	known, unknown := serverFirst("alice"), serverFirst("nobody")
	salt := func(s string) []byte { b, _ := base64.StdEncoding.DecodeString(strings.Split(s, ",")[0]); return b }
	if len(salt(known)) != 16 || len(salt(unknown)) != 16 || !strings.HasSuffix(unknown, ",i=4096") || !strings.HasSuffix(known, ",i=4096") {
		t.Fatalf("server-first of a user %q and of an unknown user %q differ in shape", known, unknown)
	}
	if again := serverFirst("nobody"); again != unknown {
		t.Fatalf("unknown user's salt changed between attempts: %q, then %q", unknown, again)
	}
}

func batchOf(v string) []byte {
	var b proto.BatchBuilder
	b.Reset(nil)
	b.Append(time.Now().UnixMilli(), nil, []byte(v), nil)
	return b.Finish()
}

func produceCode(t *testing.T, c *client.Conn, topic string) proto.ErrorCode {
	t.Helper()
	resp, err := c.Produce(ringtest.Ctx(t), &proto.ProduceRequest{Acks: proto.AcksLeader, Topics: []proto.ProduceTopic{{
		Name: []byte(topic), Partitions: []proto.ProducePartition{{Partition: 0, Records: batchOf("v")}}}}})
	if err != nil {
		t.Fatalf("produce %s: %v", topic, err)
	}
	return resp.Topics[0].Partitions[0].Error
}

func fetchCode(t *testing.T, c *client.Conn, topic string) proto.ErrorCode {
	t.Helper()
	resp, err := c.Fetch(ringtest.Ctx(t), &proto.FetchRequest{MaxBytes: 1 << 20, Topics: []proto.FetchTopic{{Name: []byte(topic),
		Partitions: []proto.FetchPartition{{Partition: 0, PartitionMaxBytes: 1 << 20}}}}})
	if err != nil {
		t.Fatalf("fetch %s: %v", topic, err)
	}
	return resp.Topics[0].Partitions[0].Error
}

func allow(principal string, rt acl.ResourceType, name string, op acl.Operation) acl.Entry {
	return acl.Entry{Principal: principal, Resource: rt, Pattern: acl.PatternLiteral, Name: name, Operation: op, Permission: acl.Allow}
}

// TestAuthorizationEndToEnd checks the refusals of produce, fetch, group
// commit and topic administration, Metadata filtered to what the principal
// may describe, and ACL changes taking effect on a live connection.
func TestAuthorizationEndToEnd(t *testing.T) {
	srv, admin := secureServer(t)
	ctx := ringtest.Ctx(t)
	for _, u := range []string{"alice", "bob"} {
		if err := admin.UpsertUser(ctx, u, proto.MechanismScramSHA256, u+"-pw", 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"orders", "secret"} {
		if err := admin.CreateTopic(ctx, name, 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := admin.CreateACLs(ctx, []acl.Entry{
		allow("User:alice", acl.ResourceTopic, "orders", acl.OpWrite),
		allow("User:alice", acl.ResourceTopic, "orders", acl.OpRead),
		allow("User:alice", acl.ResourceGroup, "billing", acl.OpRead),
	}); err != nil {
		t.Fatal(err)
	}
	alice := ringtest.Dial(t, srv.Addr(), client.Options{SASL: client.SASL{User: "alice", Password: "alice-pw"}})
	bob := ringtest.Dial(t, srv.Addr(), client.Options{SASL: client.SASL{User: "bob", Password: "bob-pw"}})

	if code := produceCode(t, alice, "orders"); code != proto.None {
		t.Fatalf("alice produce orders: %v", code)
	}
	for _, tc := range []struct {
		who  string
		c    *client.Conn
		code proto.ErrorCode
	}{{"alice produce secret", alice, produceCode(t, alice, "secret")}, {"bob produce orders", bob, produceCode(t, bob, "orders")},
		{"bob fetch orders", bob, fetchCode(t, bob, "orders")}, {"alice fetch secret", alice, fetchCode(t, alice, "secret")}} {
		if tc.code != proto.TopicAuthorizationFailed {
			t.Errorf("%s: %v, want TOPIC_AUTHORIZATION_FAILED", tc.who, tc.code)
		}
	}
	if code := fetchCode(t, alice, "orders"); code != proto.None {
		t.Fatalf("alice fetch orders: %v", code)
	}

	commit := func(c *client.Conn, group string) error {
		_, err := c.OffsetCommit(ctx, &proto.OffsetCommitRequest{Group: []byte(group), Topics: []proto.OffsetCommitTopic{{
			Name: []byte("orders"), Partitions: []proto.OffsetCommitPartition{{Partition: 0, Offset: 1}}}}})
		return err
	}
	if err := commit(alice, "billing"); err != nil {
		t.Fatalf("alice commit billing: %v", err)
	}
	if err := commit(alice, "audit"); !errors.Is(err, proto.GroupAuthorizationFailed) {
		t.Errorf("alice commit audit: %v, want GROUP_AUTHORIZATION_FAILED", err)
	}
	if err := commit(bob, "billing"); !errors.Is(err, proto.GroupAuthorizationFailed) {
		t.Errorf("bob commit billing: %v, want GROUP_AUTHORIZATION_FAILED", err)
	}

	_, err := alice.CreateTopic(ctx, &proto.CreateTopicRequest{Name: "more", Partitions: 1, ReplicationFactor: 1})
	if !errors.Is(err, proto.TopicAuthorizationFailed) {
		t.Errorf("alice create topic: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	if _, err := alice.DeleteTopic(ctx, &proto.DeleteTopicRequest{Name: "orders"}); !errors.Is(err, proto.TopicAuthorizationFailed) {
		t.Errorf("alice delete topic: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	if err := alice.Do(ctx, &proto.ClusterStatusRequest{}, &proto.ClusterStatusResponse{}); !errors.Is(err, proto.ClusterAuthorizationFailed) {
		t.Errorf("alice cluster status: %v, want CLUSTER_AUTHORIZATION_FAILED", err)
	}

	// Metadata lists only what alice may describe (read or write on orders).
	md, err := alice.Metadata(ctx, &proto.MetadataRequest{})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].Name != "orders" {
		t.Fatalf("alice's metadata %+v, %v; want orders alone", md, err)
	}
	md, err = alice.Metadata(ctx, &proto.MetadataRequest{Topics: []string{"secret"}})
	if err != nil || md.Topics[0].Error != proto.TopicAuthorizationFailed {
		t.Fatalf("alice's metadata of secret %+v, %v", md, err)
	}
	if md, err := admin.ListTopics(ctx); err != nil || len(md) != 2 {
		t.Fatalf("the superuser's topics %+v, %v", md, err)
	}

	// An ACL change takes effect on bob's open connection (whose cache
	// holds the refusal), both ways.
	grant := []acl.Entry{allow("User:bob", acl.ResourceTopic, "orders", acl.OpWrite)}
	if err := admin.CreateACLs(ctx, grant); err != nil {
		t.Fatal(err)
	}
	if code := produceCode(t, bob, "orders"); code != proto.None {
		t.Fatalf("bob produce after the grant: %v", code)
	}
	if err := admin.DeleteACLs(ctx, grant); err != nil {
		t.Fatal(err)
	}
	if code := produceCode(t, bob, "orders"); code != proto.TopicAuthorizationFailed {
		t.Fatalf("bob produce after the revoke: %v", code)
	}
	if got, err := admin.ListACLs(ctx); err != nil || len(got) != 3 {
		t.Fatalf("ACLs %v, %v; want alice's three", got, err)
	}
	// Only the cluster's alterers manage ACLs.
	bobAdmin, err := client.NewAdmin(srv.Addr(), client.Options{SASL: client.SASL{User: "bob", Password: "bob-pw"}})
	if err != nil {
		t.Fatal(err)
	}
	defer bobAdmin.Close()
	if err := bobAdmin.CreateACLs(ctx, grant); !errors.Is(err, proto.ClusterAuthorizationFailed) {
		t.Fatalf("bob creates an ACL: %v, want CLUSTER_AUTHORIZATION_FAILED", err)
	}
}
