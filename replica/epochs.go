package replica

import "fmt"

// NoEpoch is the epoch of nothing: the last epoch of an empty log, and
// the epoch EndOffsetFor answers when it knows no epoch at or below the
// one asked for (Kafka's UNDEFINED_EPOCH).
const NoEpoch int32 = -1

// EpochEntry says that the batches from Start on carry leader epoch Epoch
// (until the next entry's Start). One entry per leader epoch that wrote
// anything to the log, in growing Epoch and Start order: Kafka's
// leader-epoch-checkpoint entry.
type EpochEntry struct {
	Epoch int32
	Start uint64
}

// Epochs is a partition's leader-epoch cache: which leader epoch wrote
// which offsets. It is derived from the batches' partition_leader_epoch
// fields (storage persists and rebuilds it; the replica keeps its own copy
// for its decisions). The zero value is empty.
type Epochs struct {
	e []EpochEntry
}

// NewEpochs returns a cache holding entries (copied), which must grow in
// both Epoch and Start.
func NewEpochs(entries []EpochEntry) (Epochs, error) {
	for i := 1; i < len(entries); i++ {
		if a, b := entries[i-1], entries[i]; b.Epoch <= a.Epoch || b.Start < a.Start {
			return Epochs{}, fmt.Errorf("%w: epoch %d at %d follows epoch %d at %d", ErrBadEpochs, b.Epoch, b.Start, a.Epoch, a.Start)
		}
	}
	for _, x := range entries {
		if x.Epoch < 0 {
			return Epochs{}, fmt.Errorf("%w: negative epoch %d", ErrBadEpochs, x.Epoch)
		}
	}
	return Epochs{e: append([]EpochEntry(nil), entries...)}, nil
}

// Entries appends the entries to dst.
func (c *Epochs) Entries(dst []EpochEntry) []EpochEntry { return append(dst, c.e...) }

// Len is the number of entries.
func (c *Epochs) Len() int { return len(c.e) }

// Latest is the newest epoch (NoEpoch when empty).
func (c *Epochs) Latest() int32 {
	if len(c.e) == 0 {
		return NoEpoch
	}
	return c.e[len(c.e)-1].Epoch
}

// Assign records that a batch of epoch starts at offset start. An epoch
// not newer than the latest is not a new entry (batches of the latest
// epoch continue it); an older one is refused: a log's epochs only grow.
// The same epoch at an earlier start (a leader assigned its epoch at
// become-leader, then was truncated) moves the entry back.
func (c *Epochs) Assign(epoch int32, start uint64) error {
	n := len(c.e)
	switch {
	case epoch < 0:
		return fmt.Errorf("%w: negative epoch %d", ErrBadEpochs, epoch)
	case n > 0 && epoch < c.e[n-1].Epoch:
		return fmt.Errorf("%w: epoch %d at offset %d after epoch %d", ErrBadEpochs, epoch, start, c.e[n-1].Epoch)
	case n > 0 && start < c.e[n-1].Start:
		return fmt.Errorf("%w: epoch %d at offset %d before the start %d of epoch %d", ErrBadEpochs, epoch, start, c.e[n-1].Start, c.e[n-1].Epoch)
	case n > 0 && epoch == c.e[n-1].Epoch:
		return nil
	}
	c.e = append(c.e, EpochEntry{Epoch: epoch, Start: start})
	return nil
}

// TruncateFrom forgets the epochs of offsets at or after end (the log was
// truncated to end): entries starting there or later are dropped.
func (c *Epochs) TruncateFrom(end uint64) {
	n := len(c.e)
	for n > 0 && c.e[n-1].Start >= end {
		n--
	}
	c.e = c.e[:n]
}

// EndOffsetFor answers KIP-279's OffsetsForLeaderEpoch for epoch: the
// largest epoch at or below it that the log knows, and the offset where
// that epoch's batches end (the start of the next epoch, or logEnd for the
// latest). When the log knows no epoch at or below it, the answer is the
// asked epoch and the start of the first known one (its data was deleted
// by retention, Kafka's rule); an empty cache, or an epoch above the
// latest, answers (NoEpoch, logEnd).
func (c *Epochs) EndOffsetFor(epoch int32, logEnd uint64) (int32, uint64) {
	n := len(c.e)
	switch {
	case n == 0 || epoch < 0:
		return NoEpoch, logEnd
	case epoch == c.e[n-1].Epoch:
		return epoch, logEnd
	case epoch > c.e[n-1].Epoch:
		return NoEpoch, logEnd
	}
	// the first entry with a larger epoch
	i := 0
	for i < n && c.e[i].Epoch <= epoch {
		i++
	}
	if i == 0 {
		return epoch, c.e[0].Start
	}
	return c.e[i-1].Epoch, c.e[i].Start
}

// EpochAt is the epoch of the batch holding offset off (NoEpoch when the
// cache knows none).
func (c *Epochs) EpochAt(off uint64) int32 {
	for i := len(c.e) - 1; i >= 0; i-- {
		if c.e[i].Start <= off {
			return c.e[i].Epoch
		}
	}
	return NoEpoch
}
