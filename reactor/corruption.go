package reactor

import (
	"fmt"

	"github.com/ringmq/ringmq/stats"
)

// noteCorruption publishes the damage p's log knows of (found by recovery
// or by reads) to the metrics and to DescribeTopic. Called on open and on
// the retention tick; cheap when nothing changed.
func (r *Reactor) noteCorruption(p *partition) {
	n := p.log.Stats().CorruptRanges
	if n == p.corruptSeen {
		return
	}
	cs := p.log.Corruptions(nil)
	status := fmt.Sprintf("corrupt: %d damaged range(s); first %s", len(cs), cs[0].String())
	p.shared.corrupt.Store(&status)
	stats.CorruptRanges(int64(n - p.corruptSeen))
	if p.corruptSeen == 0 {
		stats.PartitionsCorrupt(1)
	}
	p.corruptSeen = n
}

// forgetCorruption takes p out of the corruption metrics (it goes away).
func (r *Reactor) forgetCorruption(p *partition) {
	if p.corruptSeen > 0 {
		stats.CorruptRanges(-int64(p.corruptSeen))
		stats.PartitionsCorrupt(-1)
		p.corruptSeen = 0
	}
}

// partitionStatus is what DescribeTopic reports of a partition: empty when
// healthy.
func partitionStatus(sh *partShared) string {
	var s string
	if f := sh.fenceErr.Load(); f != nil {
		s = "fenced: " + *f
	}
	if c := sh.corrupt.Load(); c != nil {
		if s != "" {
			s += "; "
		}
		s += *c
	}
	return s
}
