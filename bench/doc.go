// Package bench is ringmq's load generator: it drives a running server
// through the public client (client.Conn and proto record batches only,
// never server internals) and reports throughput and latency.
//
// API: fill a Config and call Run, which returns a Report (Report.WriteText
// for people, encoding/json for tools, Report.WriteHTML for a page with
// SVG charts of throughput over the run and the latency percentile curve).
// While it runs, a progress goroutine samples the totals every 250 ms (the
// report's timeline) and shows them on Config.Progress: a redrawn bar when
// Config.ProgressBar (a terminal), else a plain line every
// ProgressInterval. Modes:
//
//	produce  P producers send as fast as they are acked (or at Rate);
//	         latency is send to ack, per record.
//	consume  C consumers read the topic from its start to the end it had
//	         when the run began (pre-filled with Config.Messages records if
//	         it holds fewer; an empty topic without a count gets
//	         DefaultMessages); latency is one fetch (or Poll) round trip.
//	e2e      producers and consumers at once; latency is produce to consume,
//	         from the send time each record carries in its first 8 bytes.
//	tcp      the baseline: a sink server in this process and P writer
//	         connections writing buffers of one produce request's size over
//	         loopback, so broker/raw ratios come from the same minute.
//	rawlog   the log baseline: a minimal server in this process reads whole
//	         requests of one produce request's size from P loopback
//	         connections (InFlight outstanding each), write(2)s each to its
//	         connection's file and answers 8 bytes (the file size), with no
//	         parsing: the machine's limit for produce (the page cache's
//	         write path, not loopback, bounds it); latency is request to
//	         answer.
//
// Drivers: DriverRaw (default) sends pre-built batches over one
// client.Conn per producer (InFlight requests in flight each, connection
// asked to the shard of its partitions) and reads with plain Fetch
// requests, one reader per partition: the least client work per message,
// so the numbers are the broker's. DriverClient goes through
// client.Producer (one Send per record with a shared callback; per
// partition at most one request in flight, as its contract says) and
// client.Consumer (Poll): what an application gets.
//
// Cost: the hot loops do not allocate per message. A raw producer builds
// one batch template per request slot and, per send, patches the send time
// into each record (8 bytes) and recomputes the CRC; latency is recorded
// once per batch (RecordValues) when every record in it was created
// together, per record only when Rate spaces them out. The client driver
// reuses one payload (Send copies it) and matches results to send times
// through a per-partition ring, since results of a partition arrive in
// send order. Each worker owns its HDR histogram (microseconds, 3
// significant digits) and counters; histograms are merged at the end,
// counters read atomically by the once-a-second progress line.
//
// Latency under Rate counts from each record's due time, not from when it
// was sent, so a server that falls behind shows up (no coordinated
// omission). Unthrottled latency is mostly queueing: use Rate to measure
// latency at a given load.
//
// Units: MB is 10^6 bytes. Bytes count record values (Config.MsgSize per
// message), not keys, headers, batch or frame overhead.
//
// Concurrency: Run may be called from any goroutine, also concurrently; a
// run's goroutines (senders, readers, progress, the client's own) all end
// before it returns.
package bench
