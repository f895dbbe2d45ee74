package ring

import (
	"syscall"
	"testing"

	"github.com/pawelgaczynski/giouring"
)

// TestPatchedGiouringHelpers pins the fixes made to the copy of giouring in
// third_party/giouring (listed in its README): each helper must put the
// caller's data, not the address of a Go header or a stack temporary, into
// the SQE. ring/ fills its SQEs itself, but nothing keeps a later change from
// calling these helpers.
func TestPatchedGiouringHelpers(t *testing.T) {
	buf := make([]byte, 33)
	ts := &syscall.Timespec{Nsec: 7}
	const ud = 0x5eed_0000_0000_0002
	cases := []struct {
		name string
		prep func(*giouring.SubmissionQueueEntry)
		addr uint64
		len  uint32
		off  uint64
	}{
		{"send_zc", func(e *giouring.SubmissionQueueEntry) { e.PrepareSendZC(3, buf, 0, 0) }, ptrU64(&buf[0]), 33, 0},
		{"timeout", func(e *giouring.SubmissionQueueEntry) { e.PrepareTimeout(ts, 1, 0) }, ptrU64(ts), 1, 1},
		{"link timeout", func(e *giouring.SubmissionQueueEntry) { e.PrepareLinkTimeout(ts, 0) }, ptrU64(ts), 1, 0},
		{"timeout remove", func(e *giouring.SubmissionQueueEntry) { e.PrepareTimeoutRemove(ud, 0) }, ud, 0, 0},
		{"timeout update", func(e *giouring.SubmissionQueueEntry) { e.PrepareTimeoutUpdate(ts, ud, 0) }, ud, 0, ptrU64(ts)},
	}
	for _, c := range cases {
		var e giouring.SubmissionQueueEntry
		c.prep(&e)
		if e.Addr != c.addr || e.Len != c.len || e.Off != c.off {
			t.Errorf("%s: addr %#x len %d off %#x, want addr %#x len %d off %#x",
				c.name, e.Addr, e.Len, e.Off, c.addr, c.len, c.off)
		}
	}
}
