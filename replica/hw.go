package replica

import "fmt"

// The high watermark is the minimum of the match offsets of the in-sync
// replicas, the local one included (its match offset is the flushed
// offset when Sync, the log end otherwise), and it does not advance while
// fewer than MinInsync replicas are in sync. It never moves back (except
// at Reset). On one node it is simply the flushed offset (flush=sync) or
// the log end (flush=interval).

// SetISR sets the followers in the in-sync set (the local replica always
// is, listed or not). A follower not seen before starts with match 0, so
// it holds the HW until it reports (the controller admits a follower only
// once it caught up). Shrinking the set may advance the HW at once.
func (r *Replica) SetISR(ids []ID) { r.setISR(ids) }

// setISR sets the committed in-sync set; a follower joining it gets a
// full ReplicaLagTime from now.
func (r *Replica) setISR(ids []ID) {
	for i := range r.followers {
		r.followers[i].inISR = false
	}
	for _, id := range ids {
		if id == r.cfg.ID {
			continue
		}
		f := r.follower(id)
		if !f.inISR {
			f.lastCaughtUp = later(f.lastCaughtUp, r.now)
		}
		f.inISR = true
	}
	r.updateHW()
	r.check()
}

// FollowerMatch records that follower id has every offset below match
// (fsync'd, when Sync). A match past the log end is refused.
func (r *Replica) FollowerMatch(id ID, match uint64) error {
	if id == r.cfg.ID {
		return fmt.Errorf("%w: follower match for the local replica %d", ErrBadOffsets, id)
	}
	if match > r.off.LogEnd {
		return fmt.Errorf("%w: follower %d matches %d, log end is %d", ErrBadOffsets, id, match, r.off.LogEnd)
	}
	r.follower(id).match = match
	r.updateHW()
	r.check()
	return nil
}

// ISR returns the in-sync replica ids (the local one first) appended to dst.
func (r *Replica) ISR(dst []ID) []ID {
	dst = append(dst, r.cfg.ID)
	for i := range r.followers {
		if r.followers[i].inISR {
			dst = append(dst, r.followers[i].id)
		}
	}
	return dst
}

func (r *Replica) follower(id ID) *progress {
	for i := range r.followers {
		if r.followers[i].id == id {
			return &r.followers[i]
		}
	}
	r.followers = append(r.followers, progress{id: id})
	return &r.followers[len(r.followers)-1]
}

func (r *Replica) isrSize() int {
	n := 1
	for i := range r.followers {
		if r.followers[i].inISR {
			n++
		}
	}
	return n
}

// targetHW is where the HW may go: on a leader the minimum match over the
// ISR (and a follower being added), when the ISR has MinInsync members; on
// a follower the leader's HW, capped by the local match.
func (r *Replica) targetHW() (uint64, bool) {
	if r.rp.role == RoleFollower {
		return min(r.rp.leaderHW, r.localMatch()), true
	}
	if r.isrSize() < r.cfg.MinInsync {
		return 0, false
	}
	hw := r.localMatch()
	for i := range r.followers {
		if f := &r.followers[i]; f.inISR || r.pendingAdd(f.id) {
			hw = min(hw, f.match)
		}
	}
	return hw, true
}

// updateHW advances the HW to the in-sync minimum, releases the acks=all
// Acks it passes and wakes the waiters it satisfies.
func (r *Replica) updateHW() {
	hw, ok := r.targetHW()
	if !ok || hw <= r.off.HighWatermark {
		return
	}
	r.off.HighWatermark = hw
	before := r.hwBytes
	for r.aboveHW.len() > 0 && r.aboveHW.front().last < hw {
		v := r.aboveHW.front()
		r.hwBytes = v.cumEnd
		if v.waiting {
			r.release(v.token, v.level, v.base, v.last, nil)
		}
		r.aboveHW.pop()
	}
	r.releaseDupWaits()
	if r.hwBytes != before {
		r.wakeReaders()
	}
}
