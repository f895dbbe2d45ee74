package chaos

import (
	"net"
	"sync"
	"testing"
	"time"
)

// proxy forwards the TCP connections made to its listener (127.0.0.1,
// port 0) to target, byte for byte, and injects faults on command:
//
//   - block(up, down): hold the bytes of one direction or both (up: from
//     the dialing side to target) until unblocked, as a network that drops
//     packets does to a TCP connection that keeps retransmitting; new
//     connections are accepted and held the same way;
//   - delay(d): hold every chunk d before forwarding it;
//   - reset(): close every current connection (both sides see a reset or
//     an EOF).
//
// Every link of a chaos cluster is one proxy: node a dialing node b goes
// through the proxy a→b; clients reach node b through b's client proxy.
type proxy struct {
	name   string
	target string
	ln     net.Listener

	mu      sync.Mutex
	changed *sync.Cond
	up      bool // bytes toward target held
	down    bool // bytes from target held
	lag     time.Duration
	conns   map[net.Conn]bool
	closed  bool
	wg      sync.WaitGroup
}

func startProxy(t testing.TB, name, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{name: name, target: target, ln: ln, conns: map[net.Conn]bool{}}
	p.changed = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) block(up, down bool) {
	p.mu.Lock()
	p.up, p.down = up, down
	p.changed.Broadcast()
	p.mu.Unlock()
}

func (p *proxy) delay(d time.Duration) {
	p.mu.Lock()
	p.lag = d
	p.mu.Unlock()
}

// heal lifts blocks and delays.
func (p *proxy) heal() {
	p.block(false, false)
	p.delay(0)
}

func (p *proxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.changed.Broadcast()
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = true
	return true
}

func (p *proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *proxy) serve(c net.Conn) {
	defer p.wg.Done()
	if !p.track(c) {
		return
	}
	defer p.untrack(c)
	s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	if !p.track(s) {
		return
	}
	defer p.untrack(s)
	done := make(chan struct{}, 2)
	go func() { p.pipe(c, s, true); done <- struct{}{} }()
	go func() { p.pipe(s, c, false); done <- struct{}{} }()
	<-done
	c.Close()
	s.Close()
	<-done
}

// pipe copies src to dst, holding each chunk while its direction is
// blocked (or the delay lasts); it ends when either side does.
func (p *proxy) pipe(src, dst net.Conn, up bool) {
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.pass(up) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// pass waits while the direction is blocked, then for the delay; false
// when the proxy closed meanwhile.
func (p *proxy) pass(up bool) bool {
	p.mu.Lock()
	for !p.closed && ((up && p.up) || (!up && p.down)) {
		p.changed.Wait() // woken by block, heal and close
	}
	lag, closed := p.lag, p.closed
	p.mu.Unlock()
	if lag > 0 {
		time.Sleep(lag) // the injected latency itself, not synchronization
	}
	return !closed
}

// TestProxyFaults: bytes pass; a blocked direction holds them until
// healed; reset closes the connection.
func TestProxyFaults(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // an echo server
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 1024)
				for {
					n, err := c.Read(b)
					if err != nil {
						return
					}
					c.Write(b[:n])
				}
			}()
		}
	}()
	p := startProxy(t, "echo", ln.Addr().String())
	c, err := net.Dial("tcp", p.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echo := func(msg string, wait time.Duration) (string, error) {
		if _, err := c.Write([]byte(msg)); err != nil {
			return "", err
		}
		c.SetReadDeadline(time.Now().Add(wait))
		b := make([]byte, 64)
		n, err := c.Read(b)
		return string(b[:n]), err
	}
	if got, err := echo("a", 10*time.Second); got != "a" || err != nil {
		t.Fatalf("through the proxy: %q %v", got, err)
	}
	p.block(false, true)
	if got, err := echo("b", 300*time.Millisecond); err == nil {
		t.Fatalf("answer %q passed a blocked direction", got)
	}
	p.heal()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 64)
	if n, err := c.Read(b); string(b[:n]) != "b" || err != nil {
		t.Fatalf("after healing: %q %v, want the held answer", b[:n], err)
	}
	p.reset()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(b); err == nil {
		t.Fatal("connection still open after reset")
	}
}
