package storage

import (
	"sync"
	"sync/atomic"
)

// doneQueue hands the results of background jobs (roll-lane results, seal
// phases) to the log's owner: jobs post, the owner takes them all at once
// without I/O. wg counts the jobs in flight.
type doneQueue[T any] struct {
	mu    sync.Mutex
	done  []T
	ready atomic.Int32 // len(done), read without the lock
	wg    sync.WaitGroup
}

func (q *doneQueue[T]) post(r T) {
	q.mu.Lock()
	q.done = append(q.done, r)
	q.ready.Store(int32(len(q.done)))
	q.mu.Unlock()
}

// take returns the posted results and empties the queue; nil when there
// are none (one atomic load).
func (q *doneQueue[T]) take() []T {
	if q.ready.Load() == 0 {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	done := q.done
	q.done = nil
	q.ready.Store(0)
	return done
}
