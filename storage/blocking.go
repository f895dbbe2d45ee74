package storage

import "sync/atomic"

// blockingHook, when set, is called before each blocking file operation
// storage makes (open, create, rename, unlink, mkdir, ftruncate,
// fallocate, fsync, mmap, munmap), with the operation's name. Tests use it
// to check that no such operation runs on a thread that must not block (a
// reactor's). Unset, it costs one atomic load.
var blockingHook atomic.Pointer[func(op string)]

// SetBlockingHook installs f as the blocking-operation hook (nil removes
// it) and returns a function that restores the previous one. For tests.
func SetBlockingHook(f func(op string)) (restore func()) {
	var p *func(op string)
	if f != nil {
		p = &f
	}
	old := blockingHook.Swap(p)
	return func() { blockingHook.Store(old) }
}

// blocking reports a blocking file operation to the hook.
func blocking(op string) {
	if h := blockingHook.Load(); h != nil {
		(*h)(op)
	}
}
