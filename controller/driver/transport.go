package driver

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Transport carries Raft messages between controller nodes. Raft tolerates
// loss, duplication and reordering, so a transport may drop.
type Transport interface {
	// Send queues msgs for node to; it never blocks. It returns false when
	// some were dropped (queue full, no such peer, closed): the driver
	// reports the peer unreachable.
	Send(to uint64, msgs []*pb.Message) bool
	// Close stops sending and delivering; it waits for its goroutines.
	Close() error
}

// Deliver hands a received message to the driver; it must not block.
type Deliver func(m *pb.Message)

// TCP is a Transport over TCP: one outgoing connection per peer, dialled
// and redialled with backoff by a goroutine that drains the peer's bounded
// queue, and optionally a listener whose connections deliver what they
// read. A frame is a 4-byte little-endian length and a marshalled
// raftpb.Message, unless TCPConfig.AppendFrame says otherwise: the server
// sends RaftMessages requests to its peers' client ports (AppendRaftRequest)
// and has no listener here, its reactors deliver what arrives.
type TCP struct {
	ln        net.Listener // nil: outgoing only
	frame     func(dst []byte, m *pb.Message) ([]byte, error)
	handshake func(net.Conn) error
	deliver   Deliver
	log       *slog.Logger
	peers     map[uint64]*peerQueue
	tls       *tls.Config

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	done   chan struct{}
	wg     sync.WaitGroup
}

// TCPConfig sets up a TCP transport.
type TCPConfig struct {
	Listener   net.Listener      // incoming messages; nil: none (outgoing only)
	Peers      map[uint64]string // the other nodes' addresses
	Deliver    Deliver
	QueueLen   int // messages queued per peer before dropping; default 1024
	MaxFrame   int // largest frame read; default 64 MiB
	Logger     *slog.Logger
	MaxBackoff time.Duration // longest wait between dials; default 500ms
	// AppendFrame appends one message as it goes on the wire; nil: a
	// 4-byte length and the marshalled message.
	AppendFrame func(dst []byte, m *pb.Message) ([]byte, error)
	// Handshake, when set, runs on each new outgoing connection before any
	// message (the server authenticates to the peer's client port); an
	// error closes the connection and the dial is retried with backoff.
	Handshake func(c net.Conn) error
	// TLS, when set, runs every outgoing connection over TLS (the peers'
	// client ports with server.tls on); an empty ServerName is the host
	// of the peer's address.
	TLS *tls.Config
}

type peerQueue struct {
	id   uint64
	addr string
	q    chan *pb.Message
}

// NewTCP starts the transport: it accepts on cfg.Listener and dials each
// peer when it has something to send.
func NewTCP(cfg TCPConfig) *TCP {
	if cfg.QueueLen == 0 {
		cfg.QueueLen = 1024
	}
	if cfg.MaxFrame == 0 {
		cfg.MaxFrame = maxFrame
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 500 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.AppendFrame == nil {
		cfg.AppendFrame = appendMessageFrame
	}
	t := &TCP{ln: cfg.Listener, frame: cfg.AppendFrame, handshake: cfg.Handshake, deliver: cfg.Deliver, log: cfg.Logger, tls: cfg.TLS,
		peers: map[uint64]*peerQueue{}, conns: map[net.Conn]struct{}{}, done: make(chan struct{})}
	for id, addr := range cfg.Peers {
		p := &peerQueue{id: id, addr: addr, q: make(chan *pb.Message, cfg.QueueLen)}
		t.peers[id] = p
		t.wg.Add(1)
		go t.sendLoop(p, cfg.MaxBackoff)
	}
	if t.ln != nil {
		t.wg.Add(1)
		go t.acceptLoop(cfg.MaxFrame)
	}
	return t
}

// Addr is the listener's address (nil without a listener).
func (t *TCP) Addr() net.Addr {
	if t.ln == nil {
		return nil
	}
	return t.ln.Addr()
}

// Send implements Transport.
func (t *TCP) Send(to uint64, msgs []*pb.Message) bool {
	p, ok := t.peers[to]
	if !ok {
		return false
	}
	for _, m := range msgs {
		select {
		case <-t.done:
			return false
		case p.q <- m:
		default:
			return false
		}
	}
	return true
}

// Close implements Transport.
func (t *TCP) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.done)
	var err error
	if t.ln != nil {
		err = t.ln.Close()
	}
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
	return err
}

// track registers c to be closed by Close; false when already closed.
func (t *TCP) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		c.Close()
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *TCP) untrack(c net.Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
	c.Close()
}

func (t *TCP) acceptLoop(maxFrame int) {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			select {
			case <-t.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			t.log.Warn("controller transport: accept", "err", err)
			return
		}
		if !t.track(c) {
			return
		}
		t.wg.Add(1)
		go t.readLoop(c, maxFrame)
	}
}

func (t *TCP) readLoop(c net.Conn, maxFrame int) {
	defer t.wg.Done()
	defer t.untrack(c)
	r := bufio.NewReaderSize(c, 64<<10)
	var hdr [4]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		n := int(binary.LittleEndian.Uint32(hdr[:]))
		if n > maxFrame {
			t.log.Warn("controller transport: frame too large", "bytes", n, "from", c.RemoteAddr())
			return
		}
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return
		}
		m := &pb.Message{}
		if err := proto.Unmarshal(buf, m); err != nil {
			t.log.Warn("controller transport: bad message", "err", err, "from", c.RemoteAddr())
			return
		}
		t.deliver(m)
	}
}

// sendLoop drains p's queue into a connection, redialling with backoff;
// a message in hand when a write fails is lost.
func (t *TCP) sendLoop(p *peerQueue, maxBackoff time.Duration) {
	defer t.wg.Done()
	backoff := 10 * time.Millisecond
	var c net.Conn
	var w *bufio.Writer
	var frame []byte
	defer func() {
		if c != nil {
			t.untrack(c)
		}
	}()
	for {
		var m *pb.Message
		select {
		case <-t.done:
			return
		case m = <-p.q:
		}
		if c == nil {
			d := net.Dialer{Timeout: time.Second}
			conn, err := d.Dial("tcp", p.addr)
			if err == nil && t.tls != nil {
				conn, err = DialTLS(conn, p.addr, t.tls, 5*time.Second)
			}
			if err == nil && t.handshake != nil {
				if err = t.handshake(conn); err != nil {
					conn.Close()
				}
			}
			if err != nil {
				t.log.Debug("controller transport: dial", "peer", p.id, "err", err)
				if !t.wait(backoff) {
					return
				}
				backoff = min(2*backoff, maxBackoff)
				continue // m is dropped: Raft resends
			}
			if !t.track(conn) {
				return
			}
			c, w, backoff = conn, bufio.NewWriterSize(conn, 64<<10), 10*time.Millisecond
		}
		c.SetWriteDeadline(time.Now().Add(5 * time.Second)) // a peer that stops reading
		var err error
		for m != nil && err == nil {
			frame, err = t.frame(frame[:0], m)
			if err == nil {
				_, err = w.Write(frame)
			}
			m = nil
			select {
			case m = <-p.q:
			default:
			}
		}
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			t.log.Debug("controller transport: send", "peer", p.id, "err", err)
			t.untrack(c)
			c, w = nil, nil
		}
	}
}

// DialTLS runs the client side of a TLS handshake on conn within timeout
// (conn is closed on failure). An empty ServerName in cfg becomes the
// host of addr.
func DialTLS(conn net.Conn, addr string, cfg *tls.Config, timeout time.Duration) (net.Conn, error) {
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	tc := tls.Client(conn, cfg)
	tc.SetDeadline(time.Now().Add(timeout))
	if err := tc.Handshake(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	tc.SetDeadline(time.Time{})
	return tc, nil
}

// wait sleeps for d unless the transport closes first.
func (t *TCP) wait(d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-t.done:
		return false
	case <-tm.C:
		return true
	}
}

// appendMessageFrame appends m as one transport frame.
func appendMessageFrame(dst []byte, m *pb.Message) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst, err := proto.MarshalOptions{}.MarshalAppend(dst, m)
	if err != nil {
		return dst[:start], fmt.Errorf("controller transport: marshal: %w", err)
	}
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst, nil
}
