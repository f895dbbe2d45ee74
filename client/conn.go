package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"time"

	"github.com/ringmq/ringmq/proto"
)

// Errors of a connection. Failures wrap one of them; the cause follows.
var (
	ErrClosed         = errors.New("client: connection closed")
	ErrConnectionLost = errors.New("client: connection lost")
	ErrProtocol       = errors.New("client: protocol violation")
	// ErrNotRingmq: the address answered, but not in ringmq's protocol
	// (an HTTP or TLS server, or anything else).
	ErrNotRingmq = errors.New("not a ringmq server")
)

// Defaults for Options fields left zero.
const (
	DefaultMaxInFlight      = 1024
	DefaultMaxResponseBytes = 256 << 20
	DefaultMaxRequestBytes  = proto.DefaultMaxFrameBytes

	readBufferSize   = 64 << 10
	maxRetainedWrite = 4 << 20 // a write buffer grown past this is dropped after use

	// minRefBytes is the smallest produce Records the writer sends from the
	// caller's memory instead of copying it into the write buffer: below
	// it an iovec costs more than the copy.
	minRefBytes = 4 << 10
)

// Options configure a connection. The zero value is usable.
type Options struct {
	// ClientID names the application in the server's logs and metrics.
	ClientID string
	// RequestShard asks the server to serve the connection from the
	// reactor (shard) Shard, which should own the partitions it uses.
	RequestShard bool
	Shard        uint16
	// MaxInFlight bounds the requests sent and not yet answered (or, with
	// acks 0, not yet written); further calls wait for a slot.
	MaxInFlight int
	// MaxRequestBytes is the largest request frame body sent; larger ones
	// fail with proto.ErrFrameTooLarge before anything is sent. Keep it at
	// or below the server's max_frame_bytes, which closes the connection.
	MaxRequestBytes int
	// MaxResponseBytes is the largest response frame body accepted; a
	// larger one fails the connection.
	MaxResponseBytes int
	// OnDial, when set, is told the outcome of every connection attempt a
	// Producer, Consumer or Admin makes (err nil: connected), so that an
	// application can say that the server is unreachable while the client
	// retries. It runs on the dialing goroutine and must not block.
	OnDial func(addr string, err error)
	// SASL, when its User is set, authenticates every connection right
	// after its Hello. A server with server.sasl = scram refuses every
	// other request before that.
	SASL SASL
	// TLS, when set, runs the connection over TLS with this configuration
	// (TLSConfig builds one from PEM files). An empty ServerName is taken
	// from the address dialed.
	TLS *tls.Config
}

// SASL is who a client authenticates as, with SCRAM.
type SASL struct {
	// Mechanism is proto.MechanismScramSHA256 (when empty) or
	// proto.MechanismScramSHA512.
	Mechanism string
	User      string
	Password  string
}

func (o Options) withDefaults() Options {
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = DefaultMaxResponseBytes
	}
	return o
}

// Conn is one connection to a ringmq server. It is safe for concurrent use.
type Conn struct {
	nc    net.Conn
	addr  string
	opts  Options
	hello proto.HelloResponse

	slots chan struct{} // one token per request in flight
	wake  chan struct{} // capacity 1: the write buffer has frames
	done  chan struct{} // closed when the connection fails
	wg    sync.WaitGroup

	mu      sync.Mutex
	err     error            // the first failure; set once
	pending map[uint32]*call // by correlation id; nil: abandoned by its caller
	nextID  uint32
	// The stream the writer has not taken yet: wsegs in order, each a
	// range of wbuf (the frames' own bytes) or a caller's batch by
	// reference (see Do for how long a caller's batch is read).
	wbuf    []byte
	wsegs   []seg
	wslots  int  // slots to release once the stream is written (acks 0)
	closing bool // Close was called: the writer drains the stream, then stops
	// Requests whose batches are sent by reference are numbered: lastRef
	// is the newest; the writer has taken those up to taken and written
	// those up to written (everything once it has stopped); wrote is
	// signalled each time written moves.
	lastRef, taken, written uint64
	wrote                   sync.Cond

	wv net.Buffers // the writer's: what WriteTo has left to write (a field, so it does not escape per write)
	// drained is closed by the writer once everything queued before Close
	// is written (acks 0 requests have no other way to be delivered).
	drained chan struct{}
}

// seg is a piece of the write stream: wbuf[off:end], or ref (a caller's
// batch of request number seq).
type seg struct {
	off, end int
	ref      []byte
	seq      uint64
}

// call is one caller waiting for its response.
type call struct {
	ch chan result // capacity 1
}

type result struct {
	hdr  proto.ResponseHeader
	body []byte
	err  error
}

// Dial connects to addr, starts the connection's goroutines and says Hello.
// ctx bounds the dial and the Hello exchange only.
func Dial(ctx context.Context, addr string, opts Options) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("client: dial %s: %w", addr, err)
	}
	if opts.TLS != nil {
		if nc, err = handshakeTLS(ctx, nc, addr, opts.TLS); err != nil {
			return nil, err
		}
	}
	c := newConn(nc, addr, opts.withDefaults())
	if err := c.sayHello(ctx); err != nil {
		c.Close()
		if errors.Is(err, ErrNotRingmq) {
			return nil, err // already names the address
		}
		return nil, fmt.Errorf("client: hello to %s: %w", addr, err)
	}
	if c.opts.SASL.User != "" {
		if err := c.authenticate(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("client: authenticate to %s: %w", addr, err)
		}
	}
	return c, nil
}

func newConn(nc net.Conn, addr string, opts Options) *Conn {
	c := &Conn{
		nc: nc, addr: addr, opts: opts,
		slots:   make(chan struct{}, opts.MaxInFlight),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		drained: make(chan struct{}),
		pending: make(map[uint32]*call),
	}
	c.wrote.L = &c.mu
	c.wg.Add(2)
	go c.writeLoop()
	go c.readLoop()
	return c
}

func (c *Conn) sayHello(ctx context.Context) error {
	req := proto.HelloRequest{
		MinVersion: proto.ProtocolVersion, MaxVersion: proto.ProtocolVersion,
		ClientID: c.opts.ClientID, RequestedShard: proto.NoShard,
	}
	if c.opts.RequestShard {
		req.RequestedShard = int16(c.opts.Shard)
	}
	if err := c.Do(ctx, &req, &c.hello); err != nil {
		return err
	}
	if c.hello.Version != proto.ProtocolVersion {
		return fmt.Errorf("server chose protocol version %d: %w", c.hello.Version, proto.UnsupportedVersion)
	}
	return nil
}

// Hello is the server's answer to this connection's Hello: the protocol
// version, the reactor count and the shard serving the connection.
func (c *Conn) Hello() proto.HelloResponse { return c.hello }

// Addr is the address the connection was dialed with.
func (c *Conn) Addr() string { return c.addr }

// Err is nil while the connection works, then the error that ended it.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close ends the connection: waiting and later calls fail with ErrClosed.
// It waits for the connection's goroutines to exit.
func (c *Conn) Close() error {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	// Requests already queued (acks 0 ones above all, whose callers were
	// told they were sent) go out before the connection closes.
	select {
	case <-c.drained:
	case <-c.done:
	case <-time.After(closeDrainTimeout):
	}
	c.fail(ErrClosed)
	c.wg.Wait()
	return nil
}

// closeDrainTimeout bounds how long Close waits to write what is queued.
const closeDrainTimeout = 5 * time.Second

// Do sends req and decodes the response into resp (a nil resp discards the
// body). An error the server put in the response header comes back as a
// wrapped proto.ErrorCode. A Produce with acks 0 gets no response: Do
// returns once the request is queued, and resp is left untouched. If ctx
// ends first Do returns ctx.Err(); the request may still reach the server,
// and its response is dropped.
//
// Large batches of a Produce with acks are written from req's memory
// rather than copied: req's Records must stay untouched until Do returns
// (on every path, Do returns only once the writer no longer reads them).
func (c *Conn) Do(ctx context.Context, req proto.Request, resp proto.Message) error {
	q, err := c.send(ctx, req)
	if err != nil || q.cl == nil {
		return err
	}
	return q.wait(ctx, resp)
}

// queued is a request send queued that waits for its response (cl nil:
// none expected).
type queued struct {
	c   *Conn
	api proto.APIKey
	cl  *call
	id  uint32
	seq uint64
}

// send is the first half of Do: it takes an in-flight slot and queues req.
// Requests are written in the order send queued them. Unless req expects
// no response (or send fails), the caller must call wait.
func (c *Conn) send(ctx context.Context, req proto.Request) (queued, error) {
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return queued{}, ctx.Err()
	case <-c.done:
		return queued{}, c.Err()
	}
	if !proto.ExpectsResponse(req) {
		if _, _, err := c.enqueue(req, nil); err != nil {
			<-c.slots
			return queued{}, err
		}
		return queued{}, nil // the writer frees the slot
	}
	cl := &call{ch: make(chan result, 1)}
	id, seq, err := c.enqueue(req, cl)
	if err != nil {
		<-c.slots
		return queued{}, err
	}
	return queued{c: c, api: req.APIKey(), cl: cl, id: id, seq: seq}, nil
}

// wait is the second half of Do: it waits for the response of a request
// send queued and frees its slot.
func (q queued) wait(ctx context.Context, resp proto.Message) error {
	c := q.c
	defer func() { <-c.slots }()
	select {
	case r := <-q.cl.ch:
		// A response means the server read the whole request, so the
		// kernel has copied its batches; a failure may be mid-write.
		if r.err != nil {
			c.release(q.seq)
		}
		return finish(r, q.api, resp)
	case <-ctx.Done():
		c.abandon(q.id, q.cl)
		c.release(q.seq)
		return ctx.Err()
	}
}

// release returns once request seq (0: none) no longer reads its
// caller's batches: a request still queued gets copies of them; one being
// written is waited for, which a failing connection ends.
func (c *Conn) release(seq uint64) {
	if seq == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if seq > c.taken {
		for i := range c.wsegs {
			if s := &c.wsegs[i]; s.seq == seq && s.ref != nil {
				s.off = len(c.wbuf)
				c.wbuf = append(c.wbuf, s.ref...)
				s.end, s.ref = len(c.wbuf), nil
			}
		}
		return
	}
	for c.written < seq {
		c.wrote.Wait()
	}
}

func finish(r result, api proto.APIKey, resp proto.Message) error {
	switch {
	case r.err != nil:
		return r.err
	case r.hdr.Error != proto.None:
		return fmt.Errorf("client: %v: %w", api, r.hdr.Error)
	}
	if resp == nil {
		return nil
	}
	if err := resp.Decode(r.body); err != nil {
		return fmt.Errorf("client: %v response: %w: %w", api, ErrProtocol, err)
	}
	return nil
}

// enqueue appends req's frame to the write stream and registers cl (nil:
// no response expected) under a fresh correlation id. seq numbers a
// request whose batches the stream references (0: none, all copied).
func (c *Conn) enqueue(req proto.Request, cl *call) (id uint32, seq uint64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, 0, c.err
	}
	start, ok := len(c.wbuf), false
	defer func() {
		if !ok { // too large, or the encoder panicked: keep the stream whole
			c.wbuf = c.wbuf[:start]
		}
	}()
	id = c.newID()
	var gaps []proto.Gap
	var gapArr [4]proto.Gap
	if p, isProduce := req.(*proto.ProduceRequest); isProduce && cl != nil {
		c.wbuf, gaps = proto.AppendProduceRequestSplit(c.wbuf, id, p, minRefBytes, gapArr[:0])
	} else {
		c.wbuf = proto.AppendRequest(c.wbuf, id, req)
	}
	n, _ := proto.FrameLength(c.wbuf[start:])
	if n-proto.FrameLengthSize > c.opts.MaxRequestBytes {
		return 0, 0, fmt.Errorf("client: %v request: %w: %d bytes, limit %d",
			req.APIKey(), proto.ErrFrameTooLarge, n-proto.FrameLengthSize, c.opts.MaxRequestBytes)
	}
	ok = true
	if len(gaps) > 0 {
		c.lastRef++
		seq = c.lastRef
	}
	at := start
	for _, g := range gaps {
		c.addSeg(at, g.At)
		c.wsegs = append(c.wsegs, seg{ref: g.Bytes, seq: seq})
		at = g.At
	}
	c.addSeg(at, len(c.wbuf))
	if cl != nil {
		c.pending[id] = cl
	} else {
		c.wslots++
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return id, seq, nil
}

// addSeg appends wbuf[off:end] to the stream, extending the last piece
// when it ends at off. c.mu is held.
func (c *Conn) addSeg(off, end int) {
	if off == end {
		return
	}
	if k := len(c.wsegs) - 1; k >= 0 && c.wsegs[k].ref == nil && c.wsegs[k].end == off {
		c.wsegs[k].end = end
		return
	}
	c.wsegs = append(c.wsegs, seg{off: off, end: end})
}

// newID returns a correlation id no request in flight uses. c.mu is held.
func (c *Conn) newID() uint32 {
	for {
		c.nextID++
		if _, busy := c.pending[c.nextID]; !busy && c.nextID != proto.ConnErrorID {
			return c.nextID
		}
	}
}

// abandon marks cl's request as no longer awaited; its response, when it
// comes, is dropped.
func (c *Conn) abandon(id uint32, cl *call) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending[id] == cl {
		c.pending[id] = nil
	}
}

// fail records the first error, closes the socket and fails every waiter.
func (c *Conn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	close(c.done)
	c.nc.Close()
	for _, cl := range pending {
		if cl != nil {
			cl.ch <- result{err: err}
		}
	}
}

func (c *Conn) lost(op string, err error) error {
	return fmt.Errorf("%w: %s %s: %w", ErrConnectionLost, op, c.addr, err)
}

// writeLoop sends, in one vectored write, every frame queued since the
// last write.
func (c *Conn) writeLoop() {
	defer c.wg.Done()
	defer c.stopWriting()
	var buf []byte
	var segs []seg
	var vec net.Buffers
	var wrote uint64 // requests with batches by reference written so far
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		c.mu.Lock()
		buf, c.wbuf = c.wbuf, buf[:0]
		segs, c.wsegs = c.wsegs, segs[:0]
		slots := c.wslots
		c.wslots = 0
		closing := c.closing
		taken := c.lastRef
		c.taken = taken
		c.mu.Unlock()
		if err := c.writeSegs(buf, segs, &vec); err != nil {
			c.fail(c.lost("write to", err))
			return
		}
		clear(segs) // drop the references to callers' batches
		if taken > wrote {
			c.wroteUpTo(taken)
			wrote = taken
		}
		for ; slots > 0; slots-- {
			<-c.slots
		}
		if cap(buf) > maxRetainedWrite {
			buf = nil
		}
		if closing {
			c.mu.Lock()
			empty := len(c.wsegs) == 0
			c.mu.Unlock()
			if empty {
				close(c.drained)
				<-c.done
				return
			}
		}
	}
}

// writeSegs writes the stream segs (pieces of buf and callers' batches):
// one plain Write when it is one piece of buf, else one vectored write
// (writev). The race detector sees no ordering through writev, unlike
// through write; tests that order memory through the socket keep that
// in mind.
func (c *Conn) writeSegs(buf []byte, segs []seg, vec *net.Buffers) error {
	switch {
	case len(segs) == 0:
		return nil
	case len(segs) == 1 && segs[0].ref == nil:
		_, err := c.nc.Write(buf[segs[0].off:segs[0].end])
		return err
	}
	v := (*vec)[:0]
	for _, s := range segs {
		if s.ref != nil {
			v = append(v, s.ref)
		} else {
			v = append(v, buf[s.off:s.end])
		}
	}
	*vec = v
	c.wv = v // WriteTo consumes its receiver; *vec keeps the array
	_, err := c.wv.WriteTo(c.nc)
	clear(v) // drop the references to callers' batches
	return err
}

// wroteUpTo records that requests up to seq no longer read their
// callers' batches and wakes release.
func (c *Conn) wroteUpTo(seq uint64) {
	c.mu.Lock()
	if seq > c.written {
		c.written = seq
		c.wrote.Broadcast()
	}
	c.mu.Unlock()
}

// stopWriting marks every request written (the writer reads no batch
// once it has returned).
func (c *Conn) stopWriting() { c.wroteUpTo(math.MaxUint64) }

// readLoop reads response frames and hands each to its waiting caller.
func (c *Conn) readLoop() {
	defer c.wg.Done()
	br := bufio.NewReaderSize(c.nc, readBufferSize)
	for first := true; ; first = false {
		if first {
			if err := c.sniff(br); err != nil {
				c.fail(err)
				return
			}
		}
		frame, err := c.readFrame(br)
		if err != nil {
			c.fail(err)
			return
		}
		h, body, err := proto.ParseResponseHeader(frame)
		if err != nil {
			c.fail(fmt.Errorf("%w: %w", ErrProtocol, err))
			return
		}
		if err := c.dispatch(h, body); err != nil {
			if first && h.CorrelationID != proto.ConnErrorID {
				// A connection error (TOO_MANY_CONNECTIONS) is ringmq
				// speaking; anything else unexpected first is not.
				err = c.notRingmq(frame, "bytes that are not a ringmq response")
			}
			c.fail(err)
			return
		}
	}
}

func (c *Conn) readFrame(br *bufio.Reader) ([]byte, error) {
	var lenBuf [proto.FrameLengthSize]byte
	if _, err := io.ReadFull(br, lenBuf[:]); err != nil {
		return nil, c.lost("read from", err)
	}
	n, _ := proto.FrameLength(lenBuf[:])
	if err := proto.CheckFrameLength(n, c.opts.MaxResponseBytes); err != nil {
		return nil, fmt.Errorf("%w: response: %w", ErrProtocol, err)
	}
	if n < proto.ResponseHeaderSize {
		return nil, fmt.Errorf("%w: response frame of %d bytes", ErrProtocol, n)
	}
	frame := make([]byte, n)
	copy(frame, lenBuf[:])
	if _, err := io.ReadFull(br, frame[proto.FrameLengthSize:]); err != nil {
		return nil, c.lost("read from", err)
	}
	return frame, nil
}

func (c *Conn) dispatch(h proto.ResponseHeader, body []byte) error {
	c.mu.Lock()
	cl, ok := c.pending[h.CorrelationID]
	delete(c.pending, h.CorrelationID)
	c.mu.Unlock()
	switch {
	case h.CorrelationID == proto.ConnErrorID && h.Error != proto.None:
		return fmt.Errorf("client: %s closed the connection: %w", c.addr, h.Error)
	case !ok:
		return fmt.Errorf("%w: response to correlation id %d, which is not in flight", ErrProtocol, h.CorrelationID)
	case cl != nil:
		cl.ch <- result{hdr: h, body: body}
	}
	return nil
}
