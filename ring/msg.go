package ring

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Msg is a reusable gather list for PrepareSendmsg and PrepareWritev: a
// response header plus payload slices sent in one operation. Allocate one
// per connection and reuse it; nothing allocates after NewMsg.
//
// Keep-alive: Msg stores real pointers to the slices (unix.Iovec.Base) and
// to its own iovec array (unix.Msghdr.Iov), so while the Msg is reachable
// everything it describes is reachable. Keep it reachable, and do not touch
// it or the slices, until the operation's completion arrives.
type Msg struct {
	hdr   unix.Msghdr
	iov   []unix.Iovec
	start int // first iovec not fully sent
	left  int // bytes not yet sent
}

// NewMsg returns a Msg with room for maxSlices slices.
func NewMsg(maxSlices int) *Msg {
	return &Msg{iov: make([]unix.Iovec, 0, maxSlices)}
}

// Reset empties m for reuse.
func (m *Msg) Reset() {
	clear(m.iov)
	m.iov = m.iov[:0]
	m.start, m.left = 0, 0
}

// Add appends b; it returns false, adding nothing, when m is full. Empty
// slices are skipped.
func (m *Msg) Add(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	if len(m.iov) == cap(m.iov) {
		return false
	}
	m.iov = append(m.iov, unix.Iovec{Base: &b[0], Len: uint64(len(b))})
	m.left += len(b)
	return true
}

// Len returns the bytes not yet sent.
func (m *Msg) Len() int { return m.left }

// Advance drops the first n bytes after a short send or write, so the next
// Hdr or Iovecs describes only the rest.
func (m *Msg) Advance(n int) {
	if n < 0 || n > m.left {
		panic(fmt.Sprintf("BUG: ring: Msg.Advance(%d) with %d bytes left", n, m.left))
	}
	m.left -= n
	for n > 0 {
		v := &m.iov[m.start]
		if uint64(n) < v.Len {
			v.Base = (*byte)(unsafe.Add(unsafe.Pointer(v.Base), n))
			v.Len -= uint64(n)
			return
		}
		n -= int(v.Len)
		m.start++
	}
}

// Iovecs returns the iovecs still to send, for PrepareWritev.
func (m *Msg) Iovecs() []unix.Iovec { return m.iov[m.start:] }

// Hdr returns the msghdr describing the bytes still to send, for
// PrepareSendmsg. It points into m.
func (m *Msg) Hdr() *unix.Msghdr {
	m.hdr = unix.Msghdr{}
	if rest := m.iov[m.start:]; len(rest) > 0 {
		m.hdr.Iov = &rest[0]
		m.hdr.SetIovlen(len(rest))
	}
	return &m.hdr
}
