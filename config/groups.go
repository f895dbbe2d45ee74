package config

import "time"

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
}
