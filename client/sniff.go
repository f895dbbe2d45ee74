package client

// Recognising a peer that is not a ringmq server from the first bytes it
// sends back, so that pointing a client at an HTTP port (the metrics
// listener, say) or a TLS port fails with one clear line instead of a
// frame-size complaint or a long wait for a frame that never completes.

import (
	"bufio"
	"bytes"
	"fmt"

	"github.com/ringmq/ringmq/proto"
)

// maxFirstResponseBytes bounds the first response frame a connection
// accepts: it answers Hello, whose response is a few bytes. Anything
// larger is not a ringmq server talking.
const maxFirstResponseBytes = 64 << 10

// How much of an unexpected answer an error shows: binary bytes in hex,
// or printable text (an HTTP status line).
const (
	sniffBytes     = 16
	sniffTextBytes = 64
)

// sniff looks at the start of the first response before it is read as a
// frame, and returns ErrNotRingmq when it cannot be one.
func (c *Conn) sniff(br *bufio.Reader) error {
	head, err := br.Peek(proto.FrameLengthSize)
	if err != nil {
		if len(head) > 0 {
			return c.notRingmq(head, "bytes that are not a ringmq response")
		}
		return c.lost("read from", err)
	}
	if n := br.Buffered(); n > len(head) {
		head, _ = br.Peek(min(n, 64))
	}
	switch {
	case bytes.HasPrefix(head, []byte("HTTP/")):
		line, _, _ := bytes.Cut(head, []byte("\r\n"))
		return c.notRingmq(line, "like an HTTP server")
	case head[0] >= 0x14 && head[0] <= 0x17 && head[1] == 0x03:
		// A TLS record: alert, handshake, ... of version 3.x.
		return c.notRingmq(head, "like a TLS server")
	}
	n, _ := proto.FrameLength(head)
	if n < proto.ResponseHeaderSize || n-proto.FrameLengthSize > maxFirstResponseBytes {
		return c.notRingmq(head, "bytes that are not a ringmq response")
	}
	return nil
}

// notRingmq is the error for a peer whose first bytes, got, answered
// how ("like an HTTP server").
func (c *Conn) notRingmq(got []byte, how string) error {
	if text := got[:min(len(got), sniffTextBytes)]; printable(text) {
		return fmt.Errorf("client: %s is %w: it answered %s (%q)", c.addr, ErrNotRingmq, how, text)
	}
	return fmt.Errorf("client: %s is %w: it answered %s (% x)", c.addr, ErrNotRingmq, how, got[:min(len(got), sniffBytes)])
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}
