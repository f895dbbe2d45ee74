package ring

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"
)

// BufRing is a provided buffer ring (IORING_REGISTER_PBUF_RING): count
// buffers of size bytes that the kernel picks from for PrepareRecvMultishot
// with the same group. Both the ring of descriptors and the buffers are
// mmap'd outside the Go heap, so the garbage collector never sees or moves
// them. A buffer id seen in a completion belongs to the owner until Recycle.
// Owned by the ring's goroutine.
type BufRing struct {
	r     *Ring
	group uint16
	mask  uint16
	tail  uint16 // next tail to publish
	size  int
	count int
	descs []byte // count io_uring_buf entries, shared with the kernel
	bufs  []byte // count*size bytes
}

// NewBufRing registers a buffer ring for group with count buffers (a power
// of two, at most 32768) of size bytes each, all handed to the kernel.
func (r *Ring) NewBufRing(group uint16, count int, size int) (*BufRing, error) {
	if count <= 0 || count > maxBufRingEntries || count&(count-1) != 0 {
		return nil, fmt.Errorf("ring: buffer ring count %d: want a power of two <= %d", count, maxBufRingEntries)
	}
	if size <= 0 || int64(size) > 1<<31 {
		return nil, fmt.Errorf("ring: buffer ring buffer size %d out of range", size)
	}
	b := &BufRing{r: r, group: group, mask: uint16(count - 1), size: size, count: count}
	var err error
	if b.descs, err = mmapAnon(count * bufEntSize); err != nil {
		return nil, err
	}
	if b.bufs, err = mmapAnon(count * size); err != nil {
		_ = unix.Munmap(b.descs)
		return nil, err
	}
	reg := giouring.BufReg{
		RingAddr:    uint64(uintptr(unsafe.Pointer(&b.descs[0]))),
		RingEntries: uint32(count),
		Bgid:        group,
	}
	if _, err = r.ring.RegisterBufferRing(&reg, 0); err != nil {
		b.unmap()
		return nil, fmt.Errorf("ring: register buffer ring %d: %w", group, err)
	}
	for id := 0; id < count; id++ {
		b.put(uint16(id))
	}
	b.publish()
	r.bufRings = append(r.bufRings, b)
	return b, nil
}

func mmapAnon(n int) ([]byte, error) {
	n = (n + os.Getpagesize() - 1) &^ (os.Getpagesize() - 1)
	m, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("ring: mmap %d bytes: %w", n, err)
	}
	return m, nil
}

// Group returns the buffer group id.
func (b *BufRing) Group() uint16 { return b.group }

// Size returns the size of each buffer.
func (b *BufRing) Size() int { return b.size }

// Buf returns buffer id (its full size; a completion's res says how much of
// it holds data). The slice is valid until Recycle(id) or Close.
func (b *BufRing) Buf(id uint16) []byte {
	if int(id) >= b.count {
		panic(fmt.Sprintf("BUG: ring: buffer id %d out of range (count %d)", id, b.count))
	}
	off := int(id) * b.size
	return b.bufs[off : off+b.size : off+b.size]
}

// Recycle gives buffer id back to the kernel. Recycling an id the kernel
// already holds corrupts the ring; the owner must recycle each id once per
// completion that delivered it.
func (b *BufRing) Recycle(id uint16) {
	if int(id) >= b.count {
		panic(fmt.Sprintf("BUG: ring: recycle of buffer id %d out of range (count %d)", id, b.count))
	}
	b.put(id)
	b.publish()
}

// put writes buffer id into the descriptor slot at the unpublished tail.
// Fields are written one by one: descriptor 0's last half-word is the
// shared tail and must not be overwritten.
func (b *BufRing) put(id uint16) {
	e := (*giouring.BufAndRing)(unsafe.Pointer(&b.descs[int(b.tail&b.mask)*bufEntSize]))
	e.Addr = uint64(uintptr(unsafe.Pointer(&b.bufs[int(id)*b.size])))
	e.Len = uint32(b.size)
	e.Bid = id
	b.tail++
}

// publish stores the tail with release semantics. Go has no 16-bit atomic
// store, so it stores the aligned 32-bit word {bufs[0].bid, tail}; bid is
// written only by this goroutine, so rewriting it with its own value is safe.
func (b *BufRing) publish() {
	word := (*uint32)(unsafe.Pointer(&b.descs[bufRingBidOff]))
	bid0 := *(*uint16)(unsafe.Pointer(&b.descs[bufRingBidOff]))
	atomic.StoreUint32(word, uint32(bid0)|uint32(b.tail)<<16)
}

// Close unregisters the group and unmaps its memory. No operation that
// selects from the group may be in flight.
func (b *BufRing) Close() error {
	if b.descs == nil {
		return ErrClosed
	}
	_, err := b.r.ring.UnregisterBufferRing(int(b.group))
	b.unmap()
	rings := b.r.bufRings
	for i, x := range rings {
		if x == b {
			b.r.bufRings = append(rings[:i], rings[i+1:]...)
			break
		}
	}
	if err != nil {
		return fmt.Errorf("ring: unregister buffer ring %d: %w", b.group, err)
	}
	return nil
}

func (b *BufRing) unmap() {
	err := errors.Join(unix.Munmap(b.descs), unix.Munmap(b.bufs))
	if err != nil {
		panic("BUG: ring: munmap of buffer ring memory failed: " + err.Error())
	}
	b.descs, b.bufs = nil, nil
}
