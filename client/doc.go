// Package client is the core of ringmq's Go client: one TCP connection to a
// server (Conn) that says Hello on connect, pipelines requests and matches
// responses by correlation id. The producer, consumer and admin APIs build
// on it. It imports only proto (which adds nothing but the pure-Go batch
// codecs) and the standard library, so an application builds it with a
// plain go build.
//
// API: Dial opens a connection; Do sends any proto.Request and decodes the
// response into a proto.Message; the typed methods (Metadata, Produce,
// Fetch, ...) wrap Do. Errors the server reports for a whole request, or for
// the single topic an admin request names, come back as (wrapped)
// proto.ErrorCode values: errors.Is(err, proto.UnknownTopic). Errors per
// partition stay in the response structs.
//
// Concurrency: a Conn is safe for concurrent use. Each Conn runs two
// goroutines: a writer that sends every frame queued since its last write
// in one write (writev when it holds callers' batches), and a reader that
// hands each response to the caller waiting for it. Callers encode their
// request into the shared write buffer and wait on their own channel; there
// is no goroutine per request. Produce batches of 4 KiB and more (with
// acks) are not copied: the write reads them from the caller's memory, and
// Do returns only once it no longer does. When the
// connection dies every waiting caller fails with ErrConnectionLost (or
// ErrClosed after Close), and so does every later call.
//
// Memory: a response's byte fields (names, records) alias a buffer the
// reader allocated for that frame alone, which then belongs to the caller.
//
// On top of Conn: Producer (batching, partitioners, compression, retries,
// one result per record; its contract heads producer.go), Consumer
// (assignment, start positions, long-poll prefetch per shard, CRC checks,
// decompression, group commit and resume; contract at the top of
// consumer.go) and Admin (topics, groups and the cluster, admin.go). All
// three follow the cluster's partition leaders (cluster.go, metadata.go):
// each partition's produce, fetch and list-offsets go to its leader, and
// NOT_LEADER, FENCED_LEADER_EPOCH, a lost connection or a partition
// without a leader (ErrNoLeader) refresh the metadata and retry within
// the request's timeout.
package client
