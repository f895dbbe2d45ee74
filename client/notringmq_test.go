package client

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// TestDialNotRingmq points Dial at servers that speak something else: each
// must fail at once with ErrNotRingmq and a one-line message saying what
// answered, not a frame-size or protocol complaint.
func TestDialNotRingmq(t *testing.T) {
	cases := []struct {
		name, answer, want string
	}{
		{"http", "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n400 Bad Request", "an HTTP server"},
		{"tls", "\x15\x03\x01\x00\x02\x02\x46", "a TLS server"},
		{"garbage", "\xff\xff\xff\x7f\x00\x00\x00\x00\x00\x00\x00\x00", "ff ff ff 7f"},
		{"short frame", "\x01\x00\x00\x00\x00", "01 00 00 00 00"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				nc, err := ln.Accept()
				if err != nil {
					return
				}
				defer nc.Close()
				buf := make([]byte, 64)
				nc.Read(buf) // the Hello
				nc.Write([]byte(c.answer))
				nc.Read(buf) // until the client hangs up
			}()
			conn, err := Dial(testCtx(t), ln.Addr().String(), Options{})
			if conn != nil {
				conn.Close()
			}
			if !errors.Is(err, ErrNotRingmq) || !strings.Contains(err.Error(), c.want) ||
				!strings.Contains(err.Error(), ln.Addr().String()+" is not a ringmq server") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Dial = %v; want ErrNotRingmq naming %q", err, c.want)
			}
		})
	}
}

// TestOnDialReportsAttempts: a producer whose server is down reports each
// failed connection attempt through OnDial while it retries.
func TestOnDialReportsAttempts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	got := make(chan error, 16)
	p, err := NewProducer(addr, ProducerOptions{OnDial: func(a string, err error) {
		if a == addr {
			select {
			case got <- err:
			default:
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(testCtx(t))
	go p.Send(testCtx(t), Record{Topic: "t", Value: []byte("v")}, nil)
	select {
	case err := <-got:
		if err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("OnDial got %v, want connection refused", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("OnDial was never called")
	}
}
