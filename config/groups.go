package config

import (
	"fmt"
	"strings"
	"time"
)

// Backoff is a list of delays, written "1s,5s,30s" ("" is none).
type Backoff []time.Duration

// UnmarshalText parses a comma-separated list of durations.
func (b *Backoff) UnmarshalText(text []byte) error {
	*b = nil
	s := strings.TrimSpace(string(text))
	if s == "" {
		return nil
	}
	for _, f := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("backoff %q: %w", s, err)
		}
		*b = append(*b, d)
	}
	return nil
}

// GroupsConfig is the [groups] table: the consumer-group coordinator and
// its internal log (__consumer_offsets).
type GroupsConfig struct {
	// Partitions of the internal topic; a group lives on partition
	// hash(name) mod Partitions. Fixed once groups exist (changing it
	// moves groups away from their state).
	Partitions        int           `toml:"partitions"`
	MinSessionTimeout time.Duration `toml:"min_session_timeout"`
	MaxSessionTimeout time.Duration `toml:"max_session_timeout"`
	HeartbeatInterval time.Duration `toml:"heartbeat_interval"`
	MaxGroups         int           `toml:"max_groups"`
	MaxMembers        int           `toml:"max_members"`
	// CompactBytes: a partition's log is rewritten as its live state once
	// it exceeds this and twice the live state's size.
	CompactBytes int64 `toml:"compact_bytes"`
	// MaxLagSeries bounds the (group, topic, partition) series of
	// committed offset and lag exported to /metrics.
	MaxLagSeries int `toml:"max_lag_series"`

	// Shared and key_shared subscriptions.
	// AckTimeout: the lock of a record handed to a member; unacked after
	// it, the record is delivered again.
	AckTimeout time.Duration `toml:"ack_timeout"`
	// MaxUnacked: the in-flight window per (group, partition): no record
	// at or past the ack floor + MaxUnacked is handed out.
	MaxUnacked int `toml:"max_unacked"`
	// MaxDeliveries: a record delivered this many times and released
	// again goes to the dead-letter topic <topic>.dlq; 0: never.
	MaxDeliveries int `toml:"max_deliveries"`
	// RedeliveryBackoff: the delay before the n-th redelivery of a record
	// nacked without a delay or whose lock expired (the last entry
	// repeats); empty: at once.
	RedeliveryBackoff Backoff `toml:"redelivery_backoff"`
	// MaxDelay caps delayed delivery (a record is handed out no later than
	// its append time + MaxDelay); delayed records pin the ack floor.
	MaxDelay time.Duration `toml:"max_delay"`
}

// Limits on [groups] settings.
const (
	maxGroupPartitions = 1024
	minSessionFloor    = 100 * time.Millisecond
)

func defaultGroups() GroupsConfig {
	return GroupsConfig{
		Partitions: 8, MinSessionTimeout: time.Second, MaxSessionTimeout: 5 * time.Minute,
		HeartbeatInterval: 3 * time.Second, MaxGroups: 100_000, MaxMembers: 1000,
		CompactBytes: 16 * mib, MaxLagSeries: 1000,
		AckTimeout: 30 * time.Second, MaxUnacked: 10_000, MaxDeliveries: 5, MaxDelay: time.Hour,
	}
}

func (g GroupsConfig) validate(ck *checker) {
	ck.check(g.Partitions >= 1 && g.Partitions <= maxGroupPartitions, "groups.partitions", g.Partitions,
		"must be 1..1024")
	ck.check(g.MinSessionTimeout >= minSessionFloor, "groups.min_session_timeout", g.MinSessionTimeout,
		"must be at least 100ms")
	ck.check(g.MaxSessionTimeout >= g.MinSessionTimeout, "groups.max_session_timeout", g.MaxSessionTimeout,
		"must be at least groups.min_session_timeout")
	ck.check(g.HeartbeatInterval > 0, "groups.heartbeat_interval", g.HeartbeatInterval, "must be more than 0")
	ck.check(g.MaxGroups >= 1, "groups.max_groups", g.MaxGroups, "must be at least 1")
	ck.check(g.MaxMembers >= 1, "groups.max_members", g.MaxMembers, "must be at least 1")
	ck.check(g.CompactBytes >= 64*kib, "groups.compact_bytes", g.CompactBytes, "must be at least 65536")
	ck.check(g.MaxLagSeries >= 0, "groups.max_lag_series", g.MaxLagSeries, "must be at least 0")
	ck.check(g.AckTimeout >= 10*time.Millisecond, "groups.ack_timeout", g.AckTimeout, "must be at least 10ms")
	ck.check(g.MaxUnacked >= 1 && g.MaxUnacked <= 1<<24, "groups.max_unacked", g.MaxUnacked, "must be 1..16777216")
	ck.check(g.MaxDeliveries >= 0 && g.MaxDeliveries <= 65535, "groups.max_deliveries", g.MaxDeliveries, "must be 0..65535")
	ck.check(g.MaxDelay >= 0, "groups.max_delay", g.MaxDelay, "must be at least 0")
	for _, d := range g.RedeliveryBackoff {
		ck.check(d >= 0, "groups.redelivery_backoff", d, "entries must be at least 0")
	}
}
