package reactor

import "sync"

// mailbox is a reactor's inbox: many goroutines post, one reactor drains.
// Posting takes a short mutex and wakes the reactor's ring; draining swaps
// the queue with a spare slice, so a warm mailbox does not allocate.
type mailbox struct {
	mu    sync.Mutex
	queue []message
	spare []message
	wake  func()
	// woken is set by post and cleared by drain, so a burst of posts costs
	// one wake-up.
	woken bool
}

func newMailbox(wake func()) *mailbox {
	return &mailbox{queue: make([]message, 0, 64), spare: make([]message, 0, 64), wake: wake}
}

// post appends m and wakes the owner if it was not already woken.
func (mb *mailbox) post(m message) {
	mb.mu.Lock()
	mb.queue = append(mb.queue, m)
	needWake := !mb.woken
	mb.woken = true
	mb.mu.Unlock()
	if needWake {
		mb.wake()
	}
}

// drain hands every queued message to fn, in posting order. Only the
// owning reactor calls it.
func (mb *mailbox) drain(fn func(m *message)) {
	mb.mu.Lock()
	batch := mb.queue
	mb.queue = mb.spare[:0]
	mb.woken = false
	mb.mu.Unlock()
	for i := range batch {
		fn(&batch[i])
		batch[i] = message{}
	}
	mb.spare = batch[:0]
}
