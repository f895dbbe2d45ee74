package ring

import (
	"bytes"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// recvInto collects multishot recv completions for ud until want bytes have
// arrived or the operation ends; it returns the data in order, the buffer
// ids used and the final completion if the operation ended.
func recvInto(t *testing.T, r *Ring, br *BufRing, ud uint64, want int) (data []byte, ids []uint16, end *completion) {
	t.Helper()
	for len(data) < want && end == nil {
		for _, c := range collect(t, r, 1) {
			if c.ud != ud {
				t.Fatalf("stray completion %+v", c)
			}
			if c.res > 0 {
				id, ok := BufferID(c.flags)
				if !ok {
					t.Fatalf("completion %+v without a buffer id", c)
				}
				ids = append(ids, id)
				data = append(data, br.Buf(id)[:c.res]...)
			}
			if !HasMore(c.flags) {
				end = &c
			}
		}
	}
	return data, ids, end
}

// TestRecvMultishotBufRing: multishot recv fills provided buffers (ids and
// contents checked), recycled buffers are used again, an exhausted ring ends
// the recv with ENOBUFS, and after recycling a re-armed recv gets the rest.
func TestRecvMultishotBufRing(t *testing.T) {
	defer runtime.UnlockOSThread()
	r := newTestRing(t, 8)
	const group, count, size = 7, 4, 16
	br, err := r.NewBufRing(group, count, size)
	if err != nil {
		t.Fatal(err)
	}
	a, b := socketPair(t)
	r.PrepareRecvMultishot(a, group, 1)

	first := pattern(40, 1) // 16+16+8: three buffers
	if _, err := unix.Write(b, first); err != nil {
		t.Fatal(err)
	}
	data, ids, end := recvInto(t, r, br, 1, len(first))
	if end != nil || !bytes.Equal(data, first) || len(ids) != 3 {
		t.Fatalf("first: end %+v, %d ids %v, intact %v", end, len(ids), ids, bytes.Equal(data, first))
	}
	seen := map[uint16]bool{}
	for _, id := range ids {
		if id >= count || seen[id] {
			t.Fatalf("buffer ids %v: out of range or repeated", ids)
		}
		seen[id] = true
		br.Recycle(id)
	}

	second := pattern(count*size+8, 2) // one buffer more than the ring holds
	if _, err := unix.Write(b, second); err != nil {
		t.Fatal(err)
	}
	data, ids, end = recvInto(t, r, br, 1, len(second))
	if end == nil || end.res != -int32(unix.ENOBUFS) {
		t.Fatalf("exhausted ring: end %+v after %d bytes, want -ENOBUFS", end, len(data))
	}
	if len(ids) != count || !bytes.Equal(data, second[:count*size]) {
		t.Fatalf("exhausted ring: ids %v, data intact %v", ids, bytes.Equal(data, second[:count*size]))
	}
	for _, id := range ids {
		br.Recycle(id)
	}
	r.PrepareRecvMultishot(a, group, 2)
	data, _, end = recvInto(t, r, br, 2, 8)
	if end != nil || !bytes.Equal(data, second[count*size:]) {
		t.Fatalf("after re-arm: end %+v, got %q", end, data)
	}
	r.PrepareCancel(2, 3)
	collect(t, r, 2)
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
	if err := br.Close(); err != ErrClosed {
		t.Fatalf("second Close: %v", err)
	}
}

func TestNewBufRingRejectsBadSizes(t *testing.T) {
	defer runtime.UnlockOSThread()
	r := newTestRing(t, 8)
	for _, c := range []struct{ count, size int }{{3, 16}, {0, 16}, {1 << 16, 16}, {4, 0}} {
		if br, err := r.NewBufRing(1, c.count, c.size); err == nil {
			br.Close()
			t.Fatalf("NewBufRing(count %d, size %d) succeeded", c.count, c.size)
		}
	}
	br, err := r.NewBufRing(1, 2, 8)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.NewBufRing(1, 2, 8); err == nil {
		t.Fatal("a second ring for the same group was registered")
	}
	_ = br // closed by Ring.Close at cleanup
}
