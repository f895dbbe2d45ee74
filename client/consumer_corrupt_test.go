package client_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

// The real server never serves a bad batch, so this test uses a scripted
// one: answers to Hello and Metadata, and a Fetch handler.
type scriptedServer struct {
	ln    net.Listener
	fetch func(offset uint64) []byte // records for partition 0 of topic "t"
	wg    sync.WaitGroup
}

func newScriptedServer(t *testing.T, fetch func(offset uint64) []byte) *scriptedServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptedServer{ln: ln, fetch: fetch}
	var mu sync.Mutex
	var conns []net.Conn
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			s.wg.Add(1)
			go s.serve(t, nc)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, nc := range conns {
			nc.Close()
		}
		mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *scriptedServer) serve(t *testing.T, nc net.Conn) {
	defer s.wg.Done()
	br := bufio.NewReader(nc)
	for {
		var lenBuf [proto.FrameLengthSize]byte
		if _, err := io.ReadFull(br, lenBuf[:]); err != nil {
			return
		}
		n, _ := proto.FrameLength(lenBuf[:])
		frame := append(lenBuf[:], make([]byte, n-proto.FrameLengthSize)...)
		if _, err := io.ReadFull(br, frame[proto.FrameLengthSize:]); err != nil {
			return
		}
		h, body, err := proto.ParseRequestHeader(frame)
		if err != nil {
			t.Errorf("scripted server: %v", err)
			return
		}
		resp := s.answer(t, h.API, body)
		if _, err := nc.Write(proto.AppendResponse(nil, proto.ResponseHeader{CorrelationID: h.CorrelationID}, resp)); err != nil {
			return
		}
	}
}

func (s *scriptedServer) answer(t *testing.T, api proto.APIKey, body []byte) proto.Message {
	switch api {
	case proto.APIHello:
		var req proto.HelloRequest
		_ = req.Decode(body)
		return &proto.HelloResponse{Version: proto.ProtocolVersion, Reactors: 1, Shard: uint16(max(req.RequestedShard, 0))}
	case proto.APIMetadata:
		return &proto.MetadataResponse{Topics: []proto.MetadataTopic{{Name: "t", Partitions: []proto.PartitionInfo{{LogEnd: 6}}}}}
	case proto.APIFetch:
		var req proto.FetchRequest
		if err := req.Decode(body); err != nil {
			t.Errorf("scripted server: fetch: %v", err)
		}
		off := req.Topics[0].Partitions[0].Offset
		return &proto.FetchResponse{Topics: []proto.FetchTopicResponse{{Name: []byte("t"),
			Partitions: []proto.FetchPartitionResponse{{HighWatermark: 6, Records: s.fetch(off)}}}}}
	}
	t.Errorf("scripted server: unexpected %v", api)
	return nil
}

func batchAt(base uint64, values ...string) []byte {
	var b proto.BatchBuilder
	b.Reset(nil)
	for _, v := range values {
		b.Append(1000, nil, []byte(v), nil)
	}
	out := append([]byte(nil), b.Finish()...)
	proto.SetBaseOffset(out, base)
	return out
}

// Records before a corrupt batch are returned; then Poll fails with
// ErrCorrupt and the position stays before the bad batch. A batch cut short
// at the end of a fetch is left for the next one.
func TestConsumerRejectsCorruptBatch(t *testing.T) {
	good := batchAt(0, "a", "b", "c")
	bad := batchAt(3, "d", "e", "f")
	bad[len(bad)-1] ^= 0xff // the CRC no longer matches
	s := newScriptedServer(t, func(off uint64) []byte {
		if off < 3 {
			return append(append([]byte(nil), good...), bad[:20]...) // a cut-short tail
		}
		return bad
	})
	c := newConsumer(t, s.ln.Addr().String(), client.ConsumerOptions{Start: client.StartAt(1)})
	ctx := testCtx(t)
	if err := c.Assign(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	recs, err := c.Poll(ctx)
	if err != nil || len(recs) != 2 || string(recs[0].Value) != "b" || recs[0].Offset != 1 || string(recs[1].Value) != "c" {
		t.Fatalf("first poll: %+v, %v; want b and c (a is below the start)", recs, err)
	}
	if _, err := c.Poll(ctx); !errors.Is(err, proto.ErrCorrupt) {
		t.Fatalf("poll of a corrupt batch: %v, want ErrCorrupt", err)
	}
	if pos, _ := c.Position("t", 0); pos != 3 {
		t.Errorf("position %d after the corrupt batch, want 3", pos)
	}
}
