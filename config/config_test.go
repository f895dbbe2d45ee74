package config

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

func TestDefaultTOMLDecodesToDefault(t *testing.T) {
	got, err := Parse(DefaultTOML())
	if err != nil {
		t.Fatalf("Parse(default.toml): %v", err)
	}
	if !reflect.DeepEqual(got, Default()) {
		t.Fatalf("default.toml and Default() differ:\n file: %+v\n code: %+v", got, Default())
	}
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
}

// The repository's config.toml (what `make run` serves with) is a copy of
// the embedded default.
func TestRepoConfigIsDefaultCopy(t *testing.T) {
	repo, err := os.ReadFile(filepath.Join("..", "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(repo, DefaultTOML()) {
		t.Fatal("config.toml differs from config/default.toml; copy config/default.toml over config.toml")
	}
}

// Every setting appears in default.toml, right after a comment line that
// documents it, and the file holds nothing else.
func TestDefaultTOMLDocumentsEveryKey(t *testing.T) {
	var doc map[string]any
	md, err := toml.Decode(string(DefaultTOML()), &doc)
	if err != nil {
		t.Fatal(err)
	}
	var inFile []string
	for _, k := range md.Keys() {
		if len(k) == 2 {
			inFile = append(inFile, k.String())
		}
	}
	if want := Keys(); !slices.Equal(inFile, want) {
		t.Fatalf("keys in default.toml:\n %v\nsettings in Config:\n %v", inFile, want)
	}
	prev := ""
	sc := bufio.NewScanner(bytes.NewReader(DefaultTOML()))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "[") &&
			!strings.HasPrefix(prev, "#") {
			t.Errorf("setting %q has no comment line above it", line)
		}
		prev = line
	}
}

func TestKeysAreUnique(t *testing.T) {
	keys := Keys()
	if len(keys) != 71 {
		t.Errorf("len(Keys()) = %d, want 71 (a setting was added or lost)", len(keys))
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k] {
			t.Errorf("duplicate key %q", k)
		}
		seen[k] = true
	}
}

func TestParseKeepsDefaultsAndSetsValues(t *testing.T) {
	const file = `
[server]
metrics_listen = ""
shutdown_timeout = "1m30s"
[reactor]
cores = 4
send_zc = "off"
pin_threads = false
[storage]
data_dir = "/var/lib/ringmq"
flush = "sync"
retention_ms = -1
archive_dir = "cold"
archive_after = "72h"
[topics]
auto_create = true
[log]
level = "DEBUG"
format = "json"
`
	got, err := Parse([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Server.MetricsListen = ""
	want.Server.ShutdownTimeout = 90 * time.Second
	want.Reactor.Cores = 4
	want.Reactor.SendZC = SendZCOff
	want.Reactor.PinThreads = false
	want.Storage.DataDir = "/var/lib/ringmq"
	want.Storage.Flush = FlushSync
	want.Storage.RetentionMs = -1
	want.Storage.ArchiveDir = "cold"
	want.Storage.ArchiveAfter = 72 * time.Hour
	want.Topics.AutoCreate = true
	want.Log = LogConfig{Level: slog.LevelDebug, Format: LogJSON}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Parse:\n got %+v\nwant %+v", got, want)
	}
	if got.Reactor.NumReactors() != 4 {
		t.Errorf("NumReactors() = %d, want 4", got.Reactor.NumReactors())
	}
	if n := Default().Reactor.NumReactors(); n < 1 {
		t.Errorf("NumReactors() with cores = 0 is %d", n)
	}
}

func TestParseEmptyIsDefault(t *testing.T) {
	got, err := Parse(nil)
	if err != nil || !reflect.DeepEqual(got, Default()) {
		t.Fatalf("Parse(nil) = %+v, %v; want Default()", got, err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		file string
		want string // the whole error text
		is   error
	}{
		// Unknown keys.
		{"[server]\nlisen = \"x\"", `unknown key "server.lisen"`, ErrUnknownKey},
		{"[srv]\nlisten = \"x\"", `unknown key "srv"`, ErrUnknownKey},
		{"listen = \"x\"", `unknown key "listen"`, ErrUnknownKey},
		{"[server.listen]\nport = 1", `server.listen = {...}: want a string`, ErrInvalid},
		{"server = 1", `server = 1: want a table [server]`, ErrInvalid},
		{"[[server]]\nlisten = \"x\"", `server = [...]: want a table [server]`, ErrInvalid},
		// Syntax.
		{"[server]\nlisten = ", `line 2: unexpected EOF; expected value`, ErrSyntax},
		{"[server]\nlisten = \"a\"\nlisten = \"b\"", `line 3: Key 'server.listen' has already been defined.`, ErrSyntax},
		// Types.
		{"[reactor]\ncores = \"four\"", `reactor.cores = "four": want an integer`, ErrInvalid},
		{"[reactor]\ncores = 1.5", `reactor.cores = 1.5: want an integer`, ErrInvalid},
		{"[reactor]\npin_threads = 1", `reactor.pin_threads = 1: want true or false`, ErrInvalid},
		{"[storage]\ndata_dir = 7", `storage.data_dir = 7: want a string`, ErrInvalid},
		{"[storage]\nsegment_bytes = \"1GiB\"", `storage.segment_bytes = "1GiB": want an integer`, ErrInvalid},
		{"[server]\nshutdown_timeout = 10", `server.shutdown_timeout = 10: want a duration such as "500ms", "10s" or "1h30m"`, ErrInvalid},
		{"[server]\nshutdown_timeout = \"5q\"", `server.shutdown_timeout = "5q": want a duration such as "500ms", "10s" or "1h30m"`, ErrInvalid},
		{"[storage]\nflush = \"sometimes\"", `storage.flush = "sometimes": want "interval" or "sync"`, ErrInvalid},
		{"[storage]\nflush = 1", `storage.flush = 1: want a string`, ErrInvalid},
		{"[reactor]\nsend_zc = \"maybe\"", `reactor.send_zc = "maybe": want "auto", "on" or "off"`, ErrInvalid},
		{"[reactor]\nsend_zc_min_bytes = -1", `reactor.send_zc_min_bytes = -1: must be 0 or more`, ErrInvalid},
		{"[log]\nformat = \"xml\"", `log.format = "xml": want "text" or "json"`, ErrInvalid},
		{"[log]\nlevel = \"verbose\"", `log.level = "verbose": want "debug", "info", "warn" or "error"`, ErrInvalid},
		{"[log]\nlevel = 0", `log.level = 0: want "debug", "info", "warn" or "error"`, ErrInvalid},
		// Ranges: [server].
		{"[server]\nlisten = \"localhost\"", `server.listen = "localhost": want host:port, such as "127.0.0.1:9400"`, ErrInvalid},
		{"[server]\nlisten = \"\"", `server.listen = "": want host:port, such as "127.0.0.1:9400"`, ErrInvalid},
		{"[server]\nlisten = \"127.0.0.1:99999\"", `server.listen = "127.0.0.1:99999": want host:port, such as "127.0.0.1:9400"`, ErrInvalid},
		{"[server]\nmetrics_listen = \"9401\"", `server.metrics_listen = "9401": want host:port, or "" for no metrics server`, ErrInvalid},
		{"[server]\nmax_connections = 0", `server.max_connections = 0: must be at least 1`, ErrInvalid},
		{"[server]\nmax_frame_bytes = 100", `server.max_frame_bytes = 100: must be from 1024 to 1073741824`, ErrInvalid},
		{"[server]\nmax_frame_bytes = 2147483648", `server.max_frame_bytes = 2147483648: must be from 1024 to 1073741824`, ErrInvalid},
		{"[server]\nconn_max_unanswered_bytes = 1024", `server.conn_max_unanswered_bytes = 1024: must be at least server.max_frame_bytes (16777216)`, ErrInvalid},
		{"[server]\nshutdown_timeout = \"0s\"", `server.shutdown_timeout = "0s": must be more than 0`, ErrInvalid},
		{"[server]\nshutdown_timeout = \"-1s\"", `server.shutdown_timeout = "-1s": must be more than 0`, ErrInvalid},
		{"[server]\nmax_buffered_bytes = 1048576", `server.max_buffered_bytes = 1048576: must be at least server.conn_max_unanswered_bytes (67108864)`, ErrInvalid},
		{"[server]\nfetch_max_bytes = 100", `server.fetch_max_bytes = 100: must be from 4096 to 1073741824`, ErrInvalid},
		{"[server]\nfetch_max_bytes = 2147483648", `server.fetch_max_bytes = 2147483648: must be from 4096 to 1073741824`, ErrInvalid},
		{"[server]\nfetch_max_wait = \"0s\"", `server.fetch_max_wait = "0s": must be more than 0`, ErrInvalid},
		{"[server]\nfetch_cold_read_bytes = 134217728", `server.fetch_cold_read_bytes = 134217728: must be from 4096 to server.fetch_max_bytes (67108864)`, ErrInvalid},
		{"[server]\nframe_timeout = \"0s\"", `server.frame_timeout = "0s": must be more than 0`, ErrInvalid},
		{"[server]\nidle_timeout = \"-1s\"", `server.idle_timeout = "-1s": must be more than 0`, ErrInvalid},
		// [reactor].
		{"[reactor]\ncores = -1", `reactor.cores = -1: must be from 0 (one reactor per CPU) to 1024`, ErrInvalid},
		{"[reactor]\ncores = 1025", `reactor.cores = 1025: must be from 0 (one reactor per CPU) to 1024`, ErrInvalid},
		{"[reactor]\nring_entries = 1000", `reactor.ring_entries = 1000: must be a power of two from 8 to 32768`, ErrInvalid},
		{"[reactor]\nring_entries = 4", `reactor.ring_entries = 4: must be a power of two from 8 to 32768`, ErrInvalid},
		{"[reactor]\nring_entries = 65536", `reactor.ring_entries = 65536: must be a power of two from 8 to 32768`, ErrInvalid},
		{"[reactor]\nrecv_buffer_size = 512", `reactor.recv_buffer_size = 512: must be from 1024 to 16777216`, ErrInvalid},
		{"[reactor]\nrecv_buffers = 0", `reactor.recv_buffers = 0: must be a power of two from 1 to 32768`, ErrInvalid},
		{"[reactor]\nrecv_buffers = 300", `reactor.recv_buffers = 300: must be a power of two from 1 to 32768`, ErrInvalid},
		// [storage].
		{"[storage]\ndata_dir = \"\"", `storage.data_dir = "": must not be empty`, ErrInvalid},
		{"[storage]\nsegment_bytes = 100", `storage.segment_bytes = 100: must be from 1024 to 2147483647`, ErrInvalid},
		{"[storage]\nsegment_bytes = 2147483648", `storage.segment_bytes = 2147483648: must be from 1024 to 2147483647`, ErrInvalid},
		{"[storage]\nsegment_ms = 0", `storage.segment_ms = 0: must be at least 1`, ErrInvalid},
		{"[storage]\nindex_interval_bytes = -1", `storage.index_interval_bytes = -1: must be 0 (every batch) or more`, ErrInvalid},
		{"[storage]\nretention_ms = 0", `storage.retention_ms = 0: must be -1 (forever) or more than 0`, ErrInvalid},
		{"[storage]\nretention_ms = -2", `storage.retention_ms = -2: must be -1 (forever) or more than 0`, ErrInvalid},
		{"[storage]\nretention_bytes = 0", `storage.retention_bytes = 0: must be -1 (no limit) or more than 0`, ErrInvalid},
		{"[storage]\nflush_interval = \"0s\"", `storage.flush_interval = "0s": must be more than 0`, ErrInvalid},
		{"[storage]\narchive_after = \"-1m\"", `storage.archive_after = "-1m0s": must be "0s" (never) or more`, ErrInvalid},
		{"[storage]\narchive_after = \"1h\"", `storage.archive_after = "1h0m0s": needs storage.archive_dir`, ErrInvalid},
		{"[storage]\nretention_check_interval = \"0s\"", `storage.retention_check_interval = "0s": must be more than 0`, ErrInvalid},
		// [topics].
		{"[topics]\ndefault_partitions = 0", `topics.default_partitions = 0: must be from 1 to 100000`, ErrInvalid},
		{"[topics]\ndefault_partitions = 100001", `topics.default_partitions = 100001: must be from 1 to 100000`, ErrInvalid},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.file))
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want %q", tt.file, tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("Parse(%q):\n got %q\nwant %q", tt.file, err, tt.want)
		}
		if !errors.Is(err, tt.is) {
			t.Errorf("Parse(%q) = %v, not %v", tt.file, err, tt.is)
		}
	}
}

func TestValidateHandBuilt(t *testing.T) {
	if err := (Config{}).Validate(); err == nil || !strings.HasPrefix(err.Error(), "server.listen") {
		t.Errorf("zero Config: Validate() = %v, want the server.listen error first", err)
	}
	c := Default()
	c.Storage.Flush = FlushUnset
	if err := c.Validate(); err == nil || err.Error() != `storage.flush = unset: want "interval" or "sync"` {
		t.Errorf("flush unset: Validate() = %v", err)
	}
	c = Default()
	c.Log.Format = 9
	if err := c.Validate(); err == nil || err.Error() != `log.format = unknown(9): want "text" or "json"` {
		t.Errorf("format 9: Validate() = %v", err)
	}
	var ke *KeyError
	if err := c.Validate(); !errors.As(err, &ke) || ke.Key != "log.format" {
		t.Errorf("Validate() = %v, want a *KeyError for log.format", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.toml")
	if _, err := Load(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[reactor]\ncores = -1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(bad)
	if want := bad + ": reactor.cores = -1: must be from 0 (one reactor per CPU) to 1024"; err == nil || err.Error() != want {
		t.Errorf("Load(bad) = %v, want %q", err, want)
	}
	good := filepath.Join(dir, "good.toml")
	if err := os.WriteFile(good, []byte("[storage]\ndata_dir = \"d\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(good)
	if err != nil || cfg.Storage.DataDir != "d" || !reflect.DeepEqual(cfg.Server, Default().Server) {
		t.Errorf("Load(good) = %+v, %v", cfg, err)
	}
}

func TestEnumText(t *testing.T) {
	for _, tt := range []struct {
		v    interface{ MarshalText() ([]byte, error) }
		want string
	}{
		{FlushInterval, "interval"}, {FlushSync, "sync"},
		{SendZCAuto, "auto"}, {SendZCOn, "on"}, {SendZCOff, "off"},
		{LogText, "text"}, {LogJSON, "json"},
	} {
		b, err := tt.v.MarshalText()
		if err != nil || string(b) != tt.want {
			t.Errorf("%v.MarshalText() = %q, %v; want %q", tt.v, b, err, tt.want)
		}
	}
	if _, err := FlushUnset.MarshalText(); err == nil {
		t.Error("FlushUnset.MarshalText() succeeded")
	}
	if s := FlushPolicy(7).String(); s != "unknown(7)" {
		t.Errorf("FlushPolicy(7).String() = %q", s)
	}
}
