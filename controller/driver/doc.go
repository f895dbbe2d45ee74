// Package driver runs a controller.Node: it owns the I/O that the
// I/O-free controller leaves out. A Driver is one goroutine that ticks the
// node on a timer, steps it with peers' messages, persists each Ready
// durably under <data>/controller/ (Disk) before calling Advance and
// before sending the Ready's messages through a Transport (TCP between
// nodes), answers proposals and publishes the applied state.
//
// # API
//
// Open(Config) loads or bootstraps the log and starts the loop; Propose
// waits for a command's verdict; State is a read-only copy of the applied
// metadata, Changed a channel closed at its next change, Status the
// leader, term and commit index; Close stops at once (everything
// acknowledged is already durable).
//
// # Concurrency
//
// Driver's methods are safe for concurrent use; the Node, the Disk and
// the waiting proposals belong to the loop goroutine. A Disk is owned by
// one goroutine. Transport.Send never blocks: each peer has a bounded
// queue, and a full one drops (Raft resends).
//
// # Files
//
// Under the controller directory:
//
//	snapshot              one snapshot frame; replaced atomically
//	hardstate             one hard state frame; replaced atomically
//	log/<first index>.log entry frames, index first, first+1, ...
//
// "Replaced atomically" is: write <name>.tmp, fsync, rename over <name>,
// fsync the directory. Segments are named by their first index on 20
// digits and roll past 1 MiB. Save writes in Raft's order: a leader's
// snapshot (then removes every segment), the entries (an entry at an index
// already on disk first cuts the log there: truncate and fsync), fdatasync,
// the hard state; then the node's own snapshot, after which the segments
// wholly at or below its compact index are removed.
//
// Opening: the snapshot (none: write the bootstrap snapshot of the
// configured voters), the hard state, the segments. In the last segment a
// torn tail is cut off: a frame running past the end of the file, zeros to
// the end, or a bad checksum on the frame that ends the file. Anything
// else (a bad frame with data after it, an entry out of sequence, a gap
// between segments, a hard state committing past the log, a damaged
// snapshot or hard state file) is ErrCorrupt and the node does not start.
// A log that holds the snapshot's index at another term, or ends before
// it, was replaced by that snapshot and is dropped.
//
// # Frame format
//
// Little-endian; persisted: never change.
//
//	offset size field
//	     0    4 length    bytes after the crc field (>= 2)
//	     4    4 crc32c    Castagnoli over those length bytes
//	     8    1 version   1
//	     9    1 kind      1 entry, 2 hard state, 3 snapshot
//	    10    … fields    uvarints; bytes as uvarint length + bytes
//
//	1 entry       index, term, type, data
//	2 hard state  term, vote, commit
//	3 snapshot    index, term, n_voters, n × voter, data (controller.AppendSnapshot)
//
// # Transport frames
//
// TCP carries, on one connection per direction and peer, frames of a
// 4-byte little-endian length and a protobuf-marshalled raftpb.Message
// (at most 64 MiB). It listens on a port of its own for now; the server
// will carry the same frames on the client port through an internal API.
package driver
