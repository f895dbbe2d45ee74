package storage

import (
	"testing"

	"github.com/ringmq/ringmq/config"
)

// TestDefaultLogConfigMatchesServer: DefaultLogConfig is documented as the
// defaults of the server configuration, so a program embedding storage
// gets what a server with an empty config file does.
func TestDefaultLogConfigMatchesServer(t *testing.T) {
	sc := config.Default().Storage
	want := LogConfig{
		SegmentBytes:       sc.SegmentBytes,
		SegmentMs:          sc.SegmentMs,
		IndexIntervalBytes: sc.IndexIntervalBytes,
		RetentionMs:        sc.RetentionMs,
		RetentionBytes:     sc.RetentionBytes,
		ArchiveAfter:       sc.ArchiveAfter,
		Preallocate:        sc.Preallocate,
		WritebackBytes:     sc.WritebackBytes,
		AllocateNext:       sc.AllocateNext,
	}
	if got := DefaultLogConfig(); got != want {
		t.Fatalf("DefaultLogConfig() = %+v\nserver defaults give %+v", got, want)
	}
}
