package replica

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "regenerate the golden files under testdata")

const goldenSnapshotPath = "testdata/producer_snapshot_v1.hex"

// goldenSnapshot covers a producer with five batches (the ring wrapped), one
// whose last batch wraps its sequence, and the largest id and epoch.
func goldenSnapshot() ProducerSnapshot {
	var s ProducerState
	lb := func(id int64, epoch int16, seq, count int32, base uint64, ts int64) {
		b := LogBatch{ProducerBatch: pb(id, epoch, seq, count, ts), BaseOffset: base, LastOffset: base + uint64(count) - 1}
		if err := s.Replay(b); err != nil {
			panic(err)
		}
	}
	lb(NoProducer, 0, 0, 10, 0, 1_700_000_000_000)
	for i := int32(0); i < 6; i++ {
		lb(42, 3, 10*i, 10, 10+10*uint64(i), 1_700_000_000_100+int64(i))
	}
	lb(7, 0, math.MaxInt32-1, 3, 70, 1_700_000_001_000)
	lb(math.MaxInt64, math.MaxInt16, 0, 1, 73, 1_700_000_002_000)
	return s.Snapshot()
}

func TestGoldenProducerSnapshot(t *testing.T) {
	snap := goldenSnapshot()
	enc := AppendProducerSnapshot(nil, &snap)
	want := renderSnapshotHex(enc)
	if *rewrite {
		if err := os.WriteFile(goldenSnapshotPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text, err := os.ReadFile(goldenSnapshotPath)
	if err != nil {
		t.Fatal(err)
	}
	data, err := parseHex(string(text))
	if err != nil {
		t.Fatal(err)
	}
	got, rest, err := ParseProducerSnapshot(data)
	if err != nil || len(rest) != 0 {
		t.Fatalf("parse %s: %v (%d bytes left)", goldenSnapshotPath, err, len(rest))
	}
	if !reflect.DeepEqual(got, snap) {
		t.Fatalf("%s decodes to\n%+v\nwant\n%+v", goldenSnapshotPath, got, snap)
	}
	if !bytes.Equal(data, enc) {
		t.Fatalf("AppendProducerSnapshot output differs from %s: the snapshot format must not change "+
			"(a new layout needs a new ProducerSnapshotVersion and a new golden file)", goldenSnapshotPath)
	}
	if string(text) != want {
		t.Fatalf("%s comments are stale: regenerate with go test ./replica -run TestGoldenProducerSnapshot -rewrite", goldenSnapshotPath)
	}
	// The restored state answers as the one that wrote it.
	var s ProducerState
	must(t, s.Restore(&got, got.Offset))
	if _, err := s.Check(pb(42, 3, 60, 1, 0)); err != nil {
		t.Fatalf("next batch of producer 42 after restore: %v", err)
	}
	if dup, err := s.Check(pb(42, 3, 10, 10, 0)); err != nil || dup != (Duplicate{Found: true, Base: 20, Last: 29}) {
		t.Fatalf("retry of producer 42's oldest remembered batch: %+v %v", dup, err)
	}
	if _, err := s.Check(pb(7, 0, 1, 1, 0)); err != nil {
		t.Fatalf("producer 7 after its wrapped batch: %v", err)
	}
}

// renderSnapshotHex writes an encoded snapshot as commented hex, one
// field a line.
func renderSnapshotHex(b []byte) string {
	var sb strings.Builder
	pos := 0
	field := func(n int, format string, args ...any) {
		fmt.Fprintf(&sb, "%-32s # %s\n", hex.EncodeToString(b[pos:pos+n]), fmt.Sprintf(format, args...))
		pos += n
	}
	u := func(n int) uint64 {
		var v [8]byte
		copy(v[:], b[pos:pos+n])
		return binary.LittleEndian.Uint64(v[:])
	}
	sb.WriteString("# ringmq producer snapshot, version 1 (layout: replica/producer_snapshot.go).\n" +
		"# Written by AppendProducerSnapshot; regenerate with: go test ./replica -run TestGoldenProducerSnapshot -rewrite\n" +
		"# Never edit by hand: TestGoldenProducerSnapshot reads these bytes with the current decoder.\n")
	field(8, "magic %q", b[pos:pos+8])
	field(4, "crc32c %#08x over the rest", u(4))
	field(1, "version %d", u(1))
	field(4, "body_length %d", u(4))
	field(8, "offset %d", u(8))
	np := int(u(4))
	field(4, "producer_count %d", np)
	for i := 0; i < np; i++ {
		fmt.Fprintf(&sb, "# producer %d\n", i)
		field(8, "producer_id %d", int64(u(8)))
		field(2, "epoch %d", int16(u(2)))
		nb := int(u(1))
		field(1, "batch_count %d", nb)
		for j := 0; j < nb; j++ {
			field(4, "batch %d first_seq %d", j, int32(u(4)))
			field(4, "batch %d last_seq %d", j, int32(u(4)))
			field(8, "batch %d base_offset %d", j, u(8))
			field(8, "batch %d last_offset %d", j, u(8))
			field(8, "batch %d max_timestamp %d", j, int64(u(8)))
		}
	}
	return sb.String()
}

// parseHex reads the hex of each line up to its '#' comment.
func parseHex(text string) ([]byte, error) {
	var out []byte
	for i, line := range strings.Split(text, "\n") {
		if c := strings.IndexByte(line, '#'); c >= 0 {
			line = line[:c]
		}
		b, err := hex.DecodeString(strings.TrimSpace(line))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		out = append(out, b...)
	}
	return out, nil
}

// Every prefix of a snapshot, and every single-byte change, is refused
// with a classified error (never a panic, never a wrong state).
func TestParseProducerSnapshotRefusesDamage(t *testing.T) {
	snap := goldenSnapshot()
	enc := AppendProducerSnapshot(nil, &snap)
	for n := 0; n < len(enc); n++ {
		if _, _, err := ParseProducerSnapshot(enc[:n]); !errors.Is(err, ErrSnapshotCorrupt) {
			t.Fatalf("%d of %d bytes: %v, want ErrSnapshotCorrupt", n, len(enc), err)
		}
	}
	for i := range enc {
		bad := bytes.Clone(enc)
		bad[i] ^= 0x10
		_, _, err := ParseProducerSnapshot(bad)
		if !errors.Is(err, ErrSnapshotCorrupt) && !(i == snapOffVersion && errors.Is(err, ErrSnapshotVersion)) {
			t.Fatalf("byte %d changed: %v, want ErrSnapshotCorrupt", i, err)
		}
	}
	// Trailing bytes are the caller's.
	got, rest, err := ParseProducerSnapshot(append(bytes.Clone(enc), 1, 2, 3))
	if err != nil || !bytes.Equal(rest, []byte{1, 2, 3}) || !reflect.DeepEqual(got, snap) {
		t.Fatalf("snapshot followed by 3 bytes: %v, rest %x", err, rest)
	}
	// Contents that break the rules are refused even with a good CRC.
	for name, mutate := range map[string]func(*ProducerSnapshot){
		"ids out of order":  func(s *ProducerSnapshot) { s.Producers[0], s.Producers[1] = s.Producers[1], s.Producers[0] },
		"batch past offset": func(s *ProducerSnapshot) { s.Offset = 70 },
		"negative epoch":    func(s *ProducerSnapshot) { s.Producers[0].Epoch = -1 },
		"no batches":        func(s *ProducerSnapshot) { s.Producers[0].Batches = nil },
		"six batches": func(s *ProducerSnapshot) {
			s.Producers[1].Batches = append(s.Producers[1].Batches, s.Producers[1].Batches[0])
		},
		"batches out of order": func(s *ProducerSnapshot) {
			b := s.Producers[1].Batches
			b[0], b[1] = b[1], b[0]
		},
	} {
		s := goldenSnapshot()
		mutate(&s)
		if _, _, err := ParseProducerSnapshot(AppendProducerSnapshot(nil, &s)); !errors.Is(err, ErrSnapshotCorrupt) {
			t.Errorf("%s: %v, want ErrSnapshotCorrupt", name, err)
		}
		if err := new(ProducerState).Restore(&s, math.MaxUint64); !errors.Is(err, ErrSnapshotCorrupt) {
			t.Errorf("%s: Restore: %v, want ErrSnapshotCorrupt", name, err)
		}
	}
}

// An empty state round-trips.
func TestProducerSnapshotEmpty(t *testing.T) {
	var s ProducerState
	snap := s.Snapshot()
	got, _, err := ParseProducerSnapshot(AppendProducerSnapshot(nil, &snap))
	if err != nil || got.Offset != 0 || len(got.Producers) != 0 {
		t.Fatalf("empty snapshot: %+v %v", got, err)
	}
}

// FuzzParseProducerSnapshot: no input panics; what parses re-encodes to
// the same bytes and restores.
func FuzzParseProducerSnapshot(f *testing.F) {
	snap := goldenSnapshot()
	f.Add(AppendProducerSnapshot(nil, &snap))
	f.Add([]byte(producerSnapshotMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, rest, err := ParseProducerSnapshot(b)
		if err != nil {
			if !errors.Is(err, ErrSnapshotCorrupt) && !errors.Is(err, ErrSnapshotVersion) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if enc := AppendProducerSnapshot(nil, &s); !bytes.Equal(enc, b[:len(b)-len(rest)]) {
			t.Fatalf("re-encoding differs")
		}
		var st ProducerState
		if err := st.Restore(&s, s.Offset); err != nil {
			t.Fatalf("restore of a parsed snapshot: %v", err)
		}
	})
}
