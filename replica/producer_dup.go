package replica

import "fmt"

// dupWait is the Ack of a duplicate that waits for the HW (acks=all).
type dupWait struct {
	token      Token
	level      Level
	base, last uint64
}

// AckDuplicate answers a produce part whose batch CheckProducer found
// already appended (d.Found): nothing is written, and its Ack, with the
// original offsets, comes in a Ready like any other. For acks=0 and
// acks=1 that is at once (the original is visible); for acks=all once the
// HW passes d.Last, as the original's own Ack, so a retry is never told
// more than the original would have been. Such an Ack fails with the
// fence error when the replica is fenced first, or ErrReset at a Reset.
// It does not allocate in steady state.
func (r *Replica) AckDuplicate(tok Token, level Level, d Duplicate) {
	switch {
	case !d.Found || d.Last < d.Base || d.Last >= r.off.LogEnd:
		panic(fmt.Sprintf("BUG: replica: duplicate %+v acknowledged, log end %d", d, r.off.LogEnd))
	case level != AckNone && level != AckLeader && level != AckAll:
		panic(fmt.Sprintf("BUG: replica: duplicate acknowledged with ack level %d (CheckAppend first)", int8(level)))
	case level != AckAll || d.Last < r.off.HighWatermark:
		r.release(tok, level, d.Base, d.Last, nil)
	case r.fenceErr != nil:
		r.release(tok, level, d.Base, d.Last, r.fenceErr)
	default:
		r.dupWaits = append(r.dupWaits, dupWait{token: tok, level: level, base: d.Base, last: d.Last})
	}
}

// releaseDupWaits releases the duplicates' Acks the HW passed.
func (r *Replica) releaseDupWaits() {
	n := 0
	for _, w := range r.dupWaits {
		if w.last < r.off.HighWatermark {
			r.release(w.token, w.level, w.base, w.last, nil)
		} else {
			r.dupWaits[n] = w
			n++
		}
	}
	clear(r.dupWaits[n:])
	r.dupWaits = r.dupWaits[:n]
}

// failDupWaits releases every waiting duplicate's Ack with err.
func (r *Replica) failDupWaits(err error) {
	for _, w := range r.dupWaits {
		r.release(w.token, w.level, w.base, w.last, err)
	}
	clear(r.dupWaits)
	r.dupWaits = r.dupWaits[:0]
}
