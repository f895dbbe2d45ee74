package reactor

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/proto"
)

// TestTLSOpenSSLKeyUpdate: Debian's openssl s_client asks the server to
// update its keys (the 'K' command: KeyUpdate with update_requested); the
// server answers with its own KeyUpdate right away, and requests before
// and after are served. Skipped when openssl is not installed.
func TestTLSOpenSSLKeyUpdate(t *testing.T) {
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	ts := newTLSSetup(t, config.TLSOn)
	srv := startServer(t, ts.cfg)
	msgs := filepath.Join(t.TempDir(), "msgs")
	cmd := exec.Command(bin, "s_client", "-connect", srv.Addr(), "-tls1_3", "-CAfile", ts.files.CA,
		"-brief", "-msg", "-msgfile", msgs)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(msgs)
			t.Logf("s_client stderr:\n%s\nmessages:\n%s", stderr.String(), b)
		}
	}()
	out := bufio.NewReader(stdout)
	frames := make(chan proto.ResponseHeader, 4)
	go func() {
		for {
			var lb [4]byte
			if _, err := io.ReadFull(out, lb[:]); err != nil {
				close(frames)
				return
			}
			n, _ := proto.FrameLength(lb[:])
			f := make([]byte, n)
			copy(f, lb[:])
			if _, err := io.ReadFull(out, f[4:]); err != nil {
				close(frames)
				return
			}
			h, _, _ := proto.ParseResponseHeader(f)
			frames <- h
		}
	}()
	expect := func(id uint32) {
		t.Helper()
		select {
		case h, ok := <-frames:
			if !ok || h.CorrelationID != id || h.Error != proto.None {
				t.Fatalf("response %+v (open %v), want correlation id %d", h, ok, id)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no response %d within 30s", id)
		}
	}
	stdin.Write(helloFrame(1))
	expect(1)
	stdin.Write([]byte("K\n"))
	// The server's KeyUpdate arrives without any request to carry it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(msgs)
		if receivedKeyUpdate(string(b)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server did not answer the KeyUpdate")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stdin.Write(helloFrame(2))
	expect(2)
}

// receivedKeyUpdate reports whether the -msg log shows a KeyUpdate read
// from the server ("<<<" lines are received).
func receivedKeyUpdate(log string) bool {
	for _, l := range strings.Split(log, "\n") {
		if strings.HasPrefix(l, "<<< ") && strings.Contains(l, "KeyUpdate") {
			return true
		}
	}
	return false
}
