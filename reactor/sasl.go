package reactor

import (
	"github.com/xdg-go/scram"

	"github.com/ringmq/ringmq/proto"
)

// SASL authentication on the reactor. SaslHandshake picks the mechanism
// and starts a SCRAM server conversation; each SaslAuthenticate feeds it
// one client message. The conversation is CPU only (HMACs over the stored
// keys: the password's PBKDF2 was done when the user was created), and the
// credential lookup reads the published table, so nothing here waits.
// Any failure answers SASL_AUTHENTICATION_FAILED with the same words, and
// the connection closes once the answer is sent (as Kafka does).

// saslExchange is one connection's exchange in progress.
type saslExchange struct {
	mechanism string
	conv      *scram.ServerConversation
}

// connAuth is a connection's authentication as a shard hand-off carries it.
type connAuth struct {
	principal string
	authed    bool
	sasl      *saslExchange
}

// authFailedMessage is the one answer to a failed exchange: an unknown
// user and a wrong password read alike.
const authFailedMessage = "authentication failed: unknown user, wrong password or an invalid exchange"

// enabledMechanisms is what SaslHandshake lists when SASL is on.
var enabledMechanisms = []string{proto.MechanismScramSHA256, proto.MechanismScramSHA512}

// preAuthAPI reports whether api is served before a connection has
// authenticated: version negotiation, the SASL exchange, and AlterUser
// (which itself allows only the bootstrap of the first user).
func preAuthAPI(api proto.APIKey) bool {
	switch api {
	case proto.APIHello, proto.APISaslHandshake, proto.APISaslAuthenticate, proto.APIAlterUser:
		return true
	}
	return false
}

// refuseUnauthenticated answers a request sent before authentication
// SASL_AUTHENTICATION_REQUIRED and closes the connection after it.
func (r *Reactor) refuseUnauthenticated(q *request) {
	if q.hdr.API == proto.APIRaftMessages { // one-way: no answer
		r.refuseUnauthorized(q, proto.SaslAuthenticationRequired)
		return
	}
	r.respondAndClose(q, proto.SaslAuthenticationRequired, nil)
}

// respondAndClose answers q, reads nothing more from its connection and
// closes it once what was queued is sent.
func (r *Reactor) respondAndClose(q *request, code proto.ErrorCode, resp proto.Message) {
	c := q.c
	r.respond(q, code, resp)
	c.closeQueued = true
	c.in = c.in[:0]
}

func (r *Reactor) handleSaslHandshake(q *request, body []byte) {
	var req proto.SaslHandshakeRequest
	if err := req.Decode(body); err != nil {
		r.respondError(q, proto.InvalidRequest)
		return
	}
	c := q.c
	sc := &r.srv.sec
	if !sc.sasl {
		// Nothing to authenticate against: an empty list says so.
		r.respond(q, proto.None, &proto.SaslHandshakeResponse{Error: proto.SaslAuthenticationFailed})
		return
	}
	m := mechanismOf(req.Mechanism)
	if c.authed || m == 0 {
		r.respondAndClose(q, proto.None, &proto.SaslHandshakeResponse{Error: proto.SaslAuthenticationFailed, Mechanisms: enabledMechanisms})
		return
	}
	c.sasl = &saslExchange{mechanism: req.Mechanism, conv: sc.scram[m].NewConversation()}
	r.respond(q, proto.None, &proto.SaslHandshakeResponse{Mechanisms: enabledMechanisms})
}

func (r *Reactor) handleSaslAuthenticate(q *request, body []byte) {
	var req proto.SaslAuthenticateRequest
	if err := req.Decode(body); err != nil {
		r.respondError(q, proto.InvalidRequest)
		return
	}
	c := q.c
	x := c.sasl
	if x == nil || c.authed {
		r.respondAndClose(q, proto.None, &proto.SaslAuthenticateResponse{Error: proto.SaslAuthenticationFailed,
			Message: "SaslHandshake must come first, once per connection"})
		return
	}
	out, err := x.conv.Step(string(req.Auth))
	if err != nil {
		c.sasl = nil
		r.srv.log.Debug("authentication failed", "mechanism", x.mechanism, "user", x.conv.Username())
		r.respondAndClose(q, proto.None, &proto.SaslAuthenticateResponse{Error: proto.SaslAuthenticationFailed, Message: authFailedMessage})
		return
	}
	if x.conv.Done() && x.conv.Valid() {
		c.sasl = nil
		c.principal, c.authed = "User:"+x.conv.Username(), true
		c.authz.reset()
	}
	r.respond(q, proto.None, &proto.SaslAuthenticateResponse{Auth: []byte(out)})
}
