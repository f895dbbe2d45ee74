package client

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ringmq/ringmq/proto"
)

// fakeServer speaks just enough of the protocol to test Conn: it answers
// Hello itself and hands every other request to the test's handler, which
// may answer at once, later, out of order, or never.
type fakeServer struct {
	t       testing.TB
	ln      net.Listener
	onHello func(req *proto.HelloRequest) (proto.ErrorCode, *proto.HelloResponse)
	handler func(fc *fakeConn, h proto.RequestHeader, body []byte)

	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []*fakeConn
	down  bool // shut down: connections accepted late are closed
}

type fakeConn struct {
	nc  net.Conn
	wmu sync.Mutex
}

func (fc *fakeConn) reply(corr uint32, code proto.ErrorCode, resp proto.Message) {
	fc.writeRaw(proto.AppendResponse(nil, proto.ResponseHeader{CorrelationID: corr, Error: code}, resp))
}

func (fc *fakeConn) writeRaw(frame []byte) {
	fc.wmu.Lock()
	defer fc.wmu.Unlock()
	_, _ = fc.nc.Write(frame) // the client may be gone; its test checks what it saw
}

func newFakeServer(t testing.TB, handler func(fc *fakeConn, h proto.RequestHeader, body []byte)) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, ln: ln, handler: handler}
	s.wg.Add(1)
	go s.acceptLoop()
	t.Cleanup(s.shutdown)
	return s
}

// shutdown closes the listener and every connection, as a server that
// dies does, and waits for its goroutines. It may be called again.
func (s *fakeServer) shutdown() {
	s.ln.Close()
	s.mu.Lock()
	s.down = true
	for _, fc := range s.conns {
		fc.nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

func (s *fakeServer) acceptLoop() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		fc := &fakeConn{nc: nc}
		s.mu.Lock()
		if s.down {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		s.conns = append(s.conns, fc)
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(fc)
	}
}

func (s *fakeServer) serve(fc *fakeConn) {
	defer s.wg.Done()
	defer fc.nc.Close()
	br := bufio.NewReader(fc.nc)
	for {
		var lenBuf [4]byte
		if _, err := io.ReadFull(br, lenBuf[:]); err != nil {
			return
		}
		n, _ := proto.FrameLength(lenBuf[:])
		if err := proto.CheckFrameLength(n, proto.DefaultMaxFrameBytes); err != nil {
			s.t.Errorf("fake server: %v", err)
			return
		}
		frame := make([]byte, n)
		copy(frame, lenBuf[:])
		if _, err := io.ReadFull(br, frame[4:]); err != nil {
			return
		}
		h, body, err := proto.ParseRequestHeader(frame)
		if err != nil || h.Version != 0 {
			s.t.Errorf("fake server: bad request frame %+v: %v", h, err)
			return
		}
		if h.API == proto.APIHello {
			s.hello(fc, h, body)
			continue
		}
		s.handler(fc, h, body)
	}
}

func (s *fakeServer) hello(fc *fakeConn, h proto.RequestHeader, body []byte) {
	var req proto.HelloRequest
	if err := req.Decode(body); err != nil {
		s.t.Errorf("fake server: hello: %v", err)
		return
	}
	code, resp := proto.None, &proto.HelloResponse{Version: proto.ProtocolVersion, Reactors: 2}
	if s.onHello != nil {
		code, resp = s.onHello(&req)
	}
	var msg proto.Message // a header error carries no body
	if code == proto.None {
		msg = resp
	}
	fc.reply(h.CorrelationID, code, msg)
}

// dial connects to s and closes the connection when the test ends.
func dial(t *testing.T, s *fakeServer, opts Options) *Conn {
	t.Helper()
	c, err := Dial(testCtx(t), s.addr(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// testCtx bounds a test's calls so a bug fails the test instead of hanging
// it; no test relies on the deadline to pass.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func decodeReq[R any, PR interface {
	*R
	proto.Message
}](t *testing.T, body []byte) *R {
	r := new(R)
	if err := PR(r).Decode(body); err != nil {
		t.Errorf("fake server: decode %T: %v", r, err)
	}
	return r
}

// metadataEcho answers a Metadata request with one topic per requested
// name, each with as many partitions as the name is long.
func metadataEcho(fc *fakeConn, corr uint32, req *proto.MetadataRequest) {
	resp := &proto.MetadataResponse{}
	for _, name := range req.Topics {
		resp.Topics = append(resp.Topics, proto.MetadataTopic{
			Name: name, Partitions: make([]proto.PartitionInfo, len(name)),
		})
	}
	fc.reply(corr, proto.None, resp)
}

func isConnErr(err error) bool {
	return errors.Is(err, ErrConnectionLost) || errors.Is(err, ErrClosed) || errors.Is(err, ErrProtocol)
}
