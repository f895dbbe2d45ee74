package reactor

// User data layout of every SQE a reactor submits:
//
//	bits 63..56  kind   (what completed)
//	bits 55..32  gen    (generation of a connection slot, so a late completion
//	                     for a reused connection is recognised and dropped;
//	                     0 for storage ops, which complete exactly once)
//	bits 31..0   index  (connection slot, op slot, ...)
type udKind uint8

const (
	udAccept udKind = iota + 1
	udRecv
	udSend
	udWrite
	udFsync
	udRead
	udWake
	udTimeout
	udCancel
	udClose
	udAcceptRetry // accept paused after EMFILE/ENFILE: time to re-arm
	udRefused     // connection error sent to a refused connection; idx: its fd
	udSendZC      // zero-copy send: gen is the send's number (low 24 bits), idx the connection slot
	udWriteback   // sync_file_range(WRITE) of a segment (writeback pacing); idx: op slot
)

func makeUD(kind udKind, gen uint32, idx uint32) uint64 {
	return uint64(kind)<<56 | uint64(gen&0xffffff)<<32 | uint64(idx)
}

func splitUD(ud uint64) (kind udKind, gen uint32, idx uint32) {
	return udKind(ud >> 56), uint32(ud>>32) & 0xffffff, uint32(ud)
}
