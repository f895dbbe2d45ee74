package client

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/xdg-go/scram"

	"github.com/ringmq/ringmq/proto"
)

// ErrAuthentication is returned (wrapped, with proto.SaslAuthenticationFailed
// where the server refused) when a connection cannot authenticate.
var ErrAuthentication = errors.New("client: authentication failed")

// DefaultScramIterations is the PBKDF2 iteration count ScramCredential
// uses when given 0 (Kafka's default; the server refuses fewer).
const DefaultScramIterations = 4096

func scramHash(mechanism string) (scram.HashGeneratorFcn, error) {
	switch mechanism {
	case proto.MechanismScramSHA256:
		return scram.SHA256, nil
	case proto.MechanismScramSHA512:
		return scram.SHA512, nil
	}
	return nil, fmt.Errorf("client: SASL mechanism %q: want %s or %s", mechanism, proto.MechanismScramSHA256, proto.MechanismScramSHA512)
}

// authenticate runs the SCRAM exchange on c (SaslHandshake, then
// SaslAuthenticate with client-first and client-final) and checks the
// server's signature, so a server that does not know the password is
// refused too.
func (c *Conn) authenticate(ctx context.Context) error {
	mech := c.opts.SASL.Mechanism
	if mech == "" {
		mech = proto.MechanismScramSHA256
	}
	gen, err := scramHash(mech)
	if err != nil {
		return err
	}
	hs, err := roundTrip[proto.SaslHandshakeResponse](ctx, c, &proto.SaslHandshakeRequest{Mechanism: mech})
	switch {
	case err != nil:
		return err
	case hs.Error != proto.None && len(hs.Mechanisms) == 0:
		return fmt.Errorf("%w: the server has SASL off (server.sasl): %w", ErrAuthentication, hs.Error)
	case hs.Error != proto.None:
		return fmt.Errorf("%w: mechanism %s not enabled, the server offers %v: %w", ErrAuthentication, mech, hs.Mechanisms, hs.Error)
	}
	sc, err := gen.NewClient(c.opts.SASL.User, c.opts.SASL.Password, "")
	if err != nil {
		return fmt.Errorf("%w: user %q: %w", ErrAuthentication, c.opts.SASL.User, err)
	}
	conv := sc.NewConversation()
	msg, err := conv.Step("")
	for round := 0; err == nil && round < 2; round++ {
		var resp *proto.SaslAuthenticateResponse
		resp, err = roundTrip[proto.SaslAuthenticateResponse](ctx, c, &proto.SaslAuthenticateRequest{Auth: []byte(msg)})
		if err != nil {
			return err
		}
		if resp.Error != proto.None {
			return fmt.Errorf("%w: user %q: %w: %s", ErrAuthentication, c.opts.SASL.User, resp.Error, resp.Message)
		}
		msg, err = conv.Step(string(resp.Auth))
		if err == nil && conv.Done() {
			if !conv.Valid() {
				break
			}
			return nil
		}
	}
	return fmt.Errorf("%w: user %q: the server's answer does not verify: %v", ErrAuthentication, c.opts.SASL.User, err)
}

// ScramCredential salts password for mechanism the way AlterUser carries
// it: a random 16-byte salt, iterations rounds of PBKDF2 (0:
// DefaultScramIterations), and the StoredKey and ServerKey derived from it.
// The password itself never leaves the client.
func ScramCredential(name, mechanism, password string, iterations int) (*proto.AlterUserRequest, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	return ScramCredentialWithSalt(name, mechanism, password, iterations, salt)
}

// ScramCredentialWithSalt is ScramCredential with a given salt (for tests
// against published vectors; a real credential wants a random one).
func ScramCredentialWithSalt(name, mechanism, password string, iterations int, salt []byte) (*proto.AlterUserRequest, error) {
	gen, err := scramHash(mechanism)
	if err != nil {
		return nil, err
	}
	if iterations == 0 {
		iterations = DefaultScramIterations
	}
	sc, err := gen.NewClient(name, password, "")
	if err != nil {
		return nil, fmt.Errorf("client: user %q: %w", name, err)
	}
	cr, err := sc.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: iterations})
	if err != nil {
		return nil, fmt.Errorf("client: user %q: %w", name, err)
	}
	return &proto.AlterUserRequest{Name: name, Mechanism: mechanism, Salt: salt, Iterations: uint32(iterations),
		StoredKey: cr.StoredKey, ServerKey: cr.ServerKey}, nil
}
