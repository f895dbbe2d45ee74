package reactor

import "sync"

// mailbox is a reactor's inbox: many goroutines post, one reactor drains.
// Posting takes a short mutex and wakes the reactor's ring (ring.Waker
// coalesces a burst of wake-ups into one); draining swaps the queue with a
// spare slice, so a warm mailbox does not allocate.
type mailbox struct {
	mu    sync.Mutex
	queue []message
	spare []message
	wake  func()
}

func newMailbox(wake func()) *mailbox {
	return &mailbox{queue: make([]message, 0, 64), spare: make([]message, 0, 64), wake: wake}
}

// post appends m and wakes the owner.
func (mb *mailbox) post(m message) {
	mb.mu.Lock()
	mb.queue = append(mb.queue, m)
	mb.mu.Unlock()
	mb.wake()
}

// drain hands every queued message to fn, in posting order. Only the
// owning reactor calls it.
func (mb *mailbox) drain(fn func(m *message)) {
	mb.mu.Lock()
	batch := mb.queue
	mb.queue = mb.spare[:0]
	mb.mu.Unlock()
	for i := range batch {
		fn(&batch[i])
		batch[i] = message{}
	}
	mb.spare = batch[:0]
}
