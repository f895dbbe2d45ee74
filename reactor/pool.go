package reactor

import "math/bits"

// bufPool is one reactor's free list of byte buffers in power-of-two size
// classes. It is owned by that reactor (never shared between cores), so it
// needs no lock; buffers handed to another reactor come back through the
// mailbox before they are freed here.
type bufPool struct {
	classes [maxClass + 1][][]byte
	kept    int // bytes of the free buffers
}

const (
	minClass = 9  // 512 B
	maxClass = 27 // 128 MiB
	// keepPerClass bounds how many free buffers each class keeps, and
	// keepBytes the bytes of all of them: a burst of large responses
	// leaves at most keepBytes behind per reactor.
	keepPerClass = 256
	keepBytes    = 32 << 20
)

func sizeClass(n int) int {
	if n <= 1<<minClass {
		return minClass
	}
	return bits.Len(uint(n - 1))
}

// get returns a buffer of length n; its capacity is n's size class.
func (p *bufPool) get(n int) []byte {
	c := sizeClass(n)
	if c > maxClass {
		return make([]byte, n)
	}
	free := p.classes[c]
	if k := len(free); k > 0 {
		b := free[k-1]
		free[k-1] = nil
		p.classes[c] = free[:k-1]
		p.kept -= cap(b)
		return b[:n]
	}
	return make([]byte, n, 1<<c)
}

// put returns b to its class; buffers of odd capacity, and buffers past
// the pool's bounds, are dropped (left to the garbage collector).
func (p *bufPool) put(b []byte) {
	c := bits.Len(uint(cap(b))) - 1
	if c < minClass || c > maxClass || cap(b) != 1<<c || len(p.classes[c]) >= keepPerClass ||
		p.kept+cap(b) > keepBytes {
		return
	}
	p.classes[c] = append(p.classes[c], b[:0])
	p.kept += cap(b)
}
