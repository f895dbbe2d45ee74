// Package metalog is ringmq's metadata store: topic configs, committed
// consumer offsets and other small cluster state, kept in its own
// append-only, CRC-framed log with snapshots, apart from the message data.
//
// # Ownership
//
// A Store owns one directory and, in it, meta.log, meta.snapshot and the
// scratch file meta.snapshot.tmp. An flock on meta.log keeps a second Store
// (in this process or another) out of the directory.
//
// # API
//
// Open loads the snapshot and replays the log into an ordered in-memory map;
// Put, Delete and the typed helpers (CommitOffset, DeleteGroup, PutTopic,
// ...) append a record to the log before they change the map, and Get,
// Range, FetchOffset, GroupOffsets and Topics read the map. Compact (also
// run by the write that takes the log past Options.CompactBytes and past
// twice the live size) writes the live map as a new snapshot and empties the
// log; Sync makes appended records durable when Options.SyncEveryWrite is
// off.
//
// # Concurrency
//
// A Store is safe for concurrent use. One mutex serializes every call (this
// is not the hot path); an automatic compaction runs inside the write that
// triggers it, so that write takes as long as writing the snapshot.
//
// # Log record
//
// meta.log is a sequence of records with no file header. Little-endian;
// these offsets and constants are persisted: never change them.
//
//	offset size field
//	     0    4 length      bytes after the crc field; minBodySize..maxBodySize
//	     4    4 crc32c      Castagnoli (proto.CRC32C) over those length bytes
//	     8    1 version     recordVersion = 1
//	     9    1 op          1 put, 2 delete, 3 end (snapshot trailer only)
//	    10    … key_len     zig-zag varint, 0..MaxKeySize
//	     …    … key
//	     …    … value_len   zig-zag varint, 0..MaxValueSize (0 for delete)
//	     …    … value
//
// # Snapshot file
//
//	+------------+------------+--------------------------+-------------------+
//	| "RMQMSNAP" | version u8 | put records, keys        | end record:       |
//	| 8 bytes    | = 1        | strictly ascending       | value = u64 count |
//	+------------+------------+--------------------------+-------------------+
//
// Records in the snapshot use the log's framing. Nothing may follow the end
// record, whose count must equal the number of put records.
//
// # Typed keys
//
// Committed offsets live under "o/" group NUL topic NUL partition (u32
// big-endian), so one group's offsets are contiguous and ordered by topic
// then partition; topic configs live under "t/" name, their value a topic
// record (AppendTopicRecord/ParseTopicRecord; layout in topic.go). Put and Delete refuse
// those prefixes; Open checks that every offset key and value read back
// decodes. The offset value layout is documented beside OffsetKeyPrefix.
//
// # Recovery rule
//
// Open deletes a leftover meta.snapshot.tmp (a compaction that crashed
// before its rename), loads meta.snapshot and replays meta.log over it.
// The snapshot is replaced atomically, so any defect in it is corruption.
// In the log, a bad frame (it runs past the end of the file, its length is
// out of range, or its CRC does not match) is a torn tail when nothing but
// zero bytes follows its end (the end of its 8-byte header when the length
// is out of range), or when a sector's part after it is all zeros (a write
// a power cut lost while keeping a later one: vfs.LostSector), or when its
// header straddles a sector boundary, reads as zeros before it, and filling
// those bytes of its length in makes its CRC match (the earlier sector's
// write lost, the later one kept): the log is truncated there and Open
// carries on. Any other bad frame is corruption,
// as is a frame whose
// CRC matches but whose contents do not decode; Open then fails with a
// *CorruptError naming the file and the record's offset, wrapping
// ErrCorrupt (or ErrVersion for a format it does not know). Replaying a log
// already covered by the snapshot (a crash after a compaction's rename but
// before its log reset) is harmless: compaction fdatasyncs the log before
// writing the snapshot, so the log holds every write the snapshot covers,
// and puts and deletes replayed in order over their own result give the
// same map.
//
// Guarantee: a process crash at any byte loses at most the record being
// written (with SyncEveryWrite, a power cut too). Without SyncEveryWrite a
// power cut loses the records after the last Sync (a prefix of them may
// survive; a later sector kept after a lost one is cut off with it). A
// bit flip that turns a length into one that runs past
// the end of the file is indistinguishable from a torn tail and is cut.
package metalog
