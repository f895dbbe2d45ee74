//go:build ringmq_unsafe

package reactor

import "os"

// unsafeAckBeforeSync switches off one safety rule, for the fault
// harness (e2e/chaos) to show that it finds lost records: with
// RINGMQ_UNSAFE_ACK_BEFORE_SYNC=1, a binary built with the tag
// ringmq_unsafe treats flush=sync topics as flush=interval ones for
// acknowledgements, so acks=all is answered before the fdatasync (the
// data is synced at the next flush_interval tick). Builds without the tag
// have no such switch.
var unsafeAckBeforeSync = os.Getenv("RINGMQ_UNSAFE_ACK_BEFORE_SYNC") == "1"
