package replica

import "fmt"

// check panics when the offsets break their invariant:
//
//	LogStart ≤ HighWatermark ≤ local match ≤ LogEnd ≤ next planned
//	LogStart ≤ Flushed ≤ LogEnd
//
// where the local match is Flushed when Sync and LogEnd otherwise. It is
// a handful of comparisons and always runs; checkDeep (build tag
// invariants) walks the queues too.
func (r *Replica) check() {
	o := &r.off
	if o.LogStart > o.HighWatermark || o.HighWatermark > r.localMatch() || o.LogEnd > r.next ||
		o.Flushed < o.LogStart || o.Flushed > o.LogEnd {
		panic(fmt.Sprintf("BUG: replica: offsets out of order: log start %d, HW %d, flushed %d, log end %d, next %d (sync %v)",
			o.LogStart, o.HighWatermark, o.Flushed, o.LogEnd, r.next, r.cfg.Sync))
	}
	if invariants {
		r.checkDeep()
	}
}

// checkDeep checks what check does not: the queues are contiguous and in
// order, the byte counts agree, waiters lie inside the log.
func (r *Replica) checkDeep() {
	end := r.off.LogEnd
	if n := r.aboveHW.len(); n > 0 {
		if last := r.aboveHW.at(n - 1); last.last+1 != end || last.cumEnd != r.leoBytes {
			panic(fmt.Sprintf("BUG: replica: last visible append ends at %d (%d bytes), log end %d (%d bytes)",
				last.last+1, last.cumEnd, end, r.leoBytes))
		}
		if f := r.aboveHW.front(); f.last < r.off.HighWatermark || f.cumEnd-f.bytes != r.hwBytes {
			panic(fmt.Sprintf("BUG: replica: first append above the HW ends at %d, HW %d", f.last, r.off.HighWatermark))
		}
	} else if r.hwBytes != r.leoBytes {
		panic(fmt.Sprintf("BUG: replica: nothing above the HW but %d bytes visible, %d below it", r.leoBytes, r.hwBytes))
	}
	for i := 1; i < r.aboveHW.len(); i++ {
		a, b := r.aboveHW.at(i-1), r.aboveHW.at(i)
		if b.base != a.last+1 || b.cumEnd != a.cumEnd+b.bytes {
			panic(fmt.Sprintf("BUG: replica: visible appends %d-%d then %d-%d", a.base, a.last, b.base, b.last))
		}
	}
	want := end
	for i := 0; i < r.inflight.len(); i++ {
		p := r.inflight.at(i)
		if p.base != want && p.base < r.fenceAt {
			panic(fmt.Sprintf("BUG: replica: in-flight append at %d, expected %d", p.base, want))
		}
		want = p.last + 1
	}
	if r.inflight.len() > 0 && want != r.next {
		panic(fmt.Sprintf("BUG: replica: in-flight appends end at %d, next is %d", want, r.next))
	}
	for i := range r.waiters {
		if w := &r.waiters[i]; w.offset < r.off.LogStart || w.offset > end {
			panic(fmt.Sprintf("BUG: replica: waiter at %d outside [%d, %d]", w.offset, r.off.LogStart, end))
		}
	}
}
