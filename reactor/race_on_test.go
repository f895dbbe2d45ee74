//go:build race

package reactor

// raceEnabled: the race detector's shadow memory roughly doubles the
// process's anonymous memory.
const raceEnabled = true
