package config

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files under testdata/")

func TestParseTopicOverrides(t *testing.T) {
	tests := []struct {
		kv   map[string]string
		want TopicConfig
		err  string // whole error text; "" for success
		is   error
	}{
		{kv: nil, want: TopicConfig{}},
		{kv: map[string]string{"retention_ms": "-1", "retention_bytes": "1073741824",
			"segment_bytes": "1048576", "flush": "sync"},
			want: TopicConfig{RetentionMs: -1, RetentionBytes: 1 << 30, SegmentBytes: 1 << 20, Flush: FlushSync}},
		{kv: map[string]string{"flush": "interval"}, want: TopicConfig{Flush: FlushInterval}},
		{kv: map[string]string{"retention": "1"}, err: `unknown key "retention"`, is: ErrUnknownKey},
		{kv: map[string]string{"flush": "sync", "segment.ms": "1"}, err: `unknown key "segment.ms"`, is: ErrUnknownKey},
		{kv: map[string]string{"retention_ms": "7d"}, err: `retention_ms = "7d": want a decimal integer`, is: ErrInvalid},
		{kv: map[string]string{"retention_ms": ""}, err: `retention_ms = "": want a decimal integer`, is: ErrInvalid},
		{kv: map[string]string{"retention_ms": "0"}, err: `retention_ms = 0: must be -1 (forever) or more than 0`, is: ErrInvalid},
		{kv: map[string]string{"retention_ms": "-5"}, err: `retention_ms = -5: must be -1 (forever) or more than 0`, is: ErrInvalid},
		{kv: map[string]string{"retention_bytes": "0"}, err: `retention_bytes = 0: must be -1 (no limit) or more than 0`, is: ErrInvalid},
		{kv: map[string]string{"segment_bytes": "10"}, err: `segment_bytes = 10: must be from 1024 to 2147483647`, is: ErrInvalid},
		{kv: map[string]string{"segment_bytes": "99999999999999999999"}, err: `segment_bytes = "99999999999999999999": want a decimal integer`, is: ErrInvalid},
		{kv: map[string]string{"flush": "never"}, err: `flush = "never": want "interval" or "sync"`, is: ErrInvalid},
		// Keys are checked in sorted order: "flush" before "retention_ms".
		{kv: map[string]string{"retention_ms": "0", "flush": "x"}, err: `flush = "x": want "interval" or "sync"`, is: ErrInvalid},
	}
	for _, tt := range tests {
		got, err := ParseTopicOverrides(tt.kv)
		if tt.err == "" {
			if err != nil || got != tt.want {
				t.Errorf("ParseTopicOverrides(%v) = %+v, %v; want %+v", tt.kv, got, err, tt.want)
			}
			if back, err := ParseTopicOverrides(got.Overrides()); err != nil || back != got {
				t.Errorf("Overrides round trip of %+v = %+v, %v", got, back, err)
			}
			continue
		}
		if err == nil || err.Error() != tt.err || !errors.Is(err, tt.is) {
			t.Errorf("ParseTopicOverrides(%v) = %v; want %q (%v)", tt.kv, err, tt.err, tt.is)
		}
	}
}

func TestTopicResolve(t *testing.T) {
	defaults := Default().Storage.TopicDefaults()
	if got := (TopicConfig{}).Resolve(defaults); got != defaults {
		t.Errorf("empty overrides resolve to %+v, want %+v", got, defaults)
	}
	over := TopicConfig{RetentionBytes: 5000, Flush: FlushSync}
	want := defaults
	want.RetentionBytes, want.Flush = 5000, FlushSync
	if got := over.Resolve(defaults); got != want {
		t.Errorf("Resolve = %+v, want %+v", got, want)
	}
	if err := want.Validate(); err != nil {
		t.Errorf("resolved config invalid: %v", err)
	}
}

func sampleTopicConfigs() []TopicConfig {
	return []TopicConfig{
		{},
		{RetentionMs: -1, RetentionBytes: -1, SegmentBytes: MaxSegmentBytes, Flush: FlushSync},
		{RetentionMs: 604800000, SegmentBytes: MinSegmentBytes, Flush: FlushInterval},
		{RetentionBytes: 1 << 40},
	}
}

func TestTopicConfigRoundTrip(t *testing.T) {
	for _, tc := range sampleTopicConfigs() {
		enc := AppendTopicConfig([]byte("prefix"), tc)
		if string(enc[:6]) != "prefix" || len(enc) != 6+topicConfigV1Size {
			t.Fatalf("AppendTopicConfig did not append %d bytes: %x", topicConfigV1Size, enc)
		}
		got, rest, err := ParseTopicConfig(append(enc[6:], "tail"...))
		if err != nil || got != tc || string(rest) != "tail" {
			t.Errorf("ParseTopicConfig(Append(%+v)) = %+v, %q, %v", tc, got, rest, err)
		}
	}
}

func TestParseTopicConfigErrors(t *testing.T) {
	valid := AppendTopicConfig(nil, TopicConfig{Flush: FlushSync})
	withByte := func(i int, b byte) []byte {
		c := bytes.Clone(valid)
		c[i] = b
		return c
	}
	tests := []struct {
		name string
		src  []byte
		want string
	}{
		{"empty", nil, "config: corrupt topic config encoding: empty"},
		{"version 0", withByte(0, 0), "config: corrupt topic config encoding: version 0"},
		{"version 2", withByte(0, 2), "config: corrupt topic config encoding: version 2"},
		{"short", valid[:25], "config: corrupt topic config encoding: 25 bytes, want 26"},
		{"flush 3", withByte(25, 3), `config: corrupt topic config encoding: flush = unknown(3): want "interval" or "sync"`},
		{"segment_bytes 1", withByte(17, 1), "config: corrupt topic config encoding: segment_bytes = 1: must be from 1024 to 2147483647"},
		{"retention_ms -2", withNegTwo(valid), "config: corrupt topic config encoding: retention_ms = -2: must be -1 (forever) or more than 0"},
	}
	for _, tt := range tests {
		_, rest, err := ParseTopicConfig(tt.src)
		if err == nil || err.Error() != tt.want || !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: ParseTopicConfig(%x) = %v; want %q", tt.name, tt.src, err, tt.want)
		}
		if !bytes.Equal(rest, tt.src) {
			t.Errorf("%s: rest after an error = %x, want the input", tt.name, rest)
		}
	}
}

// withNegTwo returns src with retention_ms set to -2.
func withNegTwo(src []byte) []byte {
	c := bytes.Clone(src)
	c[1] = 0xfe
	for i := 2; i < 9; i++ {
		c[i] = 0xff
	}
	return c
}

// The golden file holds the encodings written by the current version; a
// change that would misread data already stored fails here. Regenerate with
// go test ./config/ -run Golden -rewrite (only for a new version).
func TestTopicConfigGolden(t *testing.T) {
	path := filepath.Join("testdata", "topic_config_v1.hex")
	samples := sampleTopicConfigs()
	if *rewrite {
		var b strings.Builder
		b.WriteString("# TopicConfig encodings, version 1: one per line, see topic.go.\n")
		b.WriteString("# version | retention_ms | retention_bytes | segment_bytes | flush\n")
		for _, tc := range samples {
			enc := AppendTopicConfig(nil, tc)
			fmt.Fprintf(&b, "# %+v\n%x %x %x %x %x\n", tc, enc[:1], enc[1:9], enc[9:17], enc[17:25], enc[25:])
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lines := readHexLines(t, path)
	if len(lines) != len(samples) {
		t.Fatalf("%s has %d encodings, want %d", path, len(lines), len(samples))
	}
	for i, enc := range lines {
		got, rest, err := ParseTopicConfig(enc)
		if err != nil || got != samples[i] || len(rest) != 0 {
			t.Errorf("line %d: ParseTopicConfig = %+v, %x, %v; want %+v", i, got, rest, err, samples[i])
		}
		if again := AppendTopicConfig(nil, got); !bytes.Equal(again, enc) {
			t.Errorf("line %d: encoding changed:\n file %x\n  now %x", i, enc, again)
		}
	}
}

// readHexLines reads a file of hex lines; '#' starts a comment and spaces
// are ignored.
func readHexLines(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.ReplaceAll(line, " ", "")
		if line == "" {
			continue
		}
		b, err := hex.DecodeString(line)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, b)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// FuzzParseTopicConfig: no input panics, and whatever parses re-encodes to
// the bytes it was read from.
func FuzzParseTopicConfig(f *testing.F) {
	for _, tc := range sampleTopicConfigs() {
		f.Add(AppendTopicConfig(nil, tc))
	}
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, src []byte) {
		tc, rest, err := ParseTopicConfig(src)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		used := len(src) - len(rest)
		if enc := AppendTopicConfig(nil, tc); !bytes.Equal(enc, src[:used]) {
			t.Fatalf("re-encoding %+v = %x, read from %x", tc, enc, src[:used])
		}
	})
}

// TestTopicKafkaSpelling: Kafka's dotted names of the topic keys are
// accepted as the same settings; giving both spellings of one key is an
// error, as is an unknown key in either spelling.
func TestTopicKafkaSpelling(t *testing.T) {
	got, err := ParseTopicOverrides(map[string]string{"retention.ms": "60000", "retention.bytes": "1048576", "segment.bytes": "2097152"})
	want := TopicConfig{RetentionMs: 60000, RetentionBytes: 1 << 20, SegmentBytes: 2 << 20}
	if err != nil || got != want {
		t.Fatalf("dotted keys: %+v, %v; want %+v", got, err, want)
	}
	if _, err := ParseTopicOverrides(map[string]string{"retention.ms": "1", "retention_ms": "2"}); err == nil ||
		!strings.Contains(err.Error(), "retention_ms") {
		t.Fatalf("both spellings: %v", err)
	}
	if _, err := ParseTopicOverrides(map[string]string{"retention.hours": "1"}); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown dotted key: %v", err)
	}
	for in, want := range map[string]string{"segment.bytes": "segment_bytes", "flush": "flush", "retention_ms": "retention_ms"} {
		if k, ok := TopicKey(in); !ok || k != want {
			t.Errorf("TopicKey(%q) = %q, %v; want %q", in, k, ok, want)
		}
	}
	if _, ok := TopicKey("nope"); ok {
		t.Error("TopicKey(nope) accepted")
	}
}
