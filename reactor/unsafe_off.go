//go:build !ringmq_unsafe

package reactor

// unsafeAckBeforeSync is false in every real build: see unsafe_on.go.
const unsafeAckBeforeSync = false
