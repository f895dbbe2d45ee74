package replica

import (
	"testing"
	"time"
)

// The steady-state idempotent produce path does not allocate: the check
// of a new batch and of a retry of a remembered one (answered with
// AckDuplicate), planning, completion out of order (the batches join their
// producers' state) and Ready.
func TestProducerSteadyStateDoesNotAllocate(t *testing.T) {
	r, err := New(intervalConfig(), Offsets{})
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	r.Tick(now)
	seqs := []int32{0, 0, 0}
	var tok Token
	dups := 0
	round := func() {
		base := r.next
		for i := range seqs {
			b := ProducerBatch{ProducerID: int64(i), Epoch: 1, BaseSeq: seqs[i], Count: 3, MaxTimestamp: now.UnixMilli()}
			if err := r.CheckAppend(AckLeader); err != nil {
				t.Fatal(err)
			}
			if dup, err := r.CheckProducer(b); err != nil || dup.Found {
				t.Fatalf("new batch %+v: %+v %v", b, dup, err)
			}
			tok++
			r.AppendPlanned(Append{Base: r.next, Last: r.next + 2, Bytes: 100, Level: AckLeader, Token: tok, Producer: b})
			seqs[i] += 3
		}
		for b := r.next - 3; b >= base && b < r.next; b -= 3 { // newest first
			r.AppendCompleted(b)
		}
		// A retry of the previous round's batch of producer 0.
		if seqs[0] > 3 {
			dup, err := r.CheckProducer(ProducerBatch{ProducerID: 0, Epoch: 1, BaseSeq: seqs[0] - 6, Count: 3})
			if err != nil || !dup.Found {
				t.Fatalf("retry: %+v %v", dup, err)
			}
			tok++
			r.AckDuplicate(tok, AckLeader, dup)
			dups++
		}
		now = now.Add(time.Millisecond)
		r.Ready()
		r.Advance()
	}
	for i := 0; i < 100; i++ { // grow the queues
		round()
	}
	if allocs := testing.AllocsPerRun(1000, round); allocs != 0 {
		t.Errorf("%.1f allocations per round of three batches and a retry, want 0", allocs)
	}
	if dups == 0 || r.Producers().Len() != 3 {
		t.Errorf("%d retries answered, %d producers remembered", dups, r.Producers().Len())
	}
}
