package storage

import "sync"

// worker runs a Store's background jobs (segment preallocation, unlinking
// deleted segments, archive copies) one at a time on its own goroutine, so
// that no reactor waits on them. Jobs talk back to their Log only through
// atomics and the Log's archive mutex. Safe for concurrent use.
type worker struct {
	mu    sync.Mutex
	queue []func()
	wake  chan struct{}
	quit  chan struct{}
	done  chan struct{}
}

func startWorker() *worker {
	w := &worker{wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

// post queues a job; it never blocks.
func (w *worker) post(job func()) {
	w.mu.Lock()
	w.queue = append(w.queue, job)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) run() {
	defer close(w.done)
	for {
		w.mu.Lock()
		jobs := w.queue
		w.queue = nil
		w.mu.Unlock()
		for _, job := range jobs {
			job()
		}
		if len(jobs) > 0 {
			continue
		}
		select {
		case <-w.wake:
		case <-w.quit:
			w.mu.Lock()
			empty := len(w.queue) == 0
			w.mu.Unlock()
			if empty {
				return
			}
		}
	}
}

// stop runs the jobs already queued and ends the goroutine.
func (w *worker) stop() {
	close(w.quit)
	<-w.done
}
