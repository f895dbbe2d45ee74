package storage

// Cold reads. Read finds batch boundaries by reading batch headers through
// the mmap, which faults the pages in: for data that is not in page cache
// that would block the reading goroutine (a reactor) on disk. ColdView
// finds a range using only the sparse offset index (already mapped and
// hot) and tells, without touching the data, whether it is resident. The
// caller then reads a cold range with its own I/O (the server uses its
// ring) and keeps the whole batches it got.

// ColdView returns, when the data at off is not in page cache, a view of
// up to maxBytes of the segment that holds off, starting at the indexed
// batch at or before off (so it may begin with batches below off) and
// ending anywhere (so it may end inside a batch). Its Bytes must not be
// read; use Fd, Pos and Len to read the range, then Release it. ok is
// false when the range is resident (use Read) or off is not in the log.
// The index entry is not checked (that would touch the data): the caller
// checks that the first whole batch it read contains off, and uses Read
// (which checks, and reports a wrong entry) when it does not.
func (l *Log) ColdView(off uint64, maxBytes int) (v View, ok bool) {
	if l.closed || maxBytes <= 0 || off < l.LogStart() || off >= l.end {
		return View{}, false
	}
	s := l.segs[l.segmentFor(off)]
	start := s.idx.lookupOffset(uint32(off - s.base))
	end := min(s.size, start+int64(maxBytes))
	if end <= start || resident(s.file.data[start:end]) {
		return View{}, false
	}
	return s.view(start, end), true
}
