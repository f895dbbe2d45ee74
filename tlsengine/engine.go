package tlsengine

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"
)

// maxPendingOut bounds the ciphertext an engine holds unsent beyond the
// chunk being encrypted: output the engine wrote by itself (KeyUpdate
// replies) past it means the peer does not read; Decrypt then fails.
const maxPendingOut = 1 << 20

// ErrOutputFull is returned by Decrypt when the peer makes the engine write
// more than it reads (a flood of KeyUpdate requests).
var ErrOutputFull = errors.New("tlsengine: too much unsent TLS output")

// Engine is the record layer of one established TLS connection.
type Engine struct {
	tc        *tls.Conn
	tr        *transport
	principal string
}

// transport is the net.Conn under the tls.Conn: the socket (handshake)
// until detached, then memory.
type transport struct {
	hs *recordConn // nil once the handshake is done

	in  []byte // ciphertext fed, not yet read by the tls.Conn (aliases the caller's buffer)
	out []byte // ciphertext written by the tls.Conn
	// sent: bytes of out already handed to the socket.
	sent int
}

// errWouldBlock is what the memory transport's Read returns when it has
// nothing: a timeout, which crypto/tls treats as temporary (the partial
// record stays buffered and the next Read resumes it).
type errWouldBlock struct{}

func (errWouldBlock) Error() string   { return "tlsengine: no ciphertext buffered" }
func (errWouldBlock) Timeout() bool   { return true }
func (errWouldBlock) Temporary() bool { return true }

func (t *transport) Read(p []byte) (int, error) {
	if t.hs != nil {
		return t.hs.Read(p)
	}
	if len(t.in) == 0 {
		return 0, errWouldBlock{}
	}
	n := copy(p, t.in)
	t.in = t.in[n:]
	return n, nil
}

func (t *transport) Write(p []byte) (int, error) {
	if t.hs != nil {
		return t.hs.Write(p)
	}
	t.out = append(t.out, p...)
	return len(p), nil
}

func (t *transport) Close() error { return nil }

func (t *transport) LocalAddr() net.Addr {
	if t.hs != nil {
		return t.hs.local
	}
	return nil
}

func (t *transport) RemoteAddr() net.Addr {
	if t.hs != nil {
		return t.hs.remote
	}
	return nil
}

func (t *transport) SetDeadline(d time.Time) error {
	if t.hs != nil {
		t.hs.deadline = d
	}
	return nil
}

func (t *transport) SetReadDeadline(d time.Time) error  { return t.SetDeadline(d) }
func (t *transport) SetWriteDeadline(d time.Time) error { return t.SetDeadline(d) }

// Principal is the connection's authenticated identity from TLS:
// "User:<common name>" of a verified client certificate, or
// "User:ANONYMOUS".
func (e *Engine) Principal() string { return e.principal }

// State is the connection's TLS state (version, cipher suite, peer
// certificates).
func (e *Engine) State() tls.ConnectionState { return e.tc.ConnectionState() }

// Decrypt feeds ciphertext received from the socket and calls fn with each
// piece of plaintext it completes, in order, while fn returns true.
// Ciphertext of an incomplete record is kept for the next call; cipher
// need not stay valid after Decrypt returns. It returns nil when every
// byte was taken, io.EOF when the peer closed the session (close_notify),
// or the error that ends the connection (a record that fails to decrypt,
// a protocol violation); whatever the engine wrote meanwhile (an alert,
// a KeyUpdate reply) is in Pending and should be sent before closing.
func (e *Engine) Decrypt(cipher, scratch []byte, fn func(plain []byte) bool) error {
	e.tr.in = cipher
	defer func() { e.tr.in = nil }()
	for {
		n, err := e.tc.Read(scratch)
		if n > 0 && !fn(scratch[:n]) {
			return nil
		}
		if err != nil {
			var wb errWouldBlock
			if errors.As(err, &wb) {
				break
			}
			if errors.Is(err, io.EOF) {
				return io.EOF
			}
			return err
		}
	}
	if len(e.tr.out)-e.tr.sent > maxPendingOut {
		return ErrOutputFull
	}
	return nil
}

// Encrypt seals plain into records appended to the pending output.
func (e *Engine) Encrypt(plain []byte) error {
	_, err := e.tc.Write(plain)
	return err
}

// Pending is the ciphertext not yet sent. It stays valid until Sent is
// told it was all sent; output the engine writes meanwhile is appended
// after it.
func (e *Engine) Pending() []byte { return e.tr.out[e.tr.sent:] }

// Sent says the first n bytes of Pending left through the socket.
func (e *Engine) Sent(n int) {
	t := e.tr
	t.sent += n
	if t.sent >= len(t.out) {
		t.sent, t.out = 0, t.out[:0]
	}
}

// HasBuffer reports whether the engine holds an output buffer.
func (e *Engine) HasBuffer() bool { return e.tr.out != nil }

// GiveBuffer lends b (its capacity) to the engine for its output, so
// that a caller with a buffer pool recycles them (see TakeBuffer). Call
// it only when HasBuffer is false.
func (e *Engine) GiveBuffer(b []byte) {
	if e.tr.out != nil {
		panic("BUG: tlsengine: GiveBuffer while holding a buffer")
	}
	e.tr.out = b[:0]
}

// TakeBuffer returns the output buffer when nothing is pending (nil
// otherwise, or when the engine holds none); the next output is written
// to a buffer given later, or a new one.
func (e *Engine) TakeBuffer() []byte {
	t := e.tr
	if t.out == nil || len(t.out) > t.sent {
		return nil
	}
	b := t.out
	t.out, t.sent = nil, 0
	return b
}
