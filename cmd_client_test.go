package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

func TestFlagsAfterArguments(t *testing.T) {
	fs := newFlagSet("test", "ringmq test A B")
	n := fs.Int("n", 0, "")
	s := fs.String("s", "", "")
	pos, err := fs.parse([]string{"a", "-n", "3", "b", "--s=x", "--", "-c", "d"}, 1, -1)
	if err != nil || *n != 3 || *s != "x" || !slices.Equal(pos, []string{"a", "b", "-c", "d"}) {
		t.Fatalf("parse: %v, n=%d s=%q, positional %q", err, *n, *s, pos)
	}
	for _, tt := range []struct {
		args     []string
		min, max int
		want     string
	}{
		{[]string{"--bogus"}, 0, 0, "test: flag provided but not defined: -bogus (ringmq test -h lists the flags)"},
		{nil, 1, 1, "test: missing arguments; usage: ringmq test A B"},
		{[]string{"a", "b"}, 1, 1, `test: unexpected argument "b"; usage: ringmq test A B`},
		{[]string{"-n", "x"}, 0, 0, `test: invalid value "x" for flag -n: parse error (ringmq test -h lists the flags)`},
	} {
		fs := newFlagSet("test", "ringmq test A B")
		fs.Int("n", 0, "")
		if _, err := fs.parse(tt.args, tt.min, tt.max); err == nil || err.Error() != tt.want {
			t.Errorf("parse(%q) = %v, want %q", tt.args, err, tt.want)
		}
	}
}

func TestParseConsumeAndProduceFlags(t *testing.T) {
	o, err := parseConsumeFlags([]string{"t", "--from", "@1700000000000", "-n", "5", "--group", "g", "--format", "json"}, time.Now())
	if err != nil || o.topic != "t" || o.limit != 5 || o.group != "g" || !o.json ||
		o.from != client.StartAtTime(time.UnixMilli(1700000000000)) || o.partition != -1 {
		t.Fatalf("parseConsumeFlags: %+v, %v", o, err)
	}
	for _, bad := range [][]string{
		{"t", "--from", "soon"}, {"t", "--from", "@-1"}, {"t", "-n", "-1"}, {"t", "--group", "a/b"},
		{"t", "--format", "xml"}, {"t", "u"}, {},
	} {
		if _, err := parseConsumeFlags(bad, time.Now()); err == nil {
			t.Errorf("parseConsumeFlags(%q) accepted", bad)
		}
	}
	p, err := parseProduceFlags([]string{"t", "--acks", "all", "--key-separator", ":", "--partition", "2"})
	if err != nil || p.acks != proto.AcksAll || p.keySep != ":" || p.partition != 2 {
		t.Fatalf("parseProduceFlags: %+v, %v", p, err)
	}
	if _, err := parseProduceFlags([]string{"t", "--acks", "2"}); err == nil {
		t.Error("--acks 2 accepted")
	}
}

func TestDescribeErr(t *testing.T) {
	// As client.Conn.CreateTopic reports a refusal.
	refusal := fmt.Errorf("client: %v %q: %w: %s", proto.APICreateTopic, "t", proto.TopicExists, `topic "t" already exists`)
	err := describeErr(`topic create "t"`, refusal)
	if want := `topic create "t": topic "t" already exists (TOPIC_EXISTS)`; err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
	if err := describeErr("x", proto.UnknownTopic); err.Error() != "x: no such topic (UNKNOWN_TOPIC)" {
		t.Errorf("got %q", err)
	}
	if err := describeErr("x", client.ErrConnectionLost); err.Error() != "x: lost the connection to the server" {
		t.Errorf("got %q", err)
	}
}

// TestAppendJSONString checks the hand-written JSON encoder against
// encoding/json on random byte strings, invalid UTF-8 and controls
// included.
func TestAppendJSONString(t *testing.T) {
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 3))
	alphabet := []byte("a\"\\\n\r\t\x00\x1f\x7f/<>&é€\xff\xc3\xe2\x82 ")
	for range 2000 {
		b := make([]byte, rng.IntN(24))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		enc := appendJSONString(nil, b)
		var got string
		if err := json.Unmarshal(enc, &got); err != nil {
			t.Fatalf("seed %d: %q encodes to invalid JSON %s: %v", seed, b, enc, err)
		}
		want := strings.ToValidUTF8(string(b), "\uFFFD")
		if !utf8.ValidString(string(b)) {
			var ref string
			std, _ := json.Marshal(string(b))
			json.Unmarshal(std, &ref)
			want = ref
		}
		if got != want {
			t.Fatalf("seed %d: %q round-trips to %q, want %q", seed, b, got, want)
		}
	}
}

func TestAppendJSONRecord(t *testing.T) {
	r := client.Record{Topic: "t", Partition: 2, Offset: 9, Timestamp: time.UnixMilli(1700000000123),
		Value: []byte("v\n"), Headers: []client.Header{{Key: "h", Value: []byte("x")}, {Key: "h", Value: nil}}}
	want := `{"topic":"t","partition":2,"offset":9,"timestamp":1700000000123,"key":null,"value":"v\n","headers":[{"key":"h","value":"x"},{"key":"h","value":null}]}`
	if got := string(appendJSONRecord(nil, &r, encText)); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
