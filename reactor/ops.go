package reactor

import (
	"errors"
	"syscall"

	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/storage"
)

// ioOp is one storage operation in the kernel: a segment write, an
// fdatasync, a writeback, or a cold read. Its slot index is the SQE's user data.
type ioOp struct {
	part   *partition
	append storage.AppendOp
	wb     storage.WritebackOp

	// ack is the write's entry in the reactor's ack table (none when
	// replicated: a follower's append of fetched batches).
	ack        uint32
	replicated bool
	req        *request
	origin     *Reactor
	idx        int32

	// A cold read for another reactor's fetch (origin set).
	coldView             storage.View
	coldBuf              []byte
	hw, logEnd, logStart uint64
	resubmit             bool
	// wbuf and wpos are what is left to write of append (short writes).
	wbuf []byte
	wpos int64
}

// opTable is a slab of ioOps with a free list; it does not allocate once
// warm. An op gets exactly one completion and its slot is released on it,
// so slots need no generation: ops are addressed by slot (the SQE's user
// data), never by a pointer kept across a completion, and the slab may move
// when it grows.
type opTable struct {
	ops   []ioOp
	free  []uint32
	inUse int
}

func (t *opTable) alloc() (uint32, *ioOp) {
	t.inUse++
	if n := len(t.free); n > 0 {
		slot := t.free[n-1]
		t.free = t.free[:n-1]
		return slot, &t.ops[slot]
	}
	t.ops = append(t.ops, ioOp{})
	slot := uint32(len(t.ops) - 1)
	return slot, &t.ops[slot]
}

func (t *opTable) release(slot uint32) {
	t.ops[slot] = ioOp{}
	t.free = append(t.free, slot)
	t.inUse--
}

func (r *Reactor) onOp(kind udKind, slot uint32, res int32) {
	if int(slot) >= len(r.ops.ops) {
		return
	}
	o := &r.ops.ops[slot]
	switch kind {
	case udWrite:
		if o.part.deleted {
			a := r.acks.take(o.ack)
			r.partResult(a.req, a.origin, int(a.ti), int(a.pi), proto.UnknownTopic, 0, 0)
			break
		}
		r.onWriteDone(o, res)
		if o.resubmit {
			o.resubmit = false
			r.ring.PrepareWrite(o.append.Fd, o.wbuf, uint64(o.wpos), makeUD(udWrite, 0, slot))
			return
		}
	case udFsync:
		if r.srv.holdFsyncs.Load() {
			r.heldFsyncs = append(r.heldFsyncs, heldCQE{slot: slot, res: res})
			return
		}
		if !o.part.deleted {
			r.onFsyncDone(o, res)
		}
	case udRead:
		r.onColdRead(o, res)
	case udWriteback:
		if !o.part.deleted {
			r.onWritebackDone(o, res)
		}
	}
	r.ops.release(slot)
}

func errnoErr(res int32) error {
	return syscall.Errno(-res)
}

// storageErrorCode maps a storage error to its wire code.
func storageErrorCode(err error) proto.ErrorCode {
	switch {
	case errors.Is(err, proto.ErrBatchVersion):
		return proto.UnsupportedBatch
	case errors.Is(err, proto.ErrInvalidRecords):
		return proto.InvalidRecord
	case errors.Is(err, proto.ErrCorrupt), errors.Is(err, proto.ErrShortBatch):
		return proto.CorruptMessage
	case errors.Is(err, storage.ErrFenced):
		return proto.PartitionFenced
	case errors.Is(err, storage.ErrBatchTooLarge):
		return proto.MessageTooLarge
	case errors.Is(err, storage.ErrClosed):
		return proto.UnknownPartition
	}
	return proto.StorageError
}
