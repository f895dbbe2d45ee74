package ack

import "slices"

// KeyRange is the key hashes [Start, End] (inclusive, so the whole space
// fits) owned by one member.
type KeyRange struct {
	Start, End uint32
}

// hashRing is a consistent-hash ring: each member has VNodes points on
// the 32-bit circle and owns the hashes from the previous point
// (exclusive) up to each of its points (inclusive). A join or leave moves
// only the hashes next to the points it adds or removes.
type hashRing struct {
	points []point // sorted by (h, m)
}

type point struct {
	h uint32
	m Member
}

// pointHash places the i-th point of m: splitmix64 of (m, i), so the
// placement is the same on every broker and across restarts (never
// change it: keys would move on upgrade).
func pointHash(m Member, i int) uint32 {
	z := uint64(m)<<32 | uint64(uint32(i))
	z += 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	z ^= z >> 31
	return uint32(z >> 32)
}

func (r *hashRing) add(m Member, vnodes int) {
	for i := range vnodes {
		r.points = append(r.points, point{pointHash(m, i), m})
	}
	slices.SortFunc(r.points, func(a, b point) int {
		if a.h != b.h {
			if a.h < b.h {
				return -1
			}
			return 1
		}
		return int(int64(a.m) - int64(b.m))
	})
}

func (r *hashRing) remove(m Member) {
	r.points = slices.DeleteFunc(r.points, func(p point) bool { return p.m == m })
}

// owner returns the member of the first point at or after h, wrapping.
func (r *hashRing) owner(h uint32) Member {
	n := len(r.points)
	if n == 0 {
		return 0
	}
	lo, hi := 0, n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if r.points[mid].h < h {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == n {
		lo = 0
	}
	return r.points[lo].m
}

// ranges appends the hash ranges m owns (the one that wraps past the
// highest point first).
func (r *hashRing) ranges(dst []KeyRange, m Member) []KeyRange {
	n := len(r.points)
	for i, p := range r.points {
		if p.m != m {
			continue
		}
		var start uint32
		if i > 0 {
			start = r.points[i-1].h + 1
		} else {
			// The first point also owns the wrap-around past the last one.
			if last := r.points[n-1].h; last != ^uint32(0) {
				dst = appendKeyRange(dst, KeyRange{last + 1, ^uint32(0)})
			}
		}
		if i > 0 && r.points[i-1].h == p.h {
			continue // a tie: the earlier point owns it
		}
		dst = appendKeyRange(dst, KeyRange{start, p.h})
	}
	return dst
}

func appendKeyRange(dst []KeyRange, k KeyRange) []KeyRange {
	if n := len(dst); n > 0 && dst[n-1].End+1 == k.Start && dst[n-1].End != ^uint32(0) {
		dst[n-1].End = k.End
		return dst
	}
	return append(dst, k)
}
