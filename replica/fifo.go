package replica

// fifo is a queue on a ring buffer that grows by doubling and is reused,
// so a steady state of pushes and pops does not allocate.
type fifo[T any] struct {
	buf  []T // len is 0 or a power of two
	head uint64
	tail uint64
}

func (f *fifo[T]) len() int { return int(f.tail - f.head) }

func (f *fifo[T]) push(v T) {
	if f.len() == len(f.buf) {
		nb := make([]T, max(2*len(f.buf), 16))
		for s := f.head; s < f.tail; s++ {
			nb[s&uint64(len(nb)-1)] = f.buf[s&uint64(len(f.buf)-1)]
		}
		f.buf = nb
	}
	f.buf[f.tail&uint64(len(f.buf)-1)] = v
	f.tail++
}

// at returns the i-th element from the head (0 ≤ i < len).
func (f *fifo[T]) at(i int) *T {
	if i < 0 || i >= f.len() {
		panic("BUG: replica: fifo index out of range")
	}
	return &f.buf[(f.head+uint64(i))&uint64(len(f.buf)-1)]
}

func (f *fifo[T]) front() *T { return f.at(0) }

func (f *fifo[T]) pop() {
	var zero T
	f.buf[f.head&uint64(len(f.buf)-1)] = zero
	f.head++
}

// search returns the smallest i in [0, len) for which ok(at(i)) is true,
// or len; ok must be false then true along the queue.
func (f *fifo[T]) search(ok func(*T) bool) int {
	lo, hi := 0, f.len()
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if ok(f.at(m)) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// back returns the last element (len > 0).
func (f *fifo[T]) back() *T { return f.at(f.len() - 1) }

// popBack removes the last element.
func (f *fifo[T]) popBack() {
	var zero T
	f.tail--
	f.buf[f.tail&uint64(len(f.buf)-1)] = zero
}

// clear removes every element.
func (f *fifo[T]) clear() {
	for f.len() > 0 {
		f.pop()
	}
}
