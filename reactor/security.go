package reactor

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"slices"

	"github.com/xdg-go/scram"

	"github.com/ringmq/ringmq/acl"
	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/controller"
	"github.com/ringmq/ringmq/proto"
)

// Authentication and authorization (DESIGN.md §18). The users and ACL
// entries live in the controller's state; the admin goroutine builds a
// secTable from them at every reconcile and publishes it behind
// Server.sec (copy-on-write), so a reactor reads credentials and
// decisions with one atomic load and never waits.

// Anonymous is the principal of a connection that has not authenticated
// (every connection when server.sasl is off).
const Anonymous = "User:ANONYMOUS"

// secTable is one published version of the users and ACLs. Immutable.
type secTable struct {
	users map[string]*controller.User
	authz *acl.Authorizer
	acls  []acl.Entry // what authz was built from
}

// secState is the server's security setup: fixed at NewServer but for the
// published table.
type secState struct {
	sasl    bool // server.sasl = scram
	authzOn bool // server.authorization = on
	// fakeKey derives the salt and keys answered for an unknown user, so
	// that it looks like any user whose password is wrong.
	fakeKey [32]byte
	scram   [3]*scram.Server // by controller.Mechanism
	// broker is server.broker_user (nil: none, or SASL off), whose
	// credentials are brokerCreds (by mechanism), derived at start.
	broker      *brokerAuth
	brokerCreds [3]scram.StoredCredentials
	superusers  []string // server.superusers and the broker user
}

func (s *Server) initSecurity() error {
	sc := &s.sec
	sc.sasl = s.cfg.Server.SASL == config.SASLScram
	sc.authzOn = s.cfg.Server.Authorization == config.On
	if _, err := rand.Read(sc.fakeKey[:]); err != nil {
		return fmt.Errorf("security: random key: %w", err)
	}
	for _, m := range []controller.Mechanism{controller.ScramSHA256, controller.ScramSHA512} {
		gen := scram.SHA256
		if m == controller.ScramSHA512 {
			gen = scram.SHA512
		}
		srv, err := gen.NewServer(func(user string) (scram.StoredCredentials, error) {
			return s.credentials(m, user), nil
		})
		if err != nil {
			return fmt.Errorf("security: %s: %w", m, err)
		}
		sc.scram[m] = srv
	}
	sc.superusers = slices.Clone(s.cfg.Server.Superusers)
	if u := s.cfg.Server.BrokerUser; sc.sasl && u != "" {
		sc.broker = &brokerAuth{user: u, password: s.cfg.Server.BrokerPassword}
		sc.superusers = append(sc.superusers, "User:"+u)
		if err := sc.deriveBrokerCredentials(); err != nil {
			return err
		}
	}
	authz, err := acl.New(nil, sc.superusers)
	if err != nil {
		return fmt.Errorf("security: server.superusers: %w", err)
	}
	s.secTable.Store(&secTable{users: map[string]*controller.User{}, authz: authz})
	return nil
}

// publishSecurity replaces the published table when the controller's users
// or ACL entries changed (admin goroutine). An unchanged ACL list keeps its
// Authorizer, so the connections' decision caches stay valid.
func (s *Server) publishSecurity(st *controller.State) {
	old := s.secTable.Load()
	next := &secTable{users: make(map[string]*controller.User), authz: old.authz, acls: old.acls}
	for _, u := range st.Users() {
		next.users[u.Name] = &u
	}
	if acls := st.ACLs(); !slices.Equal(acls, old.acls) {
		authz, err := acl.New(acls, s.sec.superusers)
		if err != nil {
			// The controller validated every entry; keep the last good table.
			s.log.Error("ACL entries from the controller not applied", "err", err)
		} else {
			next.authz, next.acls = authz, slices.Clone(acls)
		}
	}
	s.secTable.Store(next)
}

// credentials returns user's stored credential for m, or, for an unknown
// user (or one without a credential for m), a fake one derived from the
// name: the exchange then fails at the proof exactly as for a wrong
// password. The fake is computed in both cases so that both take the same
// time. Called by the SCRAM server on a reactor: no I/O.
func (s *Server) credentials(m controller.Mechanism, user string) scram.StoredCredentials {
	fake := s.fakeCredentials(m, user)
	if b := s.sec.broker; b != nil && user == b.user {
		return s.sec.brokerCreds[m]
	}
	if u := s.secTable.Load().users[user]; u != nil {
		if c, ok := u.Credential(m); ok {
			return scram.StoredCredentials{
				KeyFactors: scram.KeyFactors{Salt: string(c.Salt), Iters: int(c.Iterations)},
				StoredKey:  c.StoredKey, ServerKey: c.ServerKey,
			}
		}
	}
	return fake
}

func (s *Server) fakeCredentials(m controller.Mechanism, user string) scram.StoredCredentials {
	h := sha256.New
	if m == controller.ScramSHA512 {
		h = sha512.New
	}
	derive := func(purpose string) []byte {
		mac := hmac.New(h, s.sec.fakeKey[:])
		mac.Write([]byte(purpose))
		mac.Write([]byte{0, byte(m)})
		mac.Write([]byte(user))
		return mac.Sum(nil)
	}
	return scram.StoredCredentials{
		KeyFactors: scram.KeyFactors{Salt: string(derive("salt")[:16]), Iters: controller.MinIterations},
		StoredKey:  derive("stored"), ServerKey: derive("server"),
	}
}

// mechanismOf maps a SASL mechanism name to the controller's number (0:
// unknown).
func mechanismOf(name string) controller.Mechanism {
	switch name {
	case proto.MechanismScramSHA256:
		return controller.ScramSHA256
	case proto.MechanismScramSHA512:
		return controller.ScramSHA512
	}
	return 0
}

// deriveBrokerCredentials salts the broker user's password for each
// mechanism (a random salt per start: each node verifies with its own).
func (sc *secState) deriveBrokerCredentials() error {
	for _, m := range []controller.Mechanism{controller.ScramSHA256, controller.ScramSHA512} {
		gen := scram.SHA256
		if m == controller.ScramSHA512 {
			gen = scram.SHA512
		}
		cl, err := gen.NewClient(sc.broker.user, sc.broker.password, "")
		if err != nil {
			return fmt.Errorf("security: server.broker_user: %w", err)
		}
		salt := make([]byte, 16)
		if _, err := rand.Read(salt); err != nil {
			return fmt.Errorf("security: random salt: %w", err)
		}
		cr, err := cl.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: controller.MinIterations})
		if err != nil {
			return fmt.Errorf("security: server.broker_user: %w", err)
		}
		sc.brokerCreds[m] = cr
	}
	return nil
}
