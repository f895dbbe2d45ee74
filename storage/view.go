package storage

// View is a read-only slice of a mapped segment file holding whole record
// batches, as Log.Read returns them. It holds a reference on the file: a
// segment deleted or archived meanwhile stays mapped until its last View is
// released. Release every View exactly once, from any goroutine.
type View struct {
	b   []byte
	f   *logFile
	pos int64
}

// Bytes returns the batches. They alias the page cache: do not write to
// them, and do not use them after Release.
func (v *View) Bytes() []byte { return v.b }

// Len is the number of bytes in the view.
func (v *View) Len() int { return len(v.b) }

// Fd is the segment file's descriptor, open until the last View of the
// file is released; with Pos it lets a driver read the range through its
// own I/O path (a ring read into a pooled buffer) instead of faulting the
// mapping in.
func (v *View) Fd() int { return v.f.fd }

// Pos is the file position of the view's first byte.
func (v *View) Pos() int64 { return v.pos }

// Resident reports whether every page of the view is in the page cache
// (mincore), so that touching it will not block on the disk. It does not
// allocate.
func (v *View) Resident() bool { return resident(v.b) }

// Release drops the view's reference. The view is empty afterwards.
func (v *View) Release() {
	if v.f == nil {
		return
	}
	v.f.release()
	*v = View{}
}

// ReleaseViews releases every view in vs and returns vs[:0] for reuse.
func ReleaseViews(vs []View) []View {
	for i := range vs {
		vs[i].Release()
	}
	return vs[:0]
}
