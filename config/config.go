package config

import (
	"log/slog"
	"runtime"
	"time"
)

// Config is the whole server configuration, one field per TOML table.
type Config struct {
	Server  ServerConfig  `toml:"server"`
	Reactor ReactorConfig `toml:"reactor"`
	Storage StorageConfig `toml:"storage"`
	Topics  TopicsConfig  `toml:"topics"`
	Log     LogConfig     `toml:"log"`
	Cluster ClusterConfig `toml:"cluster"`
	Groups  GroupsConfig  `toml:"groups"`
}

// ServerConfig is the [server] table: listeners, limits and shutdown.
type ServerConfig struct {
	Listen                 string        `toml:"listen"`
	MetricsListen          string        `toml:"metrics_listen"` // "" disables /metrics and /healthz
	MaxConnections         int           `toml:"max_connections"`
	MaxFrameBytes          int           `toml:"max_frame_bytes"`
	ConnMaxUnansweredBytes int64         `toml:"conn_max_unanswered_bytes"`
	ShutdownTimeout        time.Duration `toml:"shutdown_timeout"`
	Pprof                  bool          `toml:"pprof"` // /debug/pprof/ on the metrics listener

	// Bounds on what one client can make the server hold.
	MaxBufferedBytes   int64         `toml:"max_buffered_bytes"` // all connections, split across reactors
	FetchMaxBytes      int64         `toml:"fetch_max_bytes"`
	FetchMaxWait       time.Duration `toml:"fetch_max_wait"`
	FetchColdReadBytes int64         `toml:"fetch_cold_read_bytes"`
	FrameTimeout       time.Duration `toml:"frame_timeout"`
	IdleTimeout        time.Duration `toml:"idle_timeout"`

	// TLS on the client listener (tls.go).
	TLS                 TLSMode       `toml:"tls"`
	TLSCert             string        `toml:"tls_cert"`
	TLSKey              string        `toml:"tls_key"`
	TLSCA               string        `toml:"tls_ca"`
	TLSHandshakeTimeout time.Duration `toml:"tls_handshake_timeout"`
	KTLS                KTLSMode      `toml:"ktls"`
	// Security (authentication and authorization; see security.go).
	SASL          SASLMode `toml:"sasl"`
	Authorization OnOff    `toml:"authorization"`
	Superusers    []string `toml:"superusers"`
	// The user brokers authenticate as to each other (with sasl = scram).
	BrokerUser     string `toml:"broker_user"`
	BrokerPassword string `toml:"broker_password"`
}

// ReactorConfig is the [reactor] table: the io_uring reactors.
type ReactorConfig struct {
	Cores          int    `toml:"cores"` // 0: one reactor per CPU; see NumReactors
	RingEntries    int    `toml:"ring_entries"`
	RecvBufferSize int    `toml:"recv_buffer_size"`
	RecvBuffers    int    `toml:"recv_buffers"`
	PinThreads     bool   `toml:"pin_threads"`
	SendZC         SendZC `toml:"send_zc"`
	SendZCMinBytes int    `toml:"send_zc_min_bytes"` // smallest send that goes out zero-copy
}

// StorageConfig is the [storage] table: partition logs and their defaults.
type StorageConfig struct {
	DataDir                string        `toml:"data_dir"`
	SegmentBytes           int64         `toml:"segment_bytes"`
	SegmentMs              int64         `toml:"segment_ms"`
	IndexIntervalBytes     int           `toml:"index_interval_bytes"`
	RetentionMs            int64         `toml:"retention_ms"`    // -1: forever
	RetentionBytes         int64         `toml:"retention_bytes"` // -1: no limit
	Flush                  FlushPolicy   `toml:"flush"`
	FlushInterval          time.Duration `toml:"flush_interval"`
	ArchiveDir             string        `toml:"archive_dir"`   // "": no archive
	ArchiveAfter           time.Duration `toml:"archive_after"` // 0: never
	Preallocate            bool          `toml:"preallocate"`
	WritebackBytes         int64         `toml:"writeback_bytes"` // 0: off
	AllocateNext           bool          `toml:"allocate_next"`
	RetentionCheckInterval time.Duration `toml:"retention_check_interval"`
	ProducerIdleExpiry     time.Duration `toml:"producer_idle_expiry"`
}

// TopicsConfig is the [topics] table: how topics come to exist.
type TopicsConfig struct {
	DefaultPartitions int  `toml:"default_partitions"`
	AutoCreate        bool `toml:"auto_create"`
}

// LogConfig is the [log] table: the server's slog logger.
type LogConfig struct {
	Level  slog.Level `toml:"level"`
	Format LogFormat  `toml:"format"`
}

const (
	kib = 1 << 10
	mib = 1 << 20
	day = 24 * 60 * 60 * 1000 // milliseconds
)

// Default returns the built-in configuration; it is what the embedded
// DefaultTOML decodes to (a test keeps the two equal).
func Default() Config {
	return Config{
		Server: ServerConfig{
			Listen:                 "127.0.0.1:9400",
			MetricsListen:          "127.0.0.1:9401",
			MaxConnections:         10000,
			MaxFrameBytes:          16 * mib,
			ConnMaxUnansweredBytes: 64 * mib,
			ShutdownTimeout:        10 * time.Second,
			MaxBufferedBytes:       1 << 30,
			FetchMaxBytes:          64 * mib,
			FetchMaxWait:           30 * time.Second,
			FetchColdReadBytes:     4 * mib,
			FrameTimeout:           30 * time.Second,
			IdleTimeout:            10 * time.Minute,
			TLS:                    TLSOff,
			TLSHandshakeTimeout:    defaultTLSHandshakeTimeout,
			KTLS:                   KTLSAuto,
			SASL:                   SASLOff,
			Authorization:          Off,
			Superusers:             []string{},
		},
		Reactor: ReactorConfig{
			RingEntries:    4096,
			RecvBufferSize: 64 * kib,
			RecvBuffers:    256,
			PinThreads:     true,
			SendZC:         SendZCAuto,
			SendZCMinBytes: 16 * kib,
		},
		Storage: StorageConfig{
			DataDir:                "./data",
			SegmentBytes:           256 * mib,
			SegmentMs:              7 * day,
			IndexIntervalBytes:     4096,
			RetentionMs:            7 * day,
			RetentionBytes:         -1,
			Flush:                  FlushInterval,
			FlushInterval:          time.Second,
			Preallocate:            false,
			WritebackBytes:         0,
			AllocateNext:           true,
			RetentionCheckInterval: 30 * time.Second,
			ProducerIdleExpiry:     24 * time.Hour,
		},
		Topics: TopicsConfig{DefaultPartitions: 1},
		Log:    LogConfig{Level: slog.LevelInfo, Format: LogText},
		Cluster: ClusterConfig{
			NodeID: 1, ReplicationFactor: 1, MinInsyncReplicas: 1,
			SessionTimeout: 3 * time.Second, ElectionTimeout: time.Second, ReplicaLagTime: 30 * time.Second,
			AutoPreferredLeader: true,
		},
		Groups: defaultGroups(),
	}
}

// NumReactors is the number of reactors to run: Cores, or the number of
// CPUs when Cores is 0.
func (r ReactorConfig) NumReactors() int {
	if r.Cores > 0 {
		return r.Cores
	}
	return runtime.NumCPU()
}

// TopicDefaults is the TopicConfig every topic starts from: the storage
// settings that a topic may override, all set.
func (s StorageConfig) TopicDefaults() TopicConfig {
	return TopicConfig{
		RetentionMs:    s.RetentionMs,
		RetentionBytes: s.RetentionBytes,
		SegmentBytes:   s.SegmentBytes,
		Flush:          s.Flush,
	}
}
