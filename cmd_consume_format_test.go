package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
)

func formatRecord() client.Record {
	return client.Record{Topic: "orders", Partition: 2, Offset: 17, Timestamp: time.UnixMilli(1700000000123),
		Key: []byte("user-1"), Value: []byte{'h', 'i', 0xff},
		Headers: []client.Header{{Key: "trace", Value: []byte("abc")}, {Key: "trace", Value: []byte("d")}}}
}

func TestFormatVerbs(t *testing.T) {
	r := formatRecord()
	for _, tt := range []struct {
		format string
		enc    encoding
		want   string
	}{
		{`%t/%p@%o %k=%v\n`, encText, "orders/2@17 user-1=hi\xff\n"},
		{`%T %T{rfc3339} %T{unix}`, encText, "1700000000123 2023-11-14T22:13:20.123Z 1700000000"},
		{`%k{hex}:%v{base64}`, encText, "757365722d31:aGn/"},
		{`%v`, encHex, "6869ff"},
		{`%v{text}`, encHex, "hi\xff"},
		{`%h|%h{hex}|%H`, encText, "trace=abc,trace=d|trace=616263,trace=64|2"},
		{`%K %V %s 100%%\t\\`, encText, "6 3 hi\xff 100%\t\\"},
	} {
		f, err := parseFormat(tt.format, tt.enc)
		if err != nil {
			t.Fatalf("parseFormat(%q): %v", tt.format, err)
		}
		if got := string(f.appendRecord(nil, &r)); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.format, got, tt.want)
		}
	}
	for format, want := range map[string]string{
		`%x`: `"%x" at byte 0 is not a verb`, `abc%`: `"%" at byte 3 is not a verb`, `%v{hex`: "unclosed {",
		`%v{utf16}`: "want {text}, {base64} or {hex}", `%p{hex}`: "%p takes no {hex}", `\q`: `unknown escape \q`,
		`%T{iso}`: "want {ms}, {rfc3339} or {unix}",
	} {
		if _, err := parseFormat(format, encText); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseFormat(%q) = %v, want an error containing %q", format, err, want)
		}
	}
}

// TestJSONRoundTripsAnyBytes: with base64 and hex, random keys, values and
// header values (invalid UTF-8, NULs, nil) decode back to the same bytes,
// and repeated header keys stay in order.
func TestJSONRoundTripsAnyBytes(t *testing.T) {
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 9))
	randBytes := func() []byte {
		if rng.IntN(5) == 0 {
			return nil
		}
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	type jsonHeader struct {
		Key   string  `json:"key"`
		Value *string `json:"value"`
	}
	type jsonRec struct {
		Key     *string      `json:"key"`
		Value   *string      `json:"value"`
		Headers []jsonHeader `json:"headers"`
	}
	decoders := map[encoding]func(string) ([]byte, error){encBase64: base64.StdEncoding.DecodeString, encHex: hex.DecodeString}
	for enc, decode := range decoders {
		for range 500 {
			r := client.Record{Topic: "t", Key: randBytes(), Value: randBytes(),
				Headers: []client.Header{{Key: "h", Value: randBytes()}, {Key: "h", Value: randBytes()}}}
			line := appendJSONRecord(nil, &r, enc)
			var got jsonRec
			if err := json.Unmarshal(line, &got); err != nil {
				t.Fatalf("seed %d: invalid JSON %s: %v", seed, line, err)
			}
			check := func(what string, s *string, want []byte) {
				if (s == nil) != (want == nil) {
					t.Fatalf("seed %d: %s null mismatch in %s", seed, what, line)
				}
				if s == nil {
					return
				}
				b, err := decode(*s)
				if err != nil || !bytes.Equal(b, want) {
					t.Fatalf("seed %d: %s %q decodes to %x (%v), want %x", seed, what, *s, b, err, want)
				}
			}
			check("key", got.Key, r.Key)
			check("value", got.Value, r.Value)
			if len(got.Headers) != 2 || got.Headers[0].Key != "h" || got.Headers[1].Key != "h" {
				t.Fatalf("seed %d: headers %+v", seed, got.Headers)
			}
			check("header 0", got.Headers[0].Value, r.Headers[0].Value)
			check("header 1", got.Headers[1].Value, r.Headers[1].Value)
		}
	}
}

func TestParseStart(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]client.Start{
		"earliest":                  client.StartEarliest(),
		"latest":                    client.StartLatest(),
		"42":                        client.StartAt(42),
		"@1700000000000":            client.StartAtTime(time.UnixMilli(1700000000000)),
		"-15m":                      client.StartAtTime(now.Add(-15 * time.Minute)),
		"-1h30m":                    client.StartAtTime(now.Add(-90 * time.Minute)),
		"2026-11-30T11:00:00Z":      client.StartAtTime(now.Add(-time.Hour)),
		"2026-11-30T12:00:00+01:00": client.StartAtTime(now.Add(-time.Hour)),
		"2026-11-29":                client.StartAtTime(now.Add(-36 * time.Hour)),
	} {
		got, err := parseStart(in, now)
		if err != nil || got != want {
			t.Errorf("parseStart(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"soon", "-15", "-15x", "--1m", "2026-13-01", "2026-11-30T25:00:00Z", "@x", "-0s"} {
		if _, err := parseStart(bad, now); err == nil || !strings.Contains(err.Error(), "--from") {
			t.Errorf("parseStart(%q) = %v, want an error naming --from", bad, err)
		}
	}
}

func TestConsumeOutputOptions(t *testing.T) {
	r := formatRecord()
	r.Value = []byte("v")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "v\n"},
		{[]string{"--print-key"}, "user-1\tv\n"},
		{[]string{"--print-timestamp", "--print-partition", "--print-offset", "--print-headers", "--print-key", "--key-separator", " | "},
			"CreateTime:1700000000123 | Partition:2 | Offset:17 | trace=abc,trace=d | user-1 | v\n"},
		{[]string{"--print-key", "--key-separator", `\n`}, "user-1\nv\n"},
		{[]string{"--print-key", "--encoding", "hex"}, "757365722d31\t76\n"},
		{[]string{"-f", `%k:%v\n`}, "user-1:v\n"},
	} {
		o, err := parseConsumeFlags(append([]string{"t"}, tt.args...), time.Now())
		if err != nil {
			t.Fatalf("%q: %v", tt.args, err)
		}
		if got := string(o.format.appendRecord(nil, &r)); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.args, got, tt.want)
		}
	}
	for _, bad := range [][]string{
		{"-f", "json", "--print-key"}, {"-f", "%v", "--print-offset"}, {"-f", "xml"}, {"--encoding", "utf16"},
	} {
		if _, err := parseConsumeFlags(append([]string{"t"}, bad...), time.Now()); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	o, err := parseConsumeFlags([]string{"t", "-o", "-5m", "-e", "-g", "g", "-p", "1", "-s", "h:1"}, time.Now())
	if err != nil || !o.exitAtEnd || o.group != "g" || o.partition != 1 || o.server.addr != "h:1" {
		t.Fatalf("short flags: %+v, %v", o, err)
	}
}

func TestKafkaConsoleAliases(t *testing.T) {
	o, err := parseConsumeFlags([]string{"t", "--from-beginning", "--max-messages", "7"}, time.Now())
	if err != nil || o.from != client.StartEarliest() || o.limit != 7 {
		t.Fatalf("--from-beginning --max-messages 7: %+v, %v", o, err)
	}
}

// TestReachability: one line when the server stops answering, none while
// it stays down, one when it is back.
func TestReachability(t *testing.T) {
	var out bytes.Buffer
	r := &reachability{w: &out}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	r.onDial("h:1", nil)
	r.onDial("h:1", refused)
	r.onDial("h:1", refused)
	r.onDial("h:1", nil)
	r.onDial("h:1", nil)
	want := "ringmq: cannot connect to h:1: connection refused (is ringmq serve running there?); retrying\n" +
		"ringmq: connected to h:1 again\n"
	if out.String() != want {
		t.Fatalf("got %q\nwant %q", out.String(), want)
	}
}
