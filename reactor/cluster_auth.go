package reactor

import (
	"bufio"
	"fmt"
	"net"

	"github.com/xdg-go/scram"

	"github.com/ringmq/ringmq/proto"
)

// Brokers authenticate to each other's client port (Raft messages, broker
// heartbeats, the topic-spread check) as server.broker_user when
// server.sasl = scram. That user is defined by the configuration of every
// node, not by the controller's users (which the brokers must first reach),
// and is a superuser. The exchange runs on the goroutines that own those
// connections, never on a reactor.

// brokerAuth is who this broker authenticates as.
type brokerAuth struct {
	user, password string
}

// newPeerConn returns a connection to other nodes that speaks TLS when
// server.tls is on and authenticates as the broker user when one is
// configured.
func (s *Server) newPeerConn() peerConn { return peerConn{auth: s.sec.broker, tls: s.peerTLS} }

// peerHandshake is the controller transport's handshake: authenticate each
// new connection as the broker user (nil: no authentication).
func (s *Server) peerHandshake() func(net.Conn) error {
	auth := s.sec.broker
	if auth == nil {
		return nil
	}
	return func(c net.Conn) error {
		p := peerConn{auth: auth, c: c, r: bufio.NewReader(c)}
		return p.authenticate()
	}
}

// authenticate runs SCRAM-SHA-256 on p's connection and checks the
// server's signature.
func (p *peerConn) authenticate() error {
	var hs proto.SaslHandshakeResponse
	if err := p.roundTrip(&proto.SaslHandshakeRequest{Mechanism: proto.MechanismScramSHA256}, &hs); err != nil {
		return err
	}
	if hs.Error != proto.None {
		return fmt.Errorf("SASL handshake with %s (does it have server.sasl = scram?): %w", p.c.RemoteAddr(), hs.Error)
	}
	sc, err := scram.SHA256.NewClient(p.auth.user, p.auth.password, "")
	if err != nil {
		return fmt.Errorf("broker user %q: %w", p.auth.user, err)
	}
	conv := sc.NewConversation()
	msg, err := conv.Step("")
	for round := 0; err == nil && round < 2; round++ {
		var resp proto.SaslAuthenticateResponse
		if err := p.roundTrip(&proto.SaslAuthenticateRequest{Auth: []byte(msg)}, &resp); err != nil {
			return err
		}
		if resp.Error != proto.None {
			return fmt.Errorf("authenticate to %s as broker user %q: %w: %s", p.c.RemoteAddr(), p.auth.user, resp.Error, resp.Message)
		}
		msg, err = conv.Step(string(resp.Auth))
		if err == nil && conv.Done() {
			if conv.Valid() {
				return nil
			}
			break
		}
	}
	return fmt.Errorf("authenticate to %s as broker user %q: the server's answer does not verify: %v", p.c.RemoteAddr(), p.auth.user, err)
}
