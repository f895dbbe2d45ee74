// Package proto owns every byte layout of ringmq: record batches (the same
// bytes on the wire and on disk), request and response frames, the body of
// every API message, and the table of wire error codes. It imports nothing
// of ringmq's; besides the standard library it uses only the pure-Go codecs
// of compressed batches (github.com/golang/snappy, github.com/pierrec/lz4/v4,
// github.com/klauspost/compress), no cgo, io_uring or x/sys, so the client
// builds anywhere with a plain go build (imports_test.go keeps this true).
//
// API: messages encode with AppendTo(dst) (append-style, the body only) and
// decode with Decode(body) into a caller-owned struct that reuses its slices;
// frames are written with AppendRequestHeader / AppendResponseHeader and read
// with FrameLength and ParseRequestHeader / ParseResponseHeader.
//
// Concurrency: nothing here has shared state. A message struct, a Decoder,
// a BatchBuilder or a RecordIter belongs to one goroutine at a time.
//
// # Frames (little-endian; the length counts the bytes after itself)
//
//	request:  u32 length | u16 api | u16 version | u32 correlation_id | body
//	response: u32 length | u32 correlation_id | u16 error | body
//
// A connection carries many requests in flight; responses may come back in
// any order and are matched by correlation id. A frame longer than the
// server's max_frame_bytes (DefaultMaxFrameBytes) closes the connection. The
// response header's error is for the request as a whole (unsupported API or
// version, a body that does not decode, a server shutting down); its body is
// then empty. Errors about the named topics, partitions or groups travel in
// the body. A Produce request with acks 0 gets no response at all.
// Correlation id 0 (ConnErrorID) is never used by a request: a response
// with it is a connection error the server sends unasked (today
// TOO_MANY_CONNECTIONS) just before it closes the connection.
//
// # Bodies
//
//	u8/i8, u16/i16, u32, u64/i64  fixed width, little-endian
//	string                        u16 length | bytes
//	records                       u32 length | record batches back to back
//	array                         u32 count | count elements
//	bool                          u8, 0 or 1
//
// Encodings are canonical: decoding rejects trailing bytes and booleans other
// than 0 and 1, so AppendTo(Decode(b)) == b for every b that decodes.
//
// Byte fields (topic and group names on the data path, records, metadata)
// alias the frame they were decoded from: the frame must outlive the message.
// The data-path messages (Produce, Fetch, ListOffsets, OffsetCommit,
// OffsetFetch) use []byte for names so the server decodes them without
// allocating and looks topics up with m[string(name)]; the admin messages
// (Hello, Metadata, CreateTopic, DeleteTopic, DescribeTopic, ListGroups) use
// string, which allocates on decode.
//
// # APIs (numbers never change; every API is at version 0)
//
//	1  Hello         min_version u16, max_version u16, client_id string,
//	                 requested_shard i16 (-1 none)
//	                 → version u16, reactors u16, shard u16, moved bool
//	2  Metadata      [topic string] (empty: all)
//	                 → [name string, error u16,
//	                    [partition u32, shard u16, log_start u64, log_end u64]]
//	3  CreateTopic   name string, partitions u32, [key string, value string]
//	                 → error u16, message string
//	4  DeleteTopic   name string → error u16
//	5  DescribeTopic name string
//	                 → error u16, [partition u32, shard u16, log_start u64,
//	                    log_end u64, bytes u64], [key string, value string]
//	6  Produce       acks i8, timeout_ms u32,
//	                 [name, [partition u32, records]]
//	                 → [name, [partition u32, error u16, base_offset u64, log_end u64]]
//	7  Fetch         max_wait_ms u32, min_bytes u32, max_bytes u32,
//	                 [name, [partition u32, offset u64, partition_max_bytes u32]]
//	                 → [name, [partition u32, error u16, high_watermark u64,
//	                    log_start u64, records]]
//	8  ListOffsets   [name, [partition u32, timestamp i64]]
//	                 → [name, [partition u32, error u16, offset u64, timestamp i64]]
//	9  OffsetCommit  group string, member_id string, member_epoch u32,
//	                 [name, [partition u32, offset u64, metadata string]]
//	                 → [name, [partition u32, error u16]]
//	10 OffsetFetch   group string, member_id string, member_epoch u32,
//	                 [name, [partition u32]] (empty: all the group has)
//	                 → [name, [partition u32, offset u64, metadata string,
//	                    commit_time_ms i64, error u16]]
//	11 ListGroups    group string (empty: all)
//	                 → [name string, type u8, state u8, members u32, [topic string,
//	                    [partition u32, committed u64, log_end u64, lag u64]]]
//	20 InitProducer  producer_id i64 (-1: a new one), producer_epoch i16
//	                 → error u16, producer_id i64, producer_epoch i16
//	21 JoinGroup     group, type u8, member_id, client_id, session_timeout_ms u32, [topic]
//	                 → error u16, message, member_id, member_epoch u32,
//	                   heartbeat_interval_ms u32, assigned, revoke, pending
//	                   (each [topic string, [partition u32]])
//	22 Heartbeat     group, member_id, member_epoch u32, owned → as JoinGroup
//	23 LeaveGroup    group, member_id → error u16, message
//	24 DescribeGroup group → error u16, message, type u8, state u8, epoch u32,
//	                   [member: id, client_id, addr, session_timeout_ms u32, epoch u32,
//	                    [topic], assigned, revoking, pending], positions (as ListGroups)
//	25 DeleteGroup   group → error u16, message
//	26 ResetOffsets  group, topic, dry_run bool, [partition u32, offset u64]
//	                 → error u16, message, [partition u32, had bool, from u64, to u64]
//	30 ShareAcquire  group, member_id, member_epoch u32, topic, partition u32, max_records u32
//	                 → error u16, message, ack_timeout_ms u32, [start u64, end u64, deliveries u32]
//	31 ShareAck      group, member_id, member_epoch u32, topic, partition u32,
//	                   [op u8, start u64, end u64, delay_ms u32, reason]
//	                 → error u16, message, [error u16] (one per ack)
//	32 ShareDescribe group → error u16, message, [topic, partition u32, floor u64,
//	                   log_end u64, in_flight u32, waiting u32, redeliveries u64, dead_letters u64]
//
// The record batch layout is documented in batch.go and record.go: it is
// Kafka's RecordBatch v2 byte for byte, big-endian unlike the frames around
// it (version 1, ringmq's own little-endian layout, is read only to convert
// old data: batch_v1.go). Compressed records: compress.go. What produce
// accepts: ValidateBatch and ValidateRecords (validate.go).
package proto
