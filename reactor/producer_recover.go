package reactor

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/replica"
	"github.com/ringmq/ringmq/storage"
)

// Recovery of a partition's idempotent-producer state, where its log is
// opened (Start, the admin goroutine; never a reactor): the newest
// producer snapshot beside the checkpoint that is not ahead of the
// recovered log (else the one before it, else none: the log start),
// then a Replay of the batch headers from its offset to the log end. The
// result is compacted to a snapshot at the log end, which the owner
// restores without I/O when it installs the partition (restoreProducers).

// recoverProducers rebuilds lg's producer state and keeps it for the
// reactor that will install lg. A state that cannot be rebuilt whole (the
// log past the snapshot cannot be read) is logged; what was rebuilt is
// kept (retries of the lost producers' batches are then refused as out of
// order or unknown, not stored twice).
func (s *Server) recoverProducers(lg *storage.Log) {
	if lg.LogEnd() == 0 {
		return
	}
	snap, unused, err := rebuildProducers(lg)
	if unused != nil {
		s.log.Warn("producer snapshot not used; rebuilt from an older one or the log", "topic", lg.Topic(), "partition", lg.Partition(), "err", unused)
		// Replace it, so a crash before the next snapshot never comes
		// back to it.
		lg.WriteFileAsync(producerSnapshotFile, producerSnapshotPrev, replica.AppendProducerSnapshot(nil, snap))
	}
	if err != nil {
		s.log.Error("idempotent producer state not fully recovered", "topic", lg.Topic(), "partition", lg.Partition(), "err", err)
	}
	s.prodRecovered.Store(lg, snap)
}

// rebuildProducers returns lg's producer state at its log end; unused
// says why the newest snapshot on disk was there but not used (damaged,
// or ahead of the log), and err why the log after the snapshot could not
// be replayed.
func rebuildProducers(lg *storage.Log) (snap *replica.ProducerSnapshot, unused, err error) {
	var st replica.ProducerState
	for i, name := range []string{producerSnapshotFile, producerSnapshotPrev} {
		err := restoreSnapshotFile(lg, &st, name)
		if err == nil {
			break
		}
		if i == 0 && !errors.Is(err, fs.ErrNotExist) {
			unused = fmt.Errorf("%s: %w", name, err)
		}
	}
	err = lg.WalkBatchHeaders(st.End(), func(h *proto.BatchHeader) error {
		return st.Replay(replica.LogBatch{
			ProducerBatch: replica.ProducerBatch{ProducerID: h.ProducerID, Epoch: h.ProducerEpoch,
				BaseSeq: h.BaseSequence, Count: int32(h.RecordCount), MaxTimestamp: h.MaxTimestamp},
			BaseOffset: h.BaseOffset, LastOffset: h.LastOffset(),
		})
	})
	if err != nil {
		err = fmt.Errorf("replay from offset %d: %w", st.End(), err)
	}
	s := st.Snapshot()
	s.Offset = max(s.Offset, lg.LogEnd())
	return &s, unused, err
}

// restoreSnapshotFile restores st from the snapshot file name of lg.
func restoreSnapshotFile(lg *storage.Log, st *replica.ProducerState, name string) error {
	b, err := lg.ReadFile(name)
	if err != nil {
		return err
	}
	snap, _, err := replica.ParseProducerSnapshot(b)
	if err != nil {
		return err
	}
	return st.Restore(&snap, lg.LogEnd())
}

// restoreProducers gives the replica of p, just installed on its owner, the
// producer state recovered when its log was opened. No I/O.
func (r *Reactor) restoreProducers(p *partition) {
	v, ok := r.srv.prodRecovered.LoadAndDelete(p.log)
	if !ok {
		return
	}
	snap := v.(*replica.ProducerSnapshot)
	if err := p.rep.Producers().Restore(snap, p.log.LogEnd()); err != nil {
		r.srv.log.Error("idempotent producer state not restored", "topic", p.topic.name, "partition", p.id, "err", err)
		return
	}
	p.prod.snapAt, p.prod.snapOff = r.now, snap.Offset
}
