package controller

import "slices"

// place assigns replicas for n new partitions with replication factor r
// over the alive brokers (Validate has checked r <= alive). It is greedy
// over the whole cluster's current load, so that leaders and replicas stay
// even across topics: each partition's leader is the alive broker leading
// the fewest partitions (then holding the fewest replicas, then the lowest
// id), and its followers are the brokers holding the fewest replicas, taken
// in ring order after the leader (so that a leader's followers rotate).
// Deterministic: every node computes the same placement.
func (s *State) place(n, r int) [][]int32 {
	alive := s.aliveIDs()
	leaders := map[int32]int{}
	replicas := map[int32]int{}
	s.forEachPartition(func(_ string, _ int32, p *Partition) {
		if len(p.Replicas) > 0 {
			leaders[p.Replicas[0]]++
		}
		for _, b := range p.Replicas {
			replicas[b]++
		}
	})
	out := make([][]int32, n)
	for i := range out {
		leader := alive[0]
		for _, b := range alive[1:] {
			if leaders[b] < leaders[leader] || leaders[b] == leaders[leader] && replicas[b] < replicas[leader] {
				leader = b
			}
		}
		set := []int32{leader}
		start := slices.Index(alive, leader)
		for len(set) < r {
			var best int32 = NoLeader
			for k := 1; k < len(alive); k++ {
				b := alive[(start+k)%len(alive)]
				if slices.Contains(set, b) {
					continue
				}
				if best == NoLeader || replicas[b] < replicas[best] {
					best = b
				}
			}
			set = append(set, best)
		}
		leaders[leader]++
		for _, b := range set {
			replicas[b]++
		}
		out[i] = set
	}
	return out
}
