package storage

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringmq/ringmq/storage/vfs"
)

var rewrite = flag.Bool("rewrite", false, "rewrite golden files under testdata/")

// goldenCheckpoint is the value testdata/checkpoint-v1.hex encodes.
var goldenCheckpoint = Checkpoint{RecoveryPoint: 123456789, SegmentBase: 123000000, SegmentPos: 4096000,
	MaxTimestamp: 1700000000123, MaxTimestampRel: 456789, Clean: true}

// writeHex writes b as commented hex, one field per line.
func writeHex(path string, b []byte, fields []struct {
	n    int
	name string
}) error {
	var sb strings.Builder
	sb.WriteString("# Checkpoint version 1, written by AppendCheckpoint; regenerate with: go test ./storage -run Golden -args -rewrite\n")
	for _, f := range fields {
		fmt.Fprintf(&sb, "%-40s # %s\n", hex.EncodeToString(b[:f.n]), f.name)
		b = b[f.n:]
	}
	return os.WriteFile(path, []byte(sb.String()), 0o644)
}

func readHex(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		b, err := hex.DecodeString(strings.TrimSpace(line))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, b...)
	}
	return out
}

func TestCheckpointGolden(t *testing.T) {
	path := filepath.Join("testdata", "checkpoint-v1.hex")
	enc := AppendCheckpoint(nil, &goldenCheckpoint)
	if *rewrite {
		fields := []struct {
			n    int
			name string
		}{{4, "magic RMQK"}, {1, "version"}, {1, "flags (clean)"}, {2, "body length"},
			{8, "recovery point"}, {8, "segment base"}, {8, "segment position"}, {8, "max timestamp"},
			{4, "max timestamp relative offset"}, {4, "crc32c"}}
		if err := writeHex(path, enc, fields); err != nil {
			t.Fatal(err)
		}
	}
	golden := readHex(t, path)
	if !bytes.Equal(enc, golden) {
		t.Fatalf("encoding changed:\n got %x\nwant %x", enc, golden)
	}
	c, rest, err := ParseCheckpoint(append(golden, 7))
	if err != nil || c != goldenCheckpoint || !bytes.Equal(rest, []byte{7}) {
		t.Fatalf("ParseCheckpoint(golden) = %+v, %x, %v", c, rest, err)
	}
}

func TestCheckpointDamageIsCorrupt(t *testing.T) {
	good := AppendCheckpoint(nil, &Checkpoint{RecoveryPoint: 5, MaxTimestamp: math.MinInt64})
	for i := range good {
		for _, bit := range []byte{1, 0x80} {
			b := bytes.Clone(good)
			b[i] ^= bit
			if _, _, err := ParseCheckpoint(b); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("flipping bit %#x of byte %d: %v", bit, i, err)
			}
		}
	}
	for n := range len(good) {
		if _, _, err := ParseCheckpoint(good[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%d-byte checkpoint: %v", n, err)
		}
	}
}

func TestWriteCheckpointAsyncPersistsTheFlushedPoint(t *testing.T) {
	_, l := createTestLog(t, testConfig())
	d := &SyncDriver{}
	rng := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 20; i++ {
		mustAppend(t, d, l, randomBatch(rng, 10, 100, 1000))
	}
	if err := d.Flush(l); err != nil {
		t.Fatal(err)
	}
	l.WriteCheckpointAsync()
	l.ckpt.Wait()
	c, found, err := readCheckpoint(vfs.OS, l.dir)
	if err != nil || !found {
		t.Fatalf("checkpoint after WriteCheckpointAsync: found %v, err %v", found, err)
	}
	if c != l.rp {
		t.Fatalf("checkpoint %+v, want the flushed point %+v", c, l.rp)
	}
	if c.RecoveryPoint != l.LogEnd() {
		t.Fatalf("checkpoint recovery point %d, want the log end %d", c.RecoveryPoint, l.LogEnd())
	}
}
