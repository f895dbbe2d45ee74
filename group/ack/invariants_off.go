//go:build !invariants

package ack

// invariants turns on the deep checks (go test -tags invariants).
const invariants = false
