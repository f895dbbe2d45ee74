package driver

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
)

func heartbeat(from, to uint64) *pb.Message {
	return &pb.Message{Type: pb.MsgHeartbeat.Enum(), From: new(from), To: new(to), Term: new(uint64(3))}
}

// A peer that is down fills its bounded queue (Send reports the drop);
// once it listens, messages flow; after it restarts, the sender redials.
func TestTCPQueueBoundAndReconnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // peer 2 is down

	lnA, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := NewTCP(TCPConfig{Listener: lnA, Peers: map[uint64]string{2: addr}, QueueLen: 8,
		MaxBackoff: 20 * time.Millisecond, Deliver: func(*pb.Message) {}})
	defer a.Close()
	dropped := false
	for i := 0; i < 1000 && !dropped; i++ {
		dropped = !a.Send(2, []*pb.Message{heartbeat(1, 2)})
	}
	if !dropped {
		t.Fatal("1000 messages to a peer that is down never filled an 8-message queue")
	}
	if a.Send(9, []*pb.Message{heartbeat(1, 9)}) {
		t.Fatal("Send to an unknown peer reported success")
	}

	for round := range 2 { // peer 2 comes up, then restarts
		var got atomic.Int64
		lnB := listenOn(t, addr)
		b := NewTCP(TCPConfig{Listener: lnB, Deliver: func(m *pb.Message) {
			if m.GetFrom() == 1 && m.GetType() == pb.MsgHeartbeat && m.GetTerm() == 3 {
				got.Add(1)
			}
		}})
		deadline := time.Now().Add(10 * time.Second)
		for got.Load() == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: nothing delivered within 10s", round)
			}
			a.Send(2, []*pb.Message{heartbeat(1, 2)})
			<-time.After(10 * time.Millisecond)
		}
		b.Close()
	}
}

func listenOn(t *testing.T, addr string) net.Listener {
	deadline := time.Now().Add(10 * time.Second)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			return ln
		}
		if time.Now().After(deadline) {
			t.Fatalf("listen on %s: %v", addr, err)
		}
		<-time.After(20 * time.Millisecond)
	}
}

// A frame longer than the limit closes the connection; nothing is
// delivered.
func TestTCPRefusesLargeFrame(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var got atomic.Int64
	b := NewTCP(TCPConfig{Listener: ln, MaxFrame: 16, Deliver: func(*pb.Message) { got.Add(1) }})
	defer b.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	big := &pb.Message{Type: pb.MsgApp.Enum(), From: new(uint64(1)), To: new(uint64(2)),
		Entries: []*pb.Entry{{Data: make([]byte, 100)}}}
	frame, err := appendMessageFrame(nil, big)
	if err != nil {
		t.Fatal(err)
	}
	c.Write(frame)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the connection stayed open after an oversized frame")
	}
	if got.Load() != 0 {
		t.Fatal("an oversized frame was delivered")
	}
}
