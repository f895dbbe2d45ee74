package controller

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ringmq/ringmq/acl"
)

// Mechanism is a SCRAM mechanism a credential is for. Persisted: never
// renumber.
type Mechanism uint8

const (
	ScramSHA256 Mechanism = 1
	ScramSHA512 Mechanism = 2
)

// KeyLen is the length of the mechanism's StoredKey and ServerKey (its hash
// size), 0 for an unknown mechanism.
func (m Mechanism) KeyLen() int {
	switch m {
	case ScramSHA256:
		return 32
	case ScramSHA512:
		return 64
	}
	return 0
}

func (m Mechanism) String() string {
	switch m {
	case ScramSHA256:
		return "SCRAM-SHA-256"
	case ScramSHA512:
		return "SCRAM-SHA-512"
	}
	return fmt.Sprintf("mechanism-%d", uint8(m))
}

// Limits of the security commands; Apply and ParseCommand both enforce them.
const (
	MaxUserName     = 255
	MaxSalt         = 128
	MinIterations   = 4096
	MaxIterations   = 1 << 24
	MaxUsers        = 1 << 16
	MaxACLs         = 1 << 16 // in the state
	MaxACLsPerCmd   = 1024
	maxACLFrameSize = MaxACLsPerCmd * (2*(MaxUserName+8) + 4*maxNameLen)
)

// Credential is one salted SCRAM credential (RFC 5802): the password is
// never stored, only what the server needs to verify a proof.
type Credential struct {
	Mechanism  Mechanism
	Salt       []byte
	Iterations uint32
	StoredKey  []byte
	ServerKey  []byte
}

// User is one user and its credentials, ordered by mechanism.
type User struct {
	Name        string
	Credentials []Credential
}

// Credential returns u's credential for m.
func (u *User) Credential(m Mechanism) (Credential, bool) {
	for _, c := range u.Credentials {
		if c.Mechanism == m {
			return c, true
		}
	}
	return Credential{}, false
}

// ValidUserName reports whether name may name a user: 1-255 bytes of
// [A-Za-z0-9._@-] (no ',' or '=', which SCRAM escapes, and no ':').
func ValidUserName(name string) bool {
	if name == "" || len(name) > MaxUserName {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._@-", c) >= 0) {
			return false
		}
	}
	return true
}

// Users returns the users ordered by name; their slices are shared with
// the state and must not be changed.
func (s *State) Users() []User {
	names := make([]string, 0, len(s.users))
	for n := range s.users {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]User, 0, len(names))
	for _, n := range names {
		out = append(out, *s.users[n])
	}
	return out
}

// ACLs returns the ACL entries in the order they were created (shared with
// the state: do not change them).
func (s *State) ACLs() []acl.Entry { return s.acls }

func (s *State) validateSecurity(c Command) error {
	switch c.Type {
	case CmdUpsertUser:
		return validateCredential(c.User, c.Credential, len(s.users), s.users[c.User] != nil)
	case CmdDeleteUser:
		if _, ok := s.users[c.User]; !ok {
			return fmt.Errorf("%w: %q", ErrUnknownUser, c.User)
		}
		return nil
	case CmdCreateACLs, CmdDeleteACLs:
		if len(c.ACLs) == 0 || len(c.ACLs) > MaxACLsPerCmd {
			return fmt.Errorf("%w: %d ACL entries (want 1-%d)", ErrInvalid, len(c.ACLs), MaxACLsPerCmd)
		}
		for i, e := range c.ACLs {
			if err := e.Validate(); err != nil {
				return fmt.Errorf("%w: entry %d (%s): %v", ErrInvalid, i, e, err)
			}
		}
		if c.Type == CmdCreateACLs && len(s.acls)+len(c.ACLs) > MaxACLs {
			return fmt.Errorf("%w: %d ACL entries exist, at most %d", ErrInvalid, len(s.acls), MaxACLs)
		}
	}
	return nil
}

func validateCredential(name string, cr Credential, users int, known bool) error {
	switch {
	case !ValidUserName(name):
		return fmt.Errorf("%w: user name %q (want 1-%d of [A-Za-z0-9._@-])", ErrInvalid, name, MaxUserName)
	case cr.Mechanism.KeyLen() == 0:
		return fmt.Errorf("%w: %s", ErrInvalid, cr.Mechanism)
	case cr.Iterations < MinIterations || cr.Iterations > MaxIterations:
		return fmt.Errorf("%w: %d iterations (want %d-%d)", ErrInvalid, cr.Iterations, MinIterations, MaxIterations)
	case len(cr.Salt) < 8 || len(cr.Salt) > MaxSalt:
		return fmt.Errorf("%w: salt of %d bytes (want 8-%d)", ErrInvalid, len(cr.Salt), MaxSalt)
	case len(cr.StoredKey) != cr.Mechanism.KeyLen() || len(cr.ServerKey) != cr.Mechanism.KeyLen():
		return fmt.Errorf("%w: %s keys of %d and %d bytes (want %d)", ErrInvalid, cr.Mechanism,
			len(cr.StoredKey), len(cr.ServerKey), cr.Mechanism.KeyLen())
	case !known && users >= MaxUsers:
		return fmt.Errorf("%w: %d users exist, at most %d", ErrInvalid, users, MaxUsers)
	}
	return nil
}

// applySecurity applies a validated user or ACL command.
func (s *State) applySecurity(c Command) {
	switch c.Type {
	case CmdUpsertUser:
		u := s.users[c.User]
		if u == nil {
			u = &User{Name: c.User}
			s.users[c.User] = u
		}
		u.Credentials = upsertCredential(u.Credentials, cloneCredential(c.Credential))
	case CmdDeleteUser:
		delete(s.users, c.User)
	case CmdCreateACLs:
		for _, e := range c.ACLs {
			if !slices.Contains(s.acls, e) {
				s.acls = append(s.acls, e)
			}
		}
	case CmdDeleteACLs:
		s.acls = slices.DeleteFunc(slices.Clone(s.acls), func(e acl.Entry) bool { return slices.Contains(c.ACLs, e) })
	}
}

// upsertCredential replaces cs's credential of cr's mechanism or adds it,
// keeping cs ordered by mechanism; cs is not changed in place.
func upsertCredential(cs []Credential, cr Credential) []Credential {
	out := make([]Credential, 0, len(cs)+1)
	for _, c := range cs {
		if c.Mechanism != cr.Mechanism {
			out = append(out, c)
		}
	}
	out = append(out, cr)
	slices.SortFunc(out, func(a, b Credential) int { return int(a.Mechanism) - int(b.Mechanism) })
	return out
}

func cloneCredential(c Credential) Credential {
	c.Salt, c.StoredKey, c.ServerKey = slices.Clone(c.Salt), slices.Clone(c.StoredKey), slices.Clone(c.ServerKey)
	return c
}

func appendCredential(b []byte, c Credential) []byte {
	b = appendUvarint(b, uint64(c.Mechanism))
	b = appendBytes(b, c.Salt)
	b = appendUvarint(b, uint64(c.Iterations))
	b = appendBytes(b, c.StoredKey)
	return appendBytes(b, c.ServerKey)
}

func (r *reader) credential() Credential {
	var c Credential
	c.Mechanism = Mechanism(r.uvarint(255, "mechanism"))
	c.Salt = r.bytes(MaxSalt, "salt")
	c.Iterations = uint32(r.uvarint(MaxIterations, "iterations"))
	c.StoredKey = r.bytes(64, "stored key")
	c.ServerKey = r.bytes(64, "server key")
	return c
}

func appendBytes(dst, b []byte) []byte {
	dst = appendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func (r *reader) bytes(max int, what string) []byte {
	s := r.string(max, what)
	if s == "" {
		return nil
	}
	return []byte(s)
}

// appendACLs encodes entries as one acl.AppendEntries frame in a string.
func appendACLs(b []byte, es []acl.Entry) []byte {
	return appendBytes(b, acl.AppendEntries(nil, es))
}

func (r *reader) acls(max int, what string) []acl.Entry {
	raw := r.string(max, what)
	if r.err != nil {
		return nil
	}
	es, rest, err := acl.ParseEntries([]byte(raw))
	if err != nil || len(rest) != 0 {
		r.fail("%s: %v (%d trailing bytes)", what, err, len(rest))
		return nil
	}
	if len(es) == 0 {
		return nil
	}
	return es
}

// appendSecurity appends the snapshot's users and ACLs. A state without
// either appends nothing, so snapshots of such states keep the bytes they
// had before users existed.
func appendSecurity(b []byte, s *State) []byte {
	if len(s.users) == 0 && len(s.acls) == 0 {
		return b
	}
	users := s.Users()
	b = appendUvarint(b, uint64(len(users)))
	for _, u := range users {
		b = appendString(b, u.Name)
		b = appendUvarint(b, uint64(len(u.Credentials)))
		for _, c := range u.Credentials {
			b = appendCredential(b, c)
		}
	}
	return appendACLs(b, s.acls)
}

// parseSecurity reads what appendSecurity wrote, if anything is left.
func parseSecurity(r *reader, s *State) {
	if r.err != nil || len(r.b) == 0 {
		return
	}
	n := r.count(MaxUsers, "users")
	prev := ""
	for i := 0; i < n && r.err == nil; i++ {
		u := &User{Name: r.string(MaxUserName, "user")}
		if i > 0 && u.Name <= prev && r.err == nil {
			r.fail("users out of order at %q", u.Name)
		}
		prev = u.Name
		nc := r.count(2, "credentials")
		for j := 0; j < nc && r.err == nil; j++ {
			c := r.credential()
			if err := validateCredential(u.Name, c, 0, true); err != nil {
				r.fail("user %q: %v", u.Name, err)
			}
			if j > 0 && c.Mechanism <= u.Credentials[j-1].Mechanism && r.err == nil {
				r.fail("user %q: credentials out of order", u.Name)
			}
			u.Credentials = append(u.Credentials, c)
		}
		if _, dup := s.users[u.Name]; (dup || nc == 0) && r.err == nil {
			r.fail("user %q repeated or without credentials", u.Name)
		}
		s.users[u.Name] = u
	}
	s.acls = r.acls(MaxSnapshotSize, "acls")
	if len(s.users) == 0 && len(s.acls) == 0 && r.err == nil {
		r.fail("an empty security part") // never written
	}
	if _, err := acl.New(s.acls, nil); err != nil && r.err == nil {
		r.fail("acls: %v", err)
	}
}
