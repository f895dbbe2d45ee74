package driver

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "go.etcd.io/raft/v3/raftpb"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata/*.golden from the current encoders")

func goldenEntry() *pb.Entry {
	return &pb.Entry{Index: new(uint64(300)), Term: new(uint64(7)), Type: pb.EntryNormal.Enum(),
		Data: []byte("cmd")}
}

func goldenHardState() *pb.HardState {
	return &pb.HardState{Term: new(uint64(7)), Vote: new(uint64(2)), Commit: new(uint64(299))}
}

func goldenSnapshot() *pb.Snapshot {
	return &pb.Snapshot{Data: []byte("state"), Metadata: &pb.SnapshotMetadata{
		Index: new(uint64(250)), Term: new(uint64(6)), ConfState: &pb.ConfState{Voters: []uint64{1, 2, 3}}}}
}

// The on-disk frames never change: testdata/frames.golden holds them as
// written by this version (hex, one frame a line after its comment).
func TestFramesGolden(t *testing.T) {
	frames := []struct {
		name string
		b    []byte
	}{
		{"entry index=300 term=7 type=normal data=cmd", AppendEntry(nil, goldenEntry())},
		{"hardstate term=7 vote=2 commit=299", AppendHardState(nil, goldenHardState())},
		{"snapshot index=250 term=6 voters=1,2,3 data=state", AppendSnapshot(nil, goldenSnapshot())},
	}
	var want bytes.Buffer
	want.WriteString("# controller driver frames: length u32le, crc32c u32le, version, kind, uvarint fields\n")
	for _, f := range frames {
		want.WriteString("# " + f.name + "\n" + hex.EncodeToString(f.b) + "\n")
	}
	path := filepath.Join("testdata", "frames.golden")
	if *rewrite {
		if err := os.WriteFile(path, want.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("frames changed (persisted format):\n got %s\nwant %s", want.Bytes(), got)
	}
	// The checked-in bytes decode to the values.
	var lines [][]byte
	for _, l := range strings.Split(string(got), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			b, err := hex.DecodeString(l)
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, b)
		}
	}
	e, _, err := ParseEntry(lines[0])
	if err != nil || !proto.Equal(e, goldenEntry()) {
		t.Errorf("ParseEntry = %v, %v", e, err)
	}
	hs, _, err := ParseHardState(lines[1])
	if err != nil || !proto.Equal(hs, goldenHardState()) {
		t.Errorf("ParseHardState = %v, %v", hs, err)
	}
	s, _, err := ParseSnapshot(lines[2])
	if err != nil || !proto.Equal(s, goldenSnapshot()) {
		t.Errorf("ParseSnapshot = %v, %v", s, err)
	}
}

// Every cut of a frame is torn; every flipped byte is corrupt; nothing
// panics or reads past the frame.
func TestFrameDamage(t *testing.T) {
	b := AppendEntry(nil, goldenEntry())
	for n := range len(b) {
		if _, _, err := ParseEntry(b[:n]); !errors.Is(err, errTorn) && !errors.Is(err, ErrCorrupt) {
			t.Errorf("cut at %d: err = %v", n, err)
		}
	}
	for i := range b {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			c := bytes.Clone(b)
			c[i] ^= x
			e, _, err := ParseEntry(c)
			if err == nil {
				t.Errorf("byte %d ^ %#x: decoded %v", i, x, e)
			}
		}
	}
	if _, _, err := ParseHardState(b); !errors.Is(err, ErrCorrupt) {
		t.Errorf("entry parsed as hard state: %v", err)
	}
}

func FuzzParseEntry(f *testing.F) {
	f.Add(AppendEntry(nil, goldenEntry()))
	f.Add(AppendSnapshot(nil, goldenSnapshot()))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, rest, err := ParseEntry(b)
		if err != nil {
			return
		}
		if len(rest) > len(b) {
			t.Fatal("rest longer than input")
		}
		again := AppendEntry(nil, e)
		if !bytes.Equal(again, b[:len(b)-len(rest)]) {
			t.Fatalf("re-encoding differs: %x vs %x", again, b[:len(b)-len(rest)])
		}
	})
}
