package config

import (
	"fmt"
	"math/bits"
	"net"
	"strconv"
)

// Limits on settings. The segment bounds keep every file position of a
// segment (one oversized batch past segment_bytes included) inside the u32
// positions of the offset index.
const (
	MinSegmentBytes      = 1024
	MaxSegmentBytes      = 1<<31 - 1
	minFrameBytes        = 1024
	maxFrameBytes        = 1 << 30
	maxCores             = 1024
	maxRingEntries       = 32768 // IORING_MAX_ENTRIES
	maxRecvBuffers       = 32768 // largest provided-buffer ring
	minRecvBufferSize    = 1024
	maxRecvBufferSize    = 16 << 20
	maxDefaultPartitions = 100000
	// A fetch response stays far below the 4 GiB a frame length can say,
	// one oversized first batch and the partition headers included.
	minFetchBytes = 4096
	maxFetchBytes = 1 << 30
)

// checker keeps the first failed check (a sticky error).
type checker struct{ err error }

func (c *checker) check(ok bool, key string, value any, reason string) {
	if c.err == nil && !ok {
		c.err = invalid(key, value, reason)
	}
}

// Validate checks every setting's range and the settings that depend on
// each other. The error is the first problem found, a *KeyError wrapping
// ErrInvalid.
func (c Config) Validate() error {
	var ck checker
	c.Server.validate(&ck)
	c.Reactor.validate(&ck)
	c.Storage.validate(&ck)
	c.Topics.validate(&ck)
	c.Log.validate(&ck)
	c.Cluster.validate(&ck)
	c.Groups.validate(&ck)
	ck.check(c.Server.SASL != SASLScram || len(c.Cluster.Peers) <= 1 || c.Server.BrokerUser != "",
		"server.broker_user", c.Server.BrokerUser,
		`a cluster of several nodes with server.sasl = "scram" needs the user its brokers authenticate as`)
	return ck.err
}

func (s ServerConfig) validate(ck *checker) {
	ck.check(isHostPort(s.Listen), "server.listen", s.Listen,
		`want host:port, such as "127.0.0.1:9400"`)
	ck.check(s.MetricsListen == "" || isHostPort(s.MetricsListen), "server.metrics_listen",
		s.MetricsListen, `want host:port, or "" for no metrics server`)
	ck.check(s.MaxConnections >= 1, "server.max_connections", s.MaxConnections,
		"must be at least 1")
	ck.check(between(int64(s.MaxFrameBytes), minFrameBytes, maxFrameBytes),
		"server.max_frame_bytes", s.MaxFrameBytes, fromTo(minFrameBytes, maxFrameBytes))
	ck.check(s.ConnMaxUnansweredBytes >= int64(s.MaxFrameBytes),
		"server.conn_max_unanswered_bytes", s.ConnMaxUnansweredBytes,
		fmt.Sprintf("must be at least server.max_frame_bytes (%d)", s.MaxFrameBytes))
	ck.check(s.ShutdownTimeout > 0, "server.shutdown_timeout", s.ShutdownTimeout,
		"must be more than 0")
	ck.check(s.MaxBufferedBytes >= s.ConnMaxUnansweredBytes, "server.max_buffered_bytes",
		s.MaxBufferedBytes, fmt.Sprintf("must be at least server.conn_max_unanswered_bytes (%d)",
			s.ConnMaxUnansweredBytes))
	ck.check(between(s.FetchMaxBytes, minFetchBytes, maxFetchBytes), "server.fetch_max_bytes",
		s.FetchMaxBytes, fromTo(minFetchBytes, maxFetchBytes))
	ck.check(s.FetchMaxWait > 0, "server.fetch_max_wait", s.FetchMaxWait, "must be more than 0")
	ck.check(between(s.FetchColdReadBytes, minFetchBytes, s.FetchMaxBytes),
		"server.fetch_cold_read_bytes", s.FetchColdReadBytes,
		fmt.Sprintf("must be from %d to server.fetch_max_bytes (%d)", minFetchBytes, s.FetchMaxBytes))
	ck.check(s.FrameTimeout > 0, "server.frame_timeout", s.FrameTimeout, "must be more than 0")
	ck.check(s.IdleTimeout > 0, "server.idle_timeout", s.IdleTimeout, "must be more than 0")
	s.validateTLS(ck)
	s.validateSecurity(ck)
}

func (r ReactorConfig) validate(ck *checker) {
	ck.check(between(int64(r.Cores), 0, maxCores), "reactor.cores", r.Cores,
		fmt.Sprintf("must be from 0 (one reactor per CPU) to %d", maxCores))
	ck.check(isPow2(r.RingEntries, 8, maxRingEntries), "reactor.ring_entries", r.RingEntries,
		fmt.Sprintf("must be a power of two from 8 to %d", maxRingEntries))
	ck.check(between(int64(r.RecvBufferSize), minRecvBufferSize, maxRecvBufferSize),
		"reactor.recv_buffer_size", r.RecvBufferSize,
		fromTo(minRecvBufferSize, maxRecvBufferSize))
	ck.check(isPow2(r.RecvBuffers, 1, maxRecvBuffers), "reactor.recv_buffers", r.RecvBuffers,
		fmt.Sprintf("must be a power of two from 1 to %d", maxRecvBuffers))
	ck.check(validEnum(sendZCNames, uint8(r.SendZC)), "reactor.send_zc", r.SendZC,
		"want "+enumChoices(sendZCNames))
	ck.check(r.SendZCMinBytes >= 0, "reactor.send_zc_min_bytes", r.SendZCMinBytes, "must be 0 or more")
}

func (s StorageConfig) validate(ck *checker) {
	ck.check(s.DataDir != "", "storage.data_dir", s.DataDir, "must not be empty")
	s.TopicDefaults().validate(ck, "storage.", false)
	ck.check(s.SegmentMs >= 1, "storage.segment_ms", s.SegmentMs, "must be at least 1")
	ck.check(s.IndexIntervalBytes >= 0, "storage.index_interval_bytes", s.IndexIntervalBytes,
		"must be 0 (every batch) or more")
	ck.check(s.FlushInterval > 0, "storage.flush_interval", s.FlushInterval,
		"must be more than 0")
	ck.check(s.WritebackBytes >= 0, "storage.writeback_bytes", s.WritebackBytes,
		"must be 0 (off) or more")
	ck.check(s.ArchiveAfter >= 0, "storage.archive_after", s.ArchiveAfter,
		`must be "0s" (never) or more`)
	ck.check(s.ArchiveAfter == 0 || s.ArchiveDir != "", "storage.archive_after", s.ArchiveAfter,
		"needs storage.archive_dir")
	ck.check(s.RetentionCheckInterval > 0, "storage.retention_check_interval",
		s.RetentionCheckInterval, "must be more than 0")
	ck.check(s.ProducerIdleExpiry > 0, "storage.producer_idle_expiry", s.ProducerIdleExpiry,
		"must be more than 0")
}

func (t TopicsConfig) validate(ck *checker) {
	ck.check(between(int64(t.DefaultPartitions), 1, maxDefaultPartitions),
		"topics.default_partitions", t.DefaultPartitions, fromTo(1, maxDefaultPartitions))
}

func (l LogConfig) validate(ck *checker) {
	ck.check(validEnum(logFormatNames, uint8(l.Format)), "log.format", l.Format,
		"want "+enumChoices(logFormatNames))
}

// validate checks the settings a topic may override, named prefix+key. With
// unset true, zero fields ("not overridden") pass.
func (t TopicConfig) validate(ck *checker, prefix string, unset bool) {
	ck.checkInt(prefix, keyRetentionMs, t.RetentionMs, unset)
	ck.checkInt(prefix, keyRetentionBytes, t.RetentionBytes, unset)
	ck.checkInt(prefix, keySegmentBytes, t.SegmentBytes, unset)
	ck.check((unset && t.Flush == FlushUnset) || validEnum(flushNames, uint8(t.Flush)),
		prefix+keyFlush, t.Flush, "want "+enumChoices(flushNames))
}

func (c *checker) checkInt(prefix, key string, v int64, unset bool) {
	if unset && v == 0 {
		return
	}
	if reason := topicIntReason(key, v); reason != "" {
		c.check(false, prefix+key, v, reason)
	}
}

// topicIntReason says why v is not a valid value of the integer topic
// setting key, or returns "".
func topicIntReason(key string, v int64) string {
	switch key {
	case keyRetentionMs:
		if v == -1 || v > 0 {
			return ""
		}
		return "must be -1 (forever) or more than 0"
	case keyRetentionBytes:
		if v == -1 || v > 0 {
			return ""
		}
		return "must be -1 (no limit) or more than 0"
	case keySegmentBytes:
		if between(v, MinSegmentBytes, MaxSegmentBytes) {
			return ""
		}
		return fromTo(MinSegmentBytes, MaxSegmentBytes)
	}
	panic("BUG: config: no range for topic setting " + key)
}

func between(v, lo, hi int64) bool { return v >= lo && v <= hi }

func fromTo(lo, hi int64) string { return fmt.Sprintf("must be from %d to %d", lo, hi) }

func isPow2(v, lo, hi int) bool {
	return v >= lo && v <= hi && bits.OnesCount(uint(v)) == 1
}

// isHostPort accepts "host:port" and ":port" with a numeric port; port 0
// asks the kernel for an ephemeral one.
func isHostPort(s string) bool {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	_, err = strconv.ParseUint(port, 10, 16)
	return err == nil
}
