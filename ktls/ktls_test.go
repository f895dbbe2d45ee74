package ktls

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/internal/tlstest"
	"golang.org/x/sys/unix"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRFC8448Vectors: RFC 8448 §3 (simple 1-RTT handshake,
// TLS_AES_128_GCM_SHA256): the write key and IV derived from the traffic
// secrets.
func TestRFC8448Vectors(t *testing.T) {
	for _, v := range []struct{ name, secret, key, iv string }{
		{"server handshake",
			"b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4 e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38",
			"3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc", "5d 31 3e b2 67 12 76 ee 13 00 0b 30"},
		{"server application",
			"a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9 50 32 82 04 b4 f4 4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43",
			"9f 02 28 3b 6c 9c 07 ef c2 6b b9 f2 ac 92 e3 56", "cf 78 2b 88 dd 83 54 9a ad f1 e9 84"},
		{"client handshake",
			"b3 ed db 12 6e 06 7f 35 a7 80 b3 ab f4 5e 2d 8f 3b 1a 95 07 38 f5 2e 96 00 74 6a 0e 27 a5 5a 21",
			"db fa a6 93 d1 76 2c 5b 66 6a f5 d9 50 25 8d 01", "5b d3 c7 1b 83 6e 0b 76 bb 73 26 5f"},
	} {
		k, err := TrafficKeys(tls.TLS_AES_128_GCM_SHA256, unhex(t, v.secret))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(k.Key, unhex(t, v.key)) || !bytes.Equal(k.IV, unhex(t, v.iv)) {
			t.Errorf("%s: key % x iv % x\nwant key %s iv %s", v.name, k.Key, k.IV, v.key, v.iv)
		}
	}
	if _, err := TrafficKeys(0x1301+7, make([]byte, 32)); !errors.Is(err, ErrCipherSuite) {
		t.Errorf("unknown suite: %v", err)
	}
}

// captureConn keeps a copy of what is written through it.
type captureConn struct {
	net.Conn
	mu  sync.Mutex
	on  bool
	out []byte
}

func (c *captureConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.on {
		c.out = append(c.out, p...)
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// openRecord decrypts one TLS 1.3 record with k at sequence seq and
// returns its content and inner type.
func openRecord(t *testing.T, k Keys, seq uint64, rec []byte) ([]byte, byte) {
	t.Helper()
	n := int(binary.BigEndian.Uint16(rec[3:5]))
	block, err := aes.NewCipher(k.Key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := aead.Open(nil, k.Nonce(seq), rec[5:5+n], rec[:5])
	if err != nil {
		t.Fatalf("open record with the derived keys: %v", err)
	}
	inner = bytes.TrimRight(inner, "\x00")
	return inner[:len(inner)-1], inner[len(inner)-1]
}

// TestDecryptStdlibRecords: the keys derived from the secrets crypto/tls
// logs decrypt the records a stdlib peer sends, both ways.
func TestDecryptStdlibRecords(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	var log KeyLog
	srvCfg := &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "server", true)}, MinVersion: tls.VersionTLS13}
	srvCfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		c := srvCfg.Clone()
		c.GetConfigForClient = nil
		c.KeyLogWriter = &log
		return c, nil
	}
	a, b := net.Pipe()
	cc := &captureConn{Conn: a}
	sc := &captureConn{Conn: b}
	client := tls.Client(cc, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
	server := tls.Server(sc, srvCfg)
	errs := make(chan error, 1)
	go func() { errs <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	suite := client.ConnectionState().CipherSuite
	if suite != tls.TLS_AES_128_GCM_SHA256 && suite != tls.TLS_AES_256_GCM_SHA384 {
		t.Skipf("negotiated %s; the check decrypts AES-GCM only", tls.CipherSuiteName(suite))
	}
	cs, ss, ok := log.Secrets()
	if !ok {
		t.Fatal("the key log has no application traffic secrets")
	}
	ck, err := TrafficKeys(suite, cs)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := TrafficKeys(suite, ss)
	if err != nil {
		t.Fatal(err)
	}

	cc.on, sc.on = true, true
	go func() {
		client.Write([]byte("from the client"))
		client.Write([]byte("second record"))
	}()
	buf := make([]byte, 64)
	for _, want := range []string{"from the client", "second record"} {
		n, err := io.ReadFull(server, buf[:len(want)])
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("server read %q, %v", buf[:n], err)
		}
	}
	go server.Write([]byte("from the server"))
	if n, err := io.ReadFull(client, buf[:15]); err != nil || string(buf[:n]) != "from the server" {
		t.Fatalf("client read %q, %v", buf[:n], err)
	}
	rec := cc.out
	for seq, want := range []string{"from the client", "second record"} {
		got, typ := openRecord(t, ck, uint64(seq), rec)
		if string(got) != want || typ != 23 {
			t.Fatalf("client record %d: %q type %d", seq, got, typ)
		}
		rec = rec[5+int(binary.BigEndian.Uint16(rec[3:5])):]
	}
	// The server sent nothing since its Finished but this record (no
	// session tickets: the server's first application record has
	// sequence number 0 unless tickets went first).
	sout := sc.out
	var seq uint64
	for len(sout) > 0 {
		got, typ := openRecord(t, sk, seq, sout)
		sout = sout[5+int(binary.BigEndian.Uint16(sout[3:5])):]
		seq++
		if typ == 23 {
			if string(got) != "from the server" {
				t.Fatalf("server record: %q", got)
			}
			return
		}
	}
	t.Fatal("no server application record decrypted")
}

// fakeSockopts records setsockopt calls and fails the one numbered failAt
// (1-based) with failErr.
type fakeSockopts struct {
	calls   []string
	infos   [][]byte
	failAt  int
	failErr error
}

func (f *fakeSockopts) SetsockoptString(fd, level, opt int, value string) error {
	f.calls = append(f.calls, "ULP "+value)
	return f.result()
}

func (f *fakeSockopts) SetsockoptBytes(fd, level, opt int, value []byte) error {
	name := map[int]string{tlsTX: "TLS_TX", tlsRX: "TLS_RX"}[opt]
	if level != unix.SOL_TLS {
		name = "wrong level"
	}
	f.calls = append(f.calls, name)
	f.infos = append(f.infos, value)
	return f.result()
}

func (f *fakeSockopts) result() error {
	if len(f.calls) == f.failAt {
		return f.failErr
	}
	return nil
}

func TestInstall(t *testing.T) {
	tx := Keys{Suite: tls.TLS_AES_128_GCM_SHA256, Key: bytes.Repeat([]byte{0xaa}, 16),
		IV: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, Seq: 3}
	rx := Keys{Suite: tls.TLS_AES_128_GCM_SHA256, Key: bytes.Repeat([]byte{0xbb}, 16), IV: make([]byte, 12)}
	f := &fakeSockopts{}
	if err := Install(f, 7, tx, rx); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.calls, ","); got != "ULP tls,TLS_TX,TLS_RX" {
		t.Fatalf("calls %s", got)
	}
	want := []byte{0x04, 0x03, 51, 0, 5, 6, 7, 8, 9, 10, 11, 12}
	want = append(want, tx.Key...)
	want = append(want, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 3)
	if !bytes.Equal(f.infos[0], want) || len(f.infos[0]) != 40 {
		t.Fatalf("TLS_TX crypto_info\n% x\nwant\n% x", f.infos[0], want)
	}

	// No tls module: ENOENT on TCP_ULP, nothing else tried.
	f = &fakeSockopts{failAt: 1, failErr: unix.ENOENT}
	if err := Install(f, 7, tx, rx); !errors.Is(err, ErrUnsupported) || len(f.calls) != 1 {
		t.Fatalf("ENOENT: %v after %v", err, f.calls)
	}
	f = &fakeSockopts{failAt: 3, failErr: unix.EINVAL}
	if err := Install(f, 7, tx, rx); !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "TLS_RX") {
		t.Fatalf("TLS_RX failure: %v", err)
	}
	for _, k := range []Keys{
		{Suite: tls.TLS_AES_256_GCM_SHA384, Key: make([]byte, 32), IV: make([]byte, 12)},
		{Suite: tls.TLS_CHACHA20_POLY1305_SHA256, Key: make([]byte, 32), IV: make([]byte, 12)},
	} {
		info, err := AppendCryptoInfo(nil, k)
		if err != nil || len(info) != 56 {
			t.Errorf("suite %#x: %d bytes, %v; want 56", k.Suite, len(info), err)
		}
	}
	if _, err := AppendCryptoInfo(nil, Keys{Suite: tls.TLS_AES_128_GCM_SHA256, Key: make([]byte, 32), IV: make([]byte, 12)}); err == nil {
		t.Error("a 32-byte key for AES-128 was accepted")
	}
}

func TestProbeAndDecide(t *testing.T) {
	if err := Probe(&fakeSockopts{failAt: 1, failErr: unix.ENOENT}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Probe with ENOENT = %v", err)
	}
	if err := Probe(&fakeSockopts{}); err != nil {
		t.Fatalf("Probe = %v", err)
	}
	for _, tt := range []struct {
		mode    config.KTLSMode
		probe   error
		refuse  bool
		noteHas string
	}{
		{config.KTLSAuto, ErrUnsupported, false, "unavailable"},
		{config.KTLSAuto, nil, false, "not used yet"},
		{config.KTLSOff, ErrUnsupported, false, ""},
		{config.KTLSOn, ErrUnsupported, true, ""},
		{config.KTLSOn, nil, true, ""},
	} {
		note, err := Decide(tt.mode, tt.probe)
		if (err != nil) != tt.refuse || !strings.Contains(note, tt.noteHas) {
			t.Errorf("Decide(%v, %v) = %q, %v", tt.mode, tt.probe, note, err)
		}
	}
}
