// Package bench is ringmq's load generator: it drives a running server
// through the public client (client.Conn and proto record batches only,
// never server internals) and reports throughput and latency.
//
// API: fill a Config and call Run, which returns a Report (Report.WriteText
// for people, encoding/json for tools). Modes:
//
//	produce  P producer connections send batches as fast as they are acked
//	         (or at --rate); latency is send to ack, per record.
//	consume  C consumer connections read the topic from its start to the
//	         end it had when the run began (pre-filled with Config.Messages
//	         records if it holds fewer); latency is one fetch round trip.
//	e2e      producers and consumers at once; latency is produce to consume,
//	         from the send time each record carries in its first 8 bytes.
//	tcp      the baseline: a sink server in this process and P writer
//	         connections writing buffers of one produce request's size over
//	         loopback, so broker/raw ratios come from the same minute.
//
// Cost: the hot loops do not allocate per message. A producer builds one
// batch template per connection slot and, per send, patches the send time
// into each record (8 bytes) and recomputes the CRC; latency is recorded
// once per batch (RecordValues) when every record in it was created
// together, per record only when --rate spaces them out. Each worker owns
// its HDR histogram (microseconds, 3 significant digits) and counters;
// histograms are merged at the end, counters read atomically by the
// once-a-second progress line.
//
// Units: MB is 10^6 bytes. Bytes count record values (Config.MsgSize per
// message), not keys, headers, batch or frame overhead.
//
// Concurrency: Run may be called from any goroutine; one Run uses
// Producers × InFlight sender goroutines, one reader goroutine per consumed
// partition, and one progress goroutine, and waits for all of them.
package bench
