package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringmq/ringmq/proto"
)

func TestDialHelloRequestsShard(t *testing.T) {
	s := newFakeServer(t, nil)
	got := make(chan proto.HelloRequest, 1)
	s.onHello = func(req *proto.HelloRequest) (proto.ErrorCode, *proto.HelloResponse) {
		got <- *req
		return proto.None, &proto.HelloResponse{Version: proto.ProtocolVersion, Reactors: 4, Shard: 3, Moved: true}
	}
	c := dial(t, s, Options{ClientID: "billing", RequestShard: true, Shard: 3})
	req := <-got
	want := proto.HelloRequest{MinVersion: 1, MaxVersion: 1, ClientID: "billing", RequestedShard: 3}
	if req != want {
		t.Fatalf("server saw %+v, want %+v", req, want)
	}
	if h := c.Hello(); h != (proto.HelloResponse{Version: 1, Reactors: 4, Shard: 3, Moved: true}) {
		t.Fatalf("Hello() = %+v", h)
	}
	c2 := dial(t, s, Options{})
	if req := <-got; req.RequestedShard != proto.NoShard || c2.Addr() != s.addr() {
		t.Fatalf("no shard requested, server saw %d", req.RequestedShard)
	}
}

func TestDialHelloRejected(t *testing.T) {
	cases := []struct {
		name string
		code proto.ErrorCode
		resp *proto.HelloResponse
	}{
		{"header error", proto.UnsupportedVersion, nil},
		{"other version", proto.None, &proto.HelloResponse{Version: 9}},
		{"shutting down", proto.ServerShuttingDown, nil},
	}
	for _, c := range cases {
		s := newFakeServer(t, nil)
		s.onHello = func(*proto.HelloRequest) (proto.ErrorCode, *proto.HelloResponse) { return c.code, c.resp }
		conn, err := Dial(testCtx(t), s.addr(), Options{})
		want := c.code
		if want == proto.None {
			want = proto.UnsupportedVersion
		}
		if conn != nil || !errors.Is(err, want) || !strings.Contains(err.Error(), "hello") {
			t.Errorf("%s: Dial = %v, %v; want %v", c.name, conn, err, want)
		}
	}
	s := newFakeServer(t, nil)
	addr := s.addr()
	s.ln.Close()
	if _, err := Dial(testCtx(t), addr, Options{}); err == nil {
		t.Fatal("Dial to a closed listener succeeded")
	}
}

// 64 requests are all in flight at once (the server answers none until it
// has them all), then answered in reverse order.
func TestPipelinedOutOfOrder(t *testing.T) {
	const n = 64
	type held struct {
		corr uint32
		req  *proto.MetadataRequest
	}
	var mu sync.Mutex
	var pending []held
	s := newFakeServer(t, func(fc *fakeConn, h proto.RequestHeader, body []byte) {
		mu.Lock()
		defer mu.Unlock()
		pending = append(pending, held{h.CorrelationID, decodeReq[proto.MetadataRequest](t, body)})
		if len(pending) < n {
			return
		}
		for i := len(pending) - 1; i >= 0; i-- {
			metadataEcho(fc, pending[i].corr, pending[i].req)
		}
	})
	c := dial(t, s, Options{})
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			name := fmt.Sprintf("topic-%d", i) + strings.Repeat("x", i)
			resp, err := c.Metadata(testCtx(t), &proto.MetadataRequest{Topics: []string{name}})
			if err == nil && (len(resp.Topics) != 1 || resp.Topics[0].Name != name || len(resp.Topics[0].Partitions) != len(name)) {
				err = fmt.Errorf("request %d got %+v", i, resp)
			}
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestContextCancelDropsLateResponse(t *testing.T) {
	type heldReq struct {
		fc   *fakeConn
		corr uint32
	}
	held := make(chan heldReq, 1)
	s := newFakeServer(t, func(fc *fakeConn, h proto.RequestHeader, body []byte) {
		req := decodeReq[proto.MetadataRequest](t, body)
		if len(req.Topics) == 1 && req.Topics[0] == "hold" {
			held <- heldReq{fc, h.CorrelationID}
			return
		}
		metadataEcho(fc, h.CorrelationID, req)
	})
	c := dial(t, s, Options{})
	ctx, cancel := context.WithCancel(testCtx(t))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Metadata(ctx, &proto.MetadataRequest{Topics: []string{"hold"}})
		errc <- err
	}()
	h := <-held
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v", err)
	}
	h.fc.reply(h.corr, proto.None, &proto.MetadataResponse{}) // late: must be dropped
	resp, err := c.Metadata(testCtx(t), &proto.MetadataRequest{Topics: []string{"ok"}})
	if err != nil || resp.Topics[0].Name != "ok" || c.Err() != nil {
		t.Fatalf("after a cancelled call: %+v %v (conn %v)", resp, err, c.Err())
	}
	c.mu.Lock()
	left := len(c.pending)
	c.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d entries left in pending", left)
	}
	if _, err := c.Metadata(ctx, &proto.MetadataRequest{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("call with a done context: %v", err)
	}
}

func TestConnectionDeathFailsAllWaiters(t *testing.T) {
	const n = 10
	var mu sync.Mutex
	seen := 0
	s := newFakeServer(t, func(fc *fakeConn, h proto.RequestHeader, body []byte) {
		mu.Lock()
		defer mu.Unlock()
		if seen++; seen == n {
			fc.nc.Close()
		}
	})
	c := dial(t, s, Options{})
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, err := c.Fetch(testCtx(t), &proto.FetchRequest{MaxWaitMs: 100})
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; !errors.Is(err, ErrConnectionLost) {
			t.Fatalf("waiter %d: %v, want ErrConnectionLost", i, err)
		}
	}
	if _, err := c.Metadata(testCtx(t), &proto.MetadataRequest{}); !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("call after death: %v", err)
	}
	if !errors.Is(c.Err(), ErrConnectionLost) {
		t.Fatalf("Err() = %v", c.Err())
	}
}

func TestUnknownCorrelationIDFailsConnection(t *testing.T) {
	s := newFakeServer(t, func(fc *fakeConn, h proto.RequestHeader, body []byte) {
		fc.reply(h.CorrelationID+1000, proto.None, &proto.MetadataResponse{})
	})
	c := dial(t, s, Options{})
	_, err := c.Metadata(testCtx(t), &proto.MetadataRequest{})
	if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "not in flight") {
		t.Fatalf("err = %v, want ErrProtocol", err)
	}
}

func TestMalformedBodyFailsOnlyThatCall(t *testing.T) {
	s := newFakeServer(t, func(fc *fakeConn, h proto.RequestHeader, body []byte) {
		req := decodeReq[proto.MetadataRequest](t, body)
		if len(req.Topics) == 0 {
			fc.writeRaw(append(proto.AppendResponseHeader(nil, proto.ResponseHeader{CorrelationID: h.CorrelationID}, 3), 9, 9, 9))
			return
		}
		metadataEcho(fc, h.CorrelationID, req)
	})
	c := dial(t, s, Options{})
	_, err := c.Metadata(testCtx(t), &proto.MetadataRequest{})
	if !errors.Is(err, ErrProtocol) || !errors.Is(err, proto.ErrShortBuffer) {
		t.Fatalf("err = %v", err)
	}
	if _, err := c.Metadata(testCtx(t), &proto.MetadataRequest{Topics: []string{"a"}}); err != nil {
		t.Fatalf("next call: %v", err)
	}
}

func TestCloseFailsWaitersAndLaterCalls(t *testing.T) {
	got := make(chan struct{}, 1)
	s := newFakeServer(t, func(*fakeConn, proto.RequestHeader, []byte) { got <- struct{}{} })
	c := dial(t, s, Options{})
	errc := make(chan error, 1)
	go func() {
		_, err := c.Metadata(testCtx(t), &proto.MetadataRequest{})
		errc <- err
	}()
	<-got
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("waiter: %v", err)
	}
	if _, err := c.Metadata(testCtx(t), &proto.MetadataRequest{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestFrameLimits(t *testing.T) {
	var mu sync.Mutex
	var seen []int
	s := newFakeServer(t, func(fc *fakeConn, h proto.RequestHeader, body []byte) {
		mu.Lock()
		seen = append(seen, len(body))
		mu.Unlock()
		if h.API == proto.APIMetadata {
			metadataEcho(fc, h.CorrelationID, decodeReq[proto.MetadataRequest](t, body))
		}
	})
	c := dial(t, s, Options{MaxRequestBytes: 1024, MaxResponseBytes: 1024})
	big := &proto.ProduceRequest{Acks: proto.AcksLeader, Topics: []proto.ProduceTopic{{
		Name: []byte("t"), Partitions: []proto.ProducePartition{{Records: make([]byte, 2000)}}}}}
	if _, err := c.Produce(testCtx(t), big); !errors.Is(err, proto.ErrFrameTooLarge) {
		t.Fatalf("large request: %v", err)
	}
	if _, err := c.Metadata(testCtx(t), &proto.MetadataRequest{Topics: []string{"small"}}); err != nil {
		t.Fatalf("after a refused request: %v", err)
	}
	mu.Lock()
	if len(seen) != 1 {
		t.Fatalf("server saw %d requests, want only the small one", len(seen))
	}
	mu.Unlock()
	// 60 partitions make a 1.3 KiB response.
	_, err := c.Metadata(testCtx(t), &proto.MetadataRequest{Topics: []string{strings.Repeat("x", 60)}})
	if !errors.Is(err, ErrProtocol) || !errors.Is(err, proto.ErrFrameTooLarge) || c.Err() == nil {
		t.Fatalf("large response: %v (conn %v)", err, c.Err())
	}
}

// With MaxInFlight 2 and two requests held by the server, a third call
// waits for a slot and is never sent if its context ends first.
func TestMaxInFlight(t *testing.T) {
	var mu sync.Mutex
	var held []uint32
	var total int
	holding := make(chan *fakeConn, 2)
	s := newFakeServer(t, func(fc *fakeConn, h proto.RequestHeader, body []byte) {
		mu.Lock()
		defer mu.Unlock()
		if total++; total <= 2 {
			held = append(held, h.CorrelationID)
			holding <- fc
			return
		}
		metadataEcho(fc, h.CorrelationID, decodeReq[proto.MetadataRequest](t, body))
	})
	c := dial(t, s, Options{MaxInFlight: 2})
	errs := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() {
			_, err := c.Metadata(testCtx(t), &proto.MetadataRequest{})
			errs <- err
		}()
	}
	fc := <-holding
	<-holding
	// The third call runs here, so it surely reaches Do; its deadline ends
	// the wait for a slot (with no cap it would be sent at once).
	ctx, cancel := context.WithTimeout(testCtx(t), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Metadata(ctx, &proto.MetadataRequest{Topics: []string{"third"}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third call: %v", err)
	}
	mu.Lock()
	for _, corr := range held {
		fc.reply(corr, proto.None, &proto.MetadataResponse{})
	}
	mu.Unlock()
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Metadata(testCtx(t), &proto.MetadataRequest{Topics: []string{"fourth"}}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if total != 3 {
		t.Fatalf("server saw %d requests, want 3 (the cancelled one never sent)", total)
	}
}

func TestProduceAcksNone(t *testing.T) {
	produced := make(chan []byte, 2)
	s := newFakeServer(t, func(fc *fakeConn, h proto.RequestHeader, body []byte) {
		switch h.API {
		case proto.APIProduce:
			req := decodeReq[proto.ProduceRequest](t, body)
			produced <- req.Topics[0].Partitions[0].Records
		case proto.APIMetadata:
			metadataEcho(fc, h.CorrelationID, decodeReq[proto.MetadataRequest](t, body))
		}
	})
	c := dial(t, s, Options{MaxInFlight: 1})
	for i := 0; i < 2; i++ { // a second one needs the slot the first released
		req := &proto.ProduceRequest{Acks: proto.AcksNone, Topics: []proto.ProduceTopic{{
			Name: []byte("t"), Partitions: []proto.ProducePartition{{Records: []byte{byte(i)}}}}}}
		resp, err := c.Produce(testCtx(t), req)
		if resp != nil || err != nil {
			t.Fatalf("acks 0: %v %v", resp, err)
		}
		if got := <-produced; !bytes.Equal(got, []byte{byte(i)}) {
			t.Fatalf("server got records %x", got)
		}
	}
	if _, err := c.Metadata(testCtx(t), &proto.MetadataRequest{}); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) != 0 {
		t.Fatalf("%d waiters registered for acks 0", len(c.pending))
	}
}

func TestDoWithNilResponseDiscardsBody(t *testing.T) {
	s := newFakeServer(t, func(fc *fakeConn, h proto.RequestHeader, body []byte) {
		fc.writeRaw(append(proto.AppendResponseHeader(nil, proto.ResponseHeader{CorrelationID: h.CorrelationID}, 2), 1, 2))
	})
	c := dial(t, s, Options{})
	if err := c.Do(testCtx(t), &proto.MetadataRequest{}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Metadata(testCtx(t), &proto.MetadataRequest{}); !errors.Is(err, ErrProtocol) {
		t.Fatalf("the same body decoded as Metadata: %v", err)
	}
}
