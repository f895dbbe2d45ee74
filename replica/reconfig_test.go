package replica

import (
	"testing"
	"time"
)

// Switching flush modes: to interval, acks=all waiting for a flush are
// released at once (the HW follows the log end) and the unflushed data is
// flushed; back to sync, what the HW already exposed stays exposed and the
// next append waits for a flush again.
func TestSetSync(t *testing.T) {
	d := newDriver(t, Config{Sync: true, FlushInterval: time.Second}, Offsets{})
	a := d.plan(2, 50, AckAll) // 0-1
	d.r.AppendCompleted(a)
	d.turn() // plans the flush up to 2
	d.expectAcks("")
	d.r.SetSync(false)
	d.turn()
	d.expectAcks("0:acks=all:ok")
	d.expectOffsets(Offsets{HighWatermark: 2, Flushed: 0, LogEnd: 2})
	d.flushDone()

	b := d.plan(1, 50, AckAll) // 2
	d.r.AppendCompleted(b)
	d.turn()
	d.expectAcks("2:acks=all:ok")
	d.r.SetSync(true) // HW 3, flushed 2: the HW stays
	d.expectOffsets(Offsets{HighWatermark: 3, Flushed: 2, LogEnd: 3})
	c := d.plan(1, 50, AckAll) // 3
	d.r.AppendCompleted(c)
	d.turn()
	d.expectAcks("")
	d.expectOffsets(Offsets{HighWatermark: 3, Flushed: 2, LogEnd: 4})
	if got := d.flushes[len(d.flushes)-1]; got != 4 {
		t.Fatalf("flush planned up to %d, want 4", got)
	}
	d.flushDone()
	d.turn()
	d.expectAcks("3:acks=all:ok")
	d.expectOffsets(Offsets{HighWatermark: 4, Flushed: 4, LogEnd: 4})
}
