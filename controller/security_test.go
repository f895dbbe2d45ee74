package controller

import (
	"errors"
	"testing"

	"github.com/ringmq/ringmq/acl"
)

// TestSecurityCommands checks what upsert-user, delete-user, create-acls
// and delete-acls change and what they refuse.
func TestSecurityCommands(t *testing.T) {
	s := NewState(0)
	idx := uint64(0)
	apply := func(c Command) error { idx++; return s.Apply(idx, c) }
	alice := goldenCredential(ScramSHA256, 1)
	if err := apply(Command{Type: CmdUpsertUser, User: "alice", Credential: alice}); err != nil {
		t.Fatal(err)
	}
	// A second mechanism is added beside the first; the same one replaces it.
	if err := apply(Command{Type: CmdUpsertUser, User: "alice", Credential: goldenCredential(ScramSHA512, 2)}); err != nil {
		t.Fatal(err)
	}
	renewed := goldenCredential(ScramSHA256, 3)
	if err := apply(Command{Type: CmdUpsertUser, User: "alice", Credential: renewed}); err != nil {
		t.Fatal(err)
	}
	u := s.Users()
	if len(u) != 1 || len(u[0].Credentials) != 2 {
		t.Fatalf("users %+v", u)
	}
	if c, _ := u[0].Credential(ScramSHA256); c.Salt[0] != 3 {
		t.Fatalf("SCRAM-SHA-256 credential not replaced: %+v", c)
	}

	weak := goldenCredential(ScramSHA256, 4)
	weak.Iterations = 4095
	shortKey := goldenCredential(ScramSHA512, 4)
	shortKey.StoredKey = shortKey.StoredKey[:32]
	entry := acl.Entry{Principal: "User:alice", Resource: acl.ResourceTopic, Pattern: acl.PatternLiteral,
		Name: "orders", Operation: acl.OpRead, Permission: acl.Allow}
	bad := entry
	bad.Pattern, bad.Name = acl.PatternPrefixed, "*"
	for _, tc := range []struct {
		c    Command
		want error
	}{
		{Command{Type: CmdUpsertUser, User: "bob", Credential: weak}, ErrInvalid},
		{Command{Type: CmdUpsertUser, User: "bob", Credential: shortKey}, ErrInvalid},
		{Command{Type: CmdUpsertUser, User: "bob,x", Credential: alice}, ErrInvalid},
		{Command{Type: CmdUpsertUser, User: "", Credential: alice}, ErrInvalid},
		{Command{Type: CmdDeleteUser, User: "bob"}, ErrUnknownUser},
		{Command{Type: CmdCreateACLs}, ErrInvalid},
		{Command{Type: CmdCreateACLs, ACLs: []acl.Entry{entry, bad}}, ErrInvalid},
	} {
		if err := apply(tc.c); !errors.Is(err, tc.want) {
			t.Errorf("%s %q: %v, want %v", tc.c.Type, tc.c.User, err, tc.want)
		}
		if len(s.Users()) != 1 || len(s.Users()[0].Credentials) != 2 || len(s.ACLs()) != 0 {
			t.Errorf("rejected %s changed the state: %+v %v", tc.c.Type, s.Users(), s.ACLs())
		}
	}

	deny := entry
	deny.Permission = acl.Deny
	if err := apply(Command{Type: CmdCreateACLs, ACLs: []acl.Entry{entry, deny, entry}}); err != nil {
		t.Fatal(err)
	}
	if got := s.ACLs(); len(got) != 2 {
		t.Fatalf("acls %v, want the two distinct entries", got)
	}
	if err := apply(Command{Type: CmdDeleteACLs, ACLs: []acl.Entry{deny}}); err != nil {
		t.Fatal(err)
	}
	if got := s.ACLs(); len(got) != 1 || got[0] != entry {
		t.Fatalf("acls %v after deleting the deny", got)
	}
	if err := apply(Command{Type: CmdDeleteUser, User: "alice"}); err != nil || len(s.Users()) != 0 {
		t.Fatalf("delete alice: %v, users %+v", err, s.Users())
	}
	got, _, err := ParseSnapshot(AppendSnapshot(nil, s))
	if err != nil || !got.Equal(s) {
		t.Fatalf("snapshot with ACLs and no users: %v", err)
	}
}
