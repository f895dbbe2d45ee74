package metalog

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringmq/ringmq/config"
)

const goldenTopic = "testdata/golden/topic-v1.hex"

// goldenTopicRecord is the record testdata/golden/topic-v1.hex holds,
// spelled out here rather than derived from the encoder.
var goldenTopicRecord = TopicRecord{Partitions: 12, Overrides: config.TopicConfig{
	RetentionMs: 3_600_000, RetentionBytes: 1 << 30, SegmentBytes: 1 << 20, Flush: config.FlushSync}}

// TestTopicRecordGolden: the current encoder writes exactly the checked-in
// record, and the parser reads it back. Regenerate with -rewrite.
func TestTopicRecordGolden(t *testing.T) {
	enc := AppendTopicRecord([]byte{0xee}, goldenTopicRecord)[1:]
	if *rewrite {
		var out strings.Builder
		out.WriteString("# Topic record version 1 (see topic.go), written by AppendTopicRecord.\n")
		out.WriteString("# Regenerate: go test ./storage/metalog/ -run TestTopicRecordGolden -rewrite\n")
		for _, f := range []struct {
			n    int
			name string
		}{{1, "version"}, {4, "partitions u32 = 12"}, {1, "overrides: TopicConfig version"},
			{8, "retention_ms i64 = 3600000"}, {8, "retention_bytes i64 = 1 GiB"},
			{8, "segment_bytes i64 = 1 MiB"}, {1, "flush = 2 (sync)"}} {
			fmt.Fprintf(&out, "%-20x # %s\n", enc[:f.n], f.name)
			enc = enc[f.n:]
		}
		writeFile(t, goldenTopic, []byte(out.String()))
		enc = AppendTopicRecord(nil, goldenTopicRecord)
	}
	golden := readHex(t, goldenTopic)
	if !bytes.Equal(enc, golden) {
		t.Fatalf("topic record encoding changed:\n got  %x\n want %x", enc, golden)
	}
	r, rest, err := ParseTopicRecord(append(golden, 7))
	if err != nil || r != goldenTopicRecord || !bytes.Equal(rest, []byte{7}) {
		t.Fatalf("ParseTopicRecord(golden) = %+v, %x, %v", r, rest, err)
	}
}

// TestTopicRecordWrittenByOldServer reads the topic record a server wrote
// before the format had a home (storage/testdata/v1data: topic "v1", 2
// partitions, segment_bytes 4096).
func TestTopicRecordWrittenByOldServer(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, logPath(dir), readFile(t, filepath.Join("..", "testdata", "v1data", "datadir", "meta", logName)))
	s := mustOpen(t, dir, Options{})
	defer mustClose(t, s)
	topics := s.Topics()
	if len(topics) != 1 || topics[0].Name != "v1" {
		t.Fatalf("topics %q, want one named v1", topics)
	}
	r, rest, err := ParseTopicRecord(topics[0].Config)
	want := TopicRecord{Partitions: 2, Overrides: config.TopicConfig{SegmentBytes: 4096}}
	if err != nil || r != want || len(rest) != 0 {
		t.Fatalf("ParseTopicRecord = %+v, %x, %v; want %+v", r, rest, err, want)
	}
}

// TestTopicRecordDamage: every truncation, an unknown version, zero
// partitions and bad overrides are errors, never a topic.
func TestTopicRecordDamage(t *testing.T) {
	good := AppendTopicRecord(nil, goldenTopicRecord)
	for n := range len(good) {
		if _, _, err := ParseTopicRecord(good[:n]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("truncated to %d bytes: %v, want ErrCorrupt", n, err)
		}
	}
	mod := func(i int, v byte) []byte { b := bytes.Clone(good); b[i] = v; return b }
	for name, c := range map[string]struct {
		b    []byte
		want error
	}{
		"version 2":          {mod(0, 2), ErrVersion},
		"zero partitions":    {AppendTopicRecord(nil, TopicRecord{Overrides: goldenTopicRecord.Overrides}), ErrCorrupt},
		"overrides version":  {mod(5, 9), ErrCorrupt},
		"flush out of range": {mod(len(good)-1, 9), ErrCorrupt},
	} {
		if _, _, err := ParseTopicRecord(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

// FuzzTopicRecord: ParseTopicRecord never panics, and what it accepts is
// canonical: encoding the result gives back the bytes it consumed.
func FuzzTopicRecord(f *testing.F) {
	f.Add(AppendTopicRecord(nil, goldenTopicRecord))
	f.Add(AppendTopicRecord(nil, TopicRecord{Partitions: 1}))
	f.Add([]byte{1, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, src []byte) {
		r, rest, err := ParseTopicRecord(src)
		if err != nil {
			return
		}
		used := src[:len(src)-len(rest)]
		if enc := AppendTopicRecord(nil, r); !bytes.Equal(enc, used) {
			t.Fatalf("ParseTopicRecord(%x) = %+v, which encodes to %x", used, r, enc)
		}
	})
}
