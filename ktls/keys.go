package ktls

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"sync"
)

// ErrCipherSuite is returned for a cipher suite that is not TLS 1.3's.
var ErrCipherSuite = errors.New("ktls: not a TLS 1.3 cipher suite")

// suiteParams are the hash and key length of a TLS 1.3 cipher suite.
func suiteParams(suite uint16) (func() hash.Hash, int, error) {
	switch suite {
	case tls.TLS_AES_128_GCM_SHA256:
		return sha256.New, 16, nil
	case tls.TLS_AES_256_GCM_SHA384:
		return sha512.New384, 32, nil
	case tls.TLS_CHACHA20_POLY1305_SHA256:
		return sha256.New, 32, nil
	}
	return nil, 0, fmt.Errorf("%w: %#04x", ErrCipherSuite, suite)
}

// ExpandLabel is HKDF-Expand-Label (RFC 8446 §7.1): HKDF-Expand(secret,
// HkdfLabel{length, "tls13 " + label, context}, length).
func ExpandLabel(h func() hash.Hash, secret []byte, label string, context []byte, length int) ([]byte, error) {
	info := make([]byte, 0, 4+6+len(label)+len(context))
	info = append(info, byte(length>>8), byte(length), byte(6+len(label)))
	info = append(info, "tls13 "...)
	info = append(info, label...)
	info = append(info, byte(len(context)))
	info = append(info, context...)
	return hkdf.Expand(h, secret, string(info), length)
}

// Keys are one direction's record protection: key, 12-byte IV and the
// sequence number of the next record.
type Keys struct {
	Suite uint16
	Key   []byte
	IV    []byte
	Seq   uint64
}

// TrafficKeys derives a direction's write key and IV from its traffic
// secret (RFC 8446 §7.3).
func TrafficKeys(suite uint16, secret []byte) (Keys, error) {
	h, keyLen, err := suiteParams(suite)
	if err != nil {
		return Keys{}, err
	}
	key, err := ExpandLabel(h, secret, "key", nil, keyLen)
	if err != nil {
		return Keys{}, err
	}
	iv, err := ExpandLabel(h, secret, "iv", nil, 12)
	if err != nil {
		return Keys{}, err
	}
	return Keys{Suite: suite, Key: key, IV: iv}, nil
}

// NextSecret is the traffic secret after a KeyUpdate (RFC 8446 §7.2).
func NextSecret(suite uint16, secret []byte) ([]byte, error) {
	h, _, err := suiteParams(suite)
	if err != nil {
		return nil, err
	}
	return ExpandLabel(h, secret, "traffic upd", nil, h().Size())
}

// Nonce is the per-record nonce: the IV with the sequence number XORed
// into its last 8 bytes (RFC 8446 §5.3).
func (k Keys) Nonce(seq uint64) []byte {
	n := bytes.Clone(k.IV)
	for i := 0; i < 8; i++ {
		n[len(n)-1-i] ^= byte(seq >> (8 * i))
	}
	return n
}

// KeyLog collects one connection's application traffic secrets from
// crypto/tls's key log (tls.Config.KeyLogWriter, NSS key log format). Set
// it on a per-connection clone of the configuration
// (GetConfigForClient), so that no line of another connection reaches it.
type KeyLog struct {
	mu             sync.Mutex
	client, server []byte // *_TRAFFIC_SECRET_0
}

// Write takes one key log line.
func (l *KeyLog) Write(line []byte) (int, error) {
	f := bytes.Fields(line)
	if len(f) != 3 {
		return len(line), nil
	}
	secret, err := hex.DecodeString(string(f[2]))
	if err != nil {
		return 0, fmt.Errorf("ktls: key log: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch string(f[0]) {
	case "CLIENT_TRAFFIC_SECRET_0":
		l.client = secret
	case "SERVER_TRAFFIC_SECRET_0":
		l.server = secret
	}
	return len(line), nil
}

// Secrets are the client's and the server's first application traffic
// secrets, once the handshake logged them.
func (l *KeyLog) Secrets() (client, server []byte, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.client, l.server, l.client != nil && l.server != nil
}
