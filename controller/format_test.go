package controller

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/ringmq/ringmq/acl"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files under testdata")

const (
	goldenCommands = "testdata/commands.hex"
	goldenSnapshot = "testdata/snapshot.hex"
)

// goldenHistory is a fixed sequence of commands, one of each type.
func goldenHistory() []Command {
	return []Command{
		{Type: CmdRegisterBroker, Proposer: 1, Request: 7, Broker: 1, Addr: "127.0.0.1:9400", LogsIntact: true},
		{Type: CmdRegisterBroker, Proposer: 1, Request: 8, Broker: 2, Addr: "127.0.0.1:9410"},
		{Type: CmdRegisterBroker, Proposer: 2, Request: 1, Broker: 3, Addr: "127.0.0.1:9420"},
		{Type: CmdCreateTopic, Proposer: 3, Request: 2, Topic: "orders", Partitions: 3, Replicas: 2,
			Configs: []ConfigEntry{{"flush", "sync"}, {"retention_ms", "86400000"}}},
		{Type: CmdCreateTopic, Proposer: 3, Request: 3, Topic: "tmp", Partitions: 1, Replicas: 1},
		{Type: CmdShrinkISR, Proposer: 1, Topic: "orders", Partition: 0, PartitionEpoch: 0, Broker: 2},
		{Type: CmdExpandISR, Proposer: 1, Topic: "orders", Partition: 0, PartitionEpoch: 1, Broker: 2, BrokerEpoch: 2},
		{Type: CmdFenceBroker, Proposer: 2, Broker: 3, BrokerEpoch: 3},
		{Type: CmdElectLeader, Proposer: 2, Topic: "orders", Partition: 0, PartitionEpoch: 2, Broker: 2},
		{Type: CmdDeleteTopic, Proposer: 1, Request: 9, Topic: "tmp"},
		{Type: CmdAlterTopic, Proposer: 2, Request: 4, Topic: "orders", Configs: []ConfigEntry{{"retention_ms", "3600000"}}},
		{Type: CmdAddPartitions, Proposer: 3, Request: 5, Topic: "orders", Partitions: 5, Replicas: 2},
		{Type: CmdUpsertUser, Proposer: 1, Request: 10, User: "alice", Credential: goldenCredential(ScramSHA256, 1)},
		{Type: CmdUpsertUser, Proposer: 1, Request: 11, User: "bob", Credential: goldenCredential(ScramSHA512, 2)},
		{Type: CmdCreateACLs, Proposer: 2, Request: 6, ACLs: []acl.Entry{
			{Principal: "User:alice", Resource: acl.ResourceTopic, Pattern: acl.PatternPrefixed, Name: "orders", Operation: acl.OpWrite, Permission: acl.Allow},
			{Principal: "User:bob", Resource: acl.ResourceGroup, Pattern: acl.PatternLiteral, Name: "*", Operation: acl.OpRead, Permission: acl.Allow},
			{Principal: "*", Resource: acl.ResourceTopic, Pattern: acl.PatternLiteral, Name: "secret", Operation: acl.OpAll, Permission: acl.Deny},
		}},
		{Type: CmdDeleteACLs, Proposer: 3, Request: 7, ACLs: []acl.Entry{
			{Principal: "User:bob", Resource: acl.ResourceGroup, Pattern: acl.PatternLiteral, Name: "*", Operation: acl.OpRead, Permission: acl.Allow},
		}},
		{Type: CmdDeleteUser, Proposer: 2, Request: 8, User: "bob"},
	}
}

// goldenCredential is a fixed credential whose bytes are derived from seed.
func goldenCredential(m Mechanism, seed byte) Credential {
	key := func(k byte) []byte { return bytes.Repeat([]byte{seed<<4 | k}, m.KeyLen()) }
	return Credential{Mechanism: m, Salt: bytes.Repeat([]byte{seed}, 16), Iterations: 4096, StoredKey: key(1), ServerKey: key(2)}
}

// TestGolden checks that the current code writes exactly the checked-in
// bytes, and that they decode to the commands and state they were written
// from. Regenerate with -rewrite (only for a new format version).
func TestGolden(t *testing.T) {
	var log []byte
	var comments []string
	s := NewState(0)
	for i, c := range goldenHistory() {
		comments = append(comments, fmt.Sprintf("index %d: %s %+v", i+1, c.Type, c))
		log = AppendCommand(log, c)
		if err := s.Apply(uint64(i+1), c); err != nil {
			t.Fatalf("golden command %d (%s): %v", i+1, c.Type, err)
		}
	}
	snap := AppendSnapshot(nil, s)
	if *rewrite {
		writeHex(t, goldenCommands, "commands, one frame each", log, comments)
		writeHex(t, goldenSnapshot, "snapshot of the state after those commands", snap,
			[]string{fmt.Sprintf("brokers %+v topics %q", s.Brokers(), s.TopicNames())})
	}
	if g := readHex(t, goldenCommands); !bytes.Equal(g, log) {
		t.Errorf("command bytes differ from %s:\n got  %x\n want %x", goldenCommands, log, g)
	}
	if g := readHex(t, goldenSnapshot); !bytes.Equal(g, snap) {
		t.Errorf("snapshot bytes differ from %s:\n got  %x\n want %x", goldenSnapshot, snap, g)
	}

	rest := readHex(t, goldenCommands)
	for i, want := range goldenHistory() {
		var got Command
		var err error
		got, rest, err = ParseCommand(rest)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("golden command %d: %+v, %v; want %+v", i+1, got, err, want)
		}
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes after the golden commands", len(rest))
	}
	got, _, err := ParseSnapshot(readHex(t, goldenSnapshot))
	if err != nil {
		t.Fatal(err)
	}
	// Spelled out, not derived from the writer.
	if b, _ := got.Broker(3); got.Applied() != 17 || b.Alive || b.Epoch != 3 || b.Addr != "127.0.0.1:9420" {
		t.Errorf("broker 3 %+v applied %d", b, got.Applied())
	}
	orders, ok := got.Topic("orders")
	if !ok || len(orders.Partitions) != 5 || len(orders.Configs) != 1 || orders.Configs[0].Value != "3600000" {
		t.Fatalf("topic orders %+v", orders)
	}
	// Added while broker 3 was fenced: on the alive brokers 1 and 2.
	if p := orders.Partitions[4]; p.Leader != 2 || !reflect.DeepEqual(p.Replicas, []int32{2, 1}) {
		t.Errorf("orders/4 %+v, want replicas [2 1] led by 2", p)
	}
	if p := orders.Partitions[0]; p.Leader != 2 || p.LeaderEpoch != 1 || p.PartitionEpoch != 3 {
		t.Errorf("orders/0 %+v, want leader 2, leader epoch 1, partition epoch 3", p)
	}
	if _, ok := got.Topic("tmp"); ok {
		t.Error("deleted topic tmp is in the snapshot")
	}
	users := got.Users()
	if len(users) != 1 || users[0].Name != "alice" || len(users[0].Credentials) != 1 ||
		users[0].Credentials[0].Mechanism != ScramSHA256 || users[0].Credentials[0].Iterations != 4096 {
		t.Errorf("users %+v, want alice with one SCRAM-SHA-256 credential (bob deleted)", users)
	}
	if acls := got.ACLs(); len(acls) != 2 || acls[0].Principal != "User:alice" || acls[1].Permission != acl.Deny {
		t.Errorf("acls %v, want alice's allow and the deny of secret", acls)
	}
}

// TestSnapshotBeforeUsers checks that a snapshot written before users and
// ACLs existed still decodes, to a state without them, and re-encodes to
// the same bytes.
func TestSnapshotBeforeUsers(t *testing.T) {
	old := readHex(t, "testdata/snapshot-before-users.hex")
	s, rest, err := ParseSnapshot(old)
	if err != nil || len(rest) != 0 {
		t.Fatalf("%v, %d bytes left", err, len(rest))
	}
	if len(s.Users()) != 0 || len(s.ACLs()) != 0 || s.Applied() != 12 {
		t.Fatalf("users %v acls %v applied %d", s.Users(), s.ACLs(), s.Applied())
	}
	if again := AppendSnapshot(nil, s); !bytes.Equal(again, old) {
		t.Fatalf("re-encoded\n %x\nwant\n %x", again, old)
	}
}

func writeHex(t *testing.T, path, title string, b []byte, comments []string) {
	var out strings.Builder
	fmt.Fprintf(&out, "# %s (see doc.go). Regenerate: go test ./controller/ -run TestGolden -rewrite\n", title)
	for i, off := 0, 0; off < len(b); i++ {
		n := frameHeaderSize + int(binary.LittleEndian.Uint32(b[off:]))
		if i < len(comments) {
			fmt.Fprintf(&out, "# @%d %s\n", off, comments[i])
		}
		fmt.Fprintf(&out, "%x\n", b[off:off+n])
		off += n
	}
	if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readHex reads a file written by writeHex: '#' starts a comment, the rest
// is hex digits and white space.
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

// TestParseRejects checks that damaged frames give the right error and
// never panic: every truncation, every flipped byte, a wrong version, an
// unknown type, trailing fields.
func TestParseRejects(t *testing.T) {
	for _, c := range goldenHistory() {
		frame := AppendCommand(nil, c)
		for n := range len(frame) {
			if _, _, err := ParseCommand(frame[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s cut to %d bytes: %v, want ErrCorrupt", c.Type, n, err)
			}
		}
		for i := range frame {
			bad := bytes.Clone(frame)
			bad[i] ^= 0x40
			if _, _, err := ParseCommand(bad); err == nil {
				t.Fatalf("%s with byte %d flipped decoded", c.Type, i)
			}
		}
	}
	reframe := func(payload []byte) []byte {
		return appendFrame(nil, payload[1], func(b []byte) []byte { return append(b[:len(b)-2], payload...) })
	}
	good := AppendCommand(nil, goldenHistory()[0])[frameHeaderSize:]
	cases := []struct {
		name    string
		payload []byte
		want    error
	}{
		{"version 2", append([]byte{2}, good[1:]...), ErrVersion},
		{"unknown type", append([]byte{1, 99}, good[2:]...), ErrUnknownCommandType},
		{"snapshot type", append([]byte{1, snapshotType}, good[2:]...), ErrUnknownCommandType},
		{"trailing byte", append(bytes.Clone(good), 0), ErrCorrupt},
		{"bool 2", append(bytes.Clone(good[:len(good)-1]), 2), ErrCorrupt},
	}
	for _, tc := range cases {
		if _, _, err := ParseCommand(reframe(tc.payload)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestSnapshotRoundTrip checks that the state after the golden history,
// and after more changes, survives encode and decode, and that a snapshot
// breaking an invariant is refused.
func TestSnapshotRoundTrip(t *testing.T) {
	s := NewState(0)
	for i, c := range goldenHistory() {
		_ = s.Apply(uint64(i+1), c)
	}
	got, rest, err := ParseSnapshot(AppendSnapshot(nil, s))
	if err != nil || len(rest) != 0 || !got.Equal(s) {
		t.Fatalf("round trip: %v, %d bytes left, equal %v", err, len(rest), got.Equal(s))
	}
	s.topics["orders"].Partitions[1].Leader = 99 // not a broker, not in the ISR
	if _, _, err := ParseSnapshot(AppendSnapshot(nil, s)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("snapshot with a leader outside the ISR: %v, want ErrCorrupt", err)
	}
	if _, _, err := ParseSnapshot(AppendCommand(nil, goldenHistory()[0])); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("command parsed as a snapshot: %v", err)
	}
}

// FuzzParse feeds arbitrary payloads, framed with a correct length and
// CRC (so the fuzzer reaches the field decoders), and arbitrary raw bytes
// to both decoders: no panic, nothing read past the frame, and whatever
// decodes re-encodes to the same bytes.
func FuzzParse(f *testing.F) {
	s := NewState(0)
	for i, c := range goldenHistory() {
		f.Add(AppendCommand(nil, c)[frameHeaderSize:])
		_ = s.Apply(uint64(i+1), c)
	}
	f.Add(AppendSnapshot(nil, s)[frameHeaderSize:])
	f.Fuzz(func(t *testing.T, payload []byte) {
		framed := appendFrame(nil, 0, func(b []byte) []byte { return append(b[:len(b)-2], payload...) })
		for _, b := range [][]byte{framed, payload} {
			b = append(b, 0xee) // one byte after the frame: never consumed
			if c, rest, err := ParseCommand(b); err == nil {
				n := len(b) - len(rest)
				if again := AppendCommand(nil, c); !bytes.Equal(again, b[:n]) || len(rest) == 0 {
					t.Fatalf("re-encoded %x, read %x", again, b[:n])
				}
			}
			if st, rest, err := ParseSnapshot(b); err == nil {
				n := len(b) - len(rest)
				if again := AppendSnapshot(nil, st); !bytes.Equal(again, b[:n]) || len(rest) == 0 {
					t.Fatalf("re-encoded snapshot %x, read %x", again, b[:n])
				}
			}
		}
	})
}
