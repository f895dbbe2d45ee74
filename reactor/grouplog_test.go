package reactor

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/group"
)

var rewriteGroupLog = flag.Bool("rewrite_grouplog", false, "rewrite testdata/grouplog.hex")

const goldenGroupLog = "testdata/grouplog.hex"

// groupLogTurns are two group commits: a failover group with a member and
// two commits, then the member leaving and one commit moving.
func groupLogTurns() [][]group.Record {
	return [][]group.Record{{
		{Kind: group.KindGroup, Group: "billing", Type: group.TypeFailover, Epoch: 1},
		{Kind: group.KindMember, Group: "billing", Member: group.MemberRecord{ID: "5f0c2a9e", ClientID: "billing-1",
			Addr: "127.0.0.1:50312", Topics: []string{"orders"}, SessionTimeout: 10 * time.Second, Epoch: 1,
			Owned:  []group.OwnedPartition{{TopicPartition: group.TopicPartition{Topic: "orders", Partition: 0}, Since: 1}},
			Target: []group.TopicPartition{{Topic: "orders", Partition: 0}}}},
		{Kind: group.KindCommit, Group: "billing", TopicPartition: group.TopicPartition{Topic: "orders", Partition: 0},
			Commit: group.Commit{Offset: 20000}},
	}, {
		{Kind: group.KindGroup, Group: "billing", Type: group.TypeFailover, Epoch: 2},
		{Kind: group.KindMember, Tombstone: true, Group: "billing", Member: group.MemberRecord{ID: "5f0c2a9e"}},
		{Kind: group.KindCommit, Group: "billing", TopicPartition: group.TopicPartition{Topic: "orders", Partition: 0},
			Commit: group.Commit{Offset: 33622, Metadata: "host-a"}},
	}}
}

func writeGroupLog(t *testing.T, path string) {
	t.Helper()
	l, recs, err := openGroupLog(path)
	if err != nil || len(recs) != 0 {
		t.Fatalf("open a new log: %v %v", recs, err)
	}
	for _, turn := range groupLogTurns() {
		if err := l.append(turn); err != nil {
			t.Fatal(err)
		}
	}
	l.close()
}

// TestGroupLogGolden: the file the current code writes is the checked-in
// one, and it reads back as the records appended. Regenerate (only for a
// new format version) with -rewrite_grouplog.
func TestGroupLogGolden(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.log")
	writeGroupLog(t, path)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if *rewriteGroupLog {
		var b strings.Builder
		b.WriteString("# __consumer_offsets partition log (see grouplog.go): header, then group.AppendRecord frames.\n")
		b.WriteString("# Regenerate: go test ./reactor/ -run TestGroupLogGolden -rewrite_grouplog\n")
		fmt.Fprintf(&b, "# header\n%x\n", data[:len(groupLogHeader)])
		rest := data[len(groupLogHeader):]
		for len(rest) > 0 {
			r, next, err := group.ParseRecord(rest)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "# %s tombstone=%v\n%x\n", r.Kind, r.Tombstone, rest[:len(rest)-len(next)])
			rest = next
		}
		if err := os.WriteFile(goldenGroupLog, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden := readGroupLogHex(t)
	if !bytes.Equal(golden, data) {
		t.Fatalf("group log differs from %s:\n got  %x\n want %x", goldenGroupLog, data, golden)
	}
	recs, n, err := parseGroupLog(golden)
	want := append(groupLogTurns()[0], groupLogTurns()[1]...)
	if err != nil || n != int64(len(golden)) || !reflect.DeepEqual(recs, want) {
		t.Fatalf("golden log reads as %+v (%d bytes, %v)", recs, n, err)
	}
}

func readGroupLogHex(t *testing.T) []byte {
	t.Helper()
	text, err := os.ReadFile(goldenGroupLog)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, line := range strings.Split(string(text), "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		b, err := hex.DecodeString(line)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

// A log cut anywhere inside its last frame opens with the frames before
// it (a torn append) and is truncated there; a flipped byte in an
// earlier frame refuses to open.
func TestGroupLogTornTailAndCorruption(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.log")
	writeGroupLog(t, path)
	full, _ := os.ReadFile(path)
	all := append(groupLogTurns()[0], groupLogTurns()[1]...)
	lastStart := len(full) - len(group.AppendRecord(nil, &all[len(all)-1]))
	for cut := lastStart + 1; cut < len(full); cut++ {
		if err := os.WriteFile(path, full[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		l, recs, err := openGroupLog(path)
		if err != nil || !reflect.DeepEqual(recs, all[:len(all)-1]) {
			t.Fatalf("cut at %d: %d records, %v", cut, len(recs), err)
		}
		l.close()
		if fi, _ := os.Stat(path); fi.Size() != int64(lastStart) {
			t.Fatalf("cut at %d: file not truncated to %d (size %d)", cut, lastStart, fi.Size())
		}
	}
	bad := bytes.Clone(full)
	bad[len(groupLogHeader)+12] ^= 0x40
	if err := os.WriteFile(path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := openGroupLog(path); !errors.Is(err, group.ErrCorrupt) {
		t.Fatalf("corrupt frame: %v", err)
	}
	if err := os.WriteFile(path, []byte("not a group log"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := openGroupLog(path); !errors.Is(err, group.ErrCorrupt) {
		t.Fatalf("bad magic: %v", err)
	}
}

// Compaction keeps the file within max(limit, 2 × live state): commits
// to the same few keys, many times over, never grow it past that, and the
// compacted file restores the same state.
func TestGroupLogCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.log")
	l, _, err := openGroupLog(path)
	if err != nil {
		t.Fatal(err)
	}
	c := group.New(group.Config{})
	c.SetTopic("t", 4)
	const limit = 16 << 10
	maxSize, compactions := int64(0), 0
	for i := 0; i < 3000; i++ {
		if err := c.Commit("g", "", 0, "t", uint32(i%4), uint64(i), ""); err != nil {
			t.Fatal(err)
		}
		if err := l.append(c.Ready().Records); err != nil {
			t.Fatal(err)
		}
		c.Advance()
		if l.needsCompaction(limit) {
			if err := l.compact(c.Records()); err != nil {
				t.Fatal(err)
			}
			compactions++
		}
		maxSize = max(maxSize, l.size)
	}
	l.close()
	if compactions == 0 || maxSize > limit+1024 {
		t.Fatalf("%d compactions, largest file %d bytes (limit %d)", compactions, maxSize, limit)
	}
	_, recs, err := openGroupLog(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := group.Restore(group.Config{}, map[string]uint32{"t": 4}, recs, 0)
	if err != nil || !reflect.DeepEqual(r.Records(), c.Records()) {
		t.Fatalf("restored state differs: %v", err)
	}
	t.Logf("%d compactions; file at most %d bytes", compactions, maxSize)
}
