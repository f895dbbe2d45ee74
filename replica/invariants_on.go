//go:build invariants

package replica

// invariants turns on the deep checks (go test -tags invariants).
const invariants = true
