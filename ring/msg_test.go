package ring

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// flatten returns the bytes the iovecs describe.
func flatten(iov []unix.Iovec) []byte {
	var out []byte
	for _, v := range iov {
		out = append(out, unsafe.Slice(v.Base, v.Len)...)
	}
	return out
}

// TestMsgAdvance: after any sequence of partial sends, Iovecs and Hdr
// describe exactly the unsent suffix (seeded; the seed is printed on failure).
func TestMsgAdvance(t *testing.T) {
	seed := uint64(rand.Int64())
	rng := rand.New(rand.NewPCG(seed, 1))
	for trial := 0; trial < 200; trial++ {
		m := NewMsg(5)
		var want []byte
		for i := 0; i < 5; i++ {
			p := pattern(rng.IntN(40), byte(i)) // may be empty: skipped
			if !m.Add(p) {
				t.Fatalf("seed %d: Add failed below capacity", seed)
			}
			want = append(want, p...)
		}
		full := len(m.Iovecs()) == 5
		if ok := m.Add([]byte("x")); ok == full {
			t.Fatalf("seed %d: Add with full=%v returned %v", seed, full, ok)
		} else if ok {
			want = append(want, 'x')
		}
		for m.Len() > 0 {
			n := rng.IntN(m.Len() + 1)
			m.Advance(n)
			want = want[n:]
			h := m.Hdr()
			if got := flatten(m.Iovecs()); !bytes.Equal(got, want) || m.Len() != len(want) {
				t.Fatalf("seed %d: after Advance(%d) iovecs hold %d bytes, want %d", seed, n, len(got), len(want))
			}
			if int(h.Iovlen) != len(m.Iovecs()) || (h.Iovlen > 0 && h.Iov != &m.Iovecs()[0]) {
				t.Fatalf("seed %d: msghdr iov %p len %d disagrees with Iovecs", seed, h.Iov, h.Iovlen)
			}
		}
		m.Reset()
		if m.Len() != 0 || len(m.Iovecs()) != 0 {
			t.Fatalf("seed %d: Reset left %d bytes", seed, m.Len())
		}
	}
}
