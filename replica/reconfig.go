package replica

// SetSync switches the topic's flush mode (an altered topic). To
// flush=interval (sync false): the local match becomes the log end, so the
// HW moves up to it at once and acks=all waiting for a flush are released
// (as a flush=interval topic would have). To flush=sync: the HW never
// moves back, so what flush=interval already exposed stays readable; every
// later append waits for a flush (the next Ready plans one) before the HW
// passes it.
func (r *Replica) SetSync(sync bool) {
	if sync == r.cfg.Sync {
		return
	}
	r.cfg.Sync = sync
	r.syncFloor = 0
	if sync {
		r.syncFloor = r.off.HighWatermark
	} else {
		covered := r.off.Flushed
		if r.flushing {
			covered = r.flushUpTo
		}
		r.flushDue = r.flushDue || r.off.LogEnd > covered
	}
	r.updateHW()
	r.check()
}
