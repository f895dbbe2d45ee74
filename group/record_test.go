package group

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/group/ack"
	"github.com/ringmq/ringmq/proto"
)

const goldenRecords = "testdata/records.hex"

// goldenLog is a fixed sequence of records, every kind with and without a
// tombstone.
func goldenLog() []Record {
	return []Record{
		{Kind: KindGroup, Group: "orders-app", Type: TypeFailover, Epoch: 7},
		{Kind: KindGroup, Group: "audit", Type: TypeExclusive, Epoch: 1},
		{Kind: KindMember, Group: "orders-app", Member: MemberRecord{
			ID: "svc-a-3", ClientID: "svc-a", Addr: "127.0.0.1:50412", Topics: []string{"orders", "refunds"},
			SessionTimeout: 45 * time.Second, Epoch: 7,
			Owned:  []OwnedPartition{{TopicPartition{"orders", 0}, 3}, {TopicPartition{"orders", 2}, 7}},
			Target: []TopicPartition{{"orders", 0}, {"refunds", 0}},
		}},
		{Kind: KindMember, Group: "audit", Member: MemberRecord{ID: "member#1", SessionTimeout: 10 * time.Second, Epoch: 1, Topics: []string{"audit.log"}}},
		{Kind: KindCommit, Group: "orders-app", TopicPartition: TopicPartition{"orders", 2}, Commit: Commit{Offset: 33622, Metadata: "host=a"}},
		{Kind: KindCommit, Group: "audit", TopicPartition: TopicPartition{"audit.log", 0}, Commit: Commit{Offset: 1 << 40}},
		{Kind: KindMember, Tombstone: true, Group: "orders-app", Member: MemberRecord{ID: "svc-b#5"}},
		{Kind: KindCommit, Tombstone: true, Group: "audit", TopicPartition: TopicPartition{"audit.log", 0}},
		{Kind: KindGroup, Tombstone: true, Group: "old"},
		{Kind: KindGroup, Group: "workers", Type: TypeShared, Epoch: 3},
		{Kind: KindAck, Group: "workers", TopicPartition: TopicPartition{"jobs", 1}, Frames: goldenAckFrames()},
		{Kind: KindAck, Tombstone: true, Group: "workers", TopicPartition: TopicPartition{"jobs", 0}},
	}
}

// goldenAckFrames is an ack tracker's first Ready (a snapshot at floor
// 100) and a delta: offsets 100-102 acquired, 100 done.
func goldenAckFrames() []byte {
	tr, err := ack.New(ack.Config{Topic: "jobs", Partition: 1, AckTimeout: time.Second, MaxUnacked: 16}, 100)
	if err != nil {
		panic(err)
	}
	frames := append([]byte(nil), tr.Ready().Log...)
	tr.Advance()
	if _, err := tr.Acquire(nil, 1, time.Unix(1_700_000_000, 0), 3, 110, nil); err != nil {
		panic(err)
	}
	if err := tr.Ack(1, 100); err != nil {
		panic(err)
	}
	return append(frames, tr.Ready().Log...)
}

// TestGolden checks that the current code writes exactly the checked-in
// bytes, and that they decode to the records they were written from.
// Regenerate with -rewrite (only for a new format version).
func TestGolden(t *testing.T) {
	var log []byte
	var comments []string
	for _, r := range goldenLog() {
		comments = append(comments, fmt.Sprintf("%s tombstone=%v group=%q", r.Kind, r.Tombstone, r.Group))
		log = AppendRecord(log, &r)
	}
	if *rewrite {
		writeHex(t, goldenRecords, "group coordinator records, one frame each", log, comments)
	}
	golden := readHex(t, goldenRecords)
	if !bytes.Equal(golden, log) {
		t.Errorf("record bytes differ from %s:\n got  %x\n want %x", goldenRecords, log, golden)
	}
	rest := golden
	for i, want := range goldenLog() {
		var got Record
		var err error
		got, rest, err = ParseRecord(rest)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("golden record %d: %+v, %v; want %+v", i, got, err, want)
		}
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes after the golden records", len(rest))
	}
	// Spelled out, not derived from the writer: the first frame.
	first := "10000000" + // length 16: 3 + 1 + 10 + 2
		hex.EncodeToString(golden[4:8]) + // crc
		"01" + "01" + "00" + // version 1, kind group, no flags
		"0a" + hex.EncodeToString([]byte("orders-app")) +
		"01" + "07" // failover, epoch 7
	if got := hex.EncodeToString(golden[:8+16]); got != first {
		t.Errorf("first frame %s, want %s", got, first)
	}
}

func writeHex(t *testing.T, path, title string, b []byte, comments []string) {
	var out strings.Builder
	fmt.Fprintf(&out, "# %s (see doc.go). Regenerate: go test ./group/ -run TestGolden -rewrite\n", title)
	for i, off := 0, 0; off < len(b); i++ {
		n := frameHeaderSize + int(binary.LittleEndian.Uint32(b[off:]))
		fmt.Fprintf(&out, "# @%d %s\n%x\n", off, comments[i], b[off:off+n])
		off += n
	}
	if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readHex reads a file written by writeHex: '#' starts a comment.
func readHex(t *testing.T, path string) []byte {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var digits strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		line, _, _ = strings.Cut(line, "#")
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(digits.String())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

// reframe wraps a payload in a frame with a correct length and CRC.
func reframe(payload []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(payload)))
	b = binary.LittleEndian.AppendUint32(b, proto.CRC32C(payload))
	return append(b, payload...)
}

// TestParseRejects: a cut frame is ErrTruncated (a torn tail); a flipped
// byte, a wrong version or a bad field is an error, never a panic.
func TestParseRejects(t *testing.T) {
	for _, r := range goldenLog() {
		frame := AppendRecord(nil, &r)
		for n := range len(frame) {
			if _, _, err := ParseRecord(frame[:n]); !errors.Is(err, ErrTruncated) {
				t.Fatalf("%s cut to %d bytes: %v, want ErrTruncated", r.Kind, n, err)
			}
		}
		for i := range frame {
			bad := bytes.Clone(frame)
			bad[i] ^= 0x40
			if _, _, err := ParseRecord(bad); err == nil {
				t.Fatalf("%s with byte %d flipped decoded", r.Kind, i)
			}
		}
	}
	good := AppendRecord(nil, &goldenLog()[0])[frameHeaderSize:]
	cases := []struct {
		name    string
		payload []byte
		want    error
	}{
		{"version 2", append([]byte{2}, good[1:]...), ErrVersion},
		{"unknown kind", append([]byte{1, 9}, good[2:]...), ErrCorrupt},
		{"unknown flag", append([]byte{1, 1, 2}, good[3:]...), ErrCorrupt},
		{"trailing byte", append(bytes.Clone(good), 0), ErrCorrupt},
		{"type 0", append(bytes.Clone(good[:len(good)-2]), 0, 7), ErrCorrupt},
		{"bad group name", reframe([]byte{1, 1, 0, 3, 'a', '/', 'b', 1, 1})[frameHeaderSize:], ErrCorrupt},
	}
	for _, tc := range cases {
		if _, _, err := ParseRecord(reframe(tc.payload)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// A member claiming 2^31 topics in a short frame: refused without allocating them.
	m := AppendRecord(nil, &Record{Kind: KindMember, Group: "g", Member: MemberRecord{ID: "m"}})[frameHeaderSize:]
	m = append(m[:len(m)-3], 0x80, 0x80, 0x80, 0x80, 0x08, 0, 0)
	if _, _, err := ParseRecord(reframe(m)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("huge count: %v", err)
	}
}

// FuzzParseRecord: no panic, nothing read past the frame, and whatever
// decodes re-encodes to the same bytes.
func FuzzParseRecord(f *testing.F) {
	for _, r := range goldenLog() {
		f.Add(AppendRecord(nil, &r)[frameHeaderSize:])
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		for _, b := range [][]byte{reframe(payload), payload} {
			b = append(bytes.Clone(b), 0xee) // one byte after the frame: never consumed
			r, rest, err := ParseRecord(b)
			if err != nil {
				continue
			}
			n := len(b) - len(rest)
			if again := AppendRecord(nil, &r); !bytes.Equal(again, b[:n]) || len(rest) == 0 {
				t.Fatalf("re-encoded %x, read %x", again, b[:n])
			}
		}
	})
}

// TestCompact: the last record per key wins; tombstones go only when the
// input is the whole log.
func TestCompact(t *testing.T) {
	recs := []Record{
		{Kind: KindGroup, Group: "g", Type: TypeFailover, Epoch: 1},
		{Kind: KindCommit, Group: "g", TopicPartition: TopicPartition{"t", 0}, Commit: Commit{Offset: 1}},
		{Kind: KindCommit, Group: "g", TopicPartition: TopicPartition{"t", 1}, Commit: Commit{Offset: 9}},
		{Kind: KindCommit, Group: "g", TopicPartition: TopicPartition{"t", 0}, Commit: Commit{Offset: 2}},
		{Kind: KindCommit, Group: "g", TopicPartition: TopicPartition{"t", 1}, Tombstone: true},
		{Kind: KindGroup, Group: "g", Type: TypeFailover, Epoch: 2},
	}
	got := Compact(recs, false)
	if len(got) != 3 || got[0].Commit.Offset != 2 || !got[1].Tombstone || got[2].Epoch != 2 {
		t.Fatalf("compact (tail) %+v", got)
	}
	got = Compact(recs, true)
	if len(got) != 2 || got[0].Commit.Offset != 2 || got[1].Epoch != 2 {
		t.Fatalf("compact (whole log) %+v", got)
	}
	// Key separates kinds, groups and partitions.
	keys := map[string]bool{}
	for _, r := range []Record{
		{Kind: KindGroup, Group: "g"}, {Kind: KindMember, Group: "g", Member: MemberRecord{ID: "g"}},
		{Kind: KindCommit, Group: "g", TopicPartition: TopicPartition{"t", 1}},
		{Kind: KindCommit, Group: "g", TopicPartition: TopicPartition{"t", 10}},
		{Kind: KindCommit, Group: "g2", TopicPartition: TopicPartition{"t", 1}},
	} {
		keys[r.Key()] = true
	}
	if len(keys) != 5 {
		t.Fatalf("keys collide: %d distinct of 5", len(keys))
	}
}
