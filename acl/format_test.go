package acl

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"reflect"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "regenerate the golden files under testdata")

const goldenPath = "testdata/entries-v1.hex"

// goldenEntries use every enum value at least once.
func goldenEntries() []Entry {
	return []Entry{
		allow(alice, ResourceTopic, PatternLiteral, "orders", OpRead),
		allow(alice, ResourceTopic, PatternPrefixed, "orders.", OpWrite),
		deny(Wildcard, ResourceGroup, PatternLiteral, Wildcard, OpDelete),
		allow(bob, ResourceCluster, PatternLiteral, ClusterName, OpCreate),
		allow(bob, ResourceGroup, PatternPrefixed, "billing-", OpDescribe),
		deny(bob, ResourceTopic, PatternLiteral, "hr.salaries", OpAll),
		allow("User:ops", ResourceCluster, PatternLiteral, Wildcard, OpAlter),
	}
}

func writeHex(b *strings.Builder, comment string, data []byte) {
	fmt.Fprintf(b, "# %s\n", comment)
	for len(data) > 0 {
		n := min(32, len(data))
		b.WriteString(hex.EncodeToString(data[:n]))
		b.WriteByte('\n')
		data = data[n:]
	}
}

func readHex(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, line := range strings.Split(string(raw), "\n") {
		if line = strings.TrimSpace(line); line == "" || line[0] == '#' {
			continue
		}
		b, err := hex.DecodeString(line)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, b...)
	}
	return out
}

// The checked-in file was written by format version 1; it must keep
// parsing to the same entries, and this build must keep writing it.
func TestGolden(t *testing.T) {
	want := goldenEntries()
	data := AppendEntries(nil, want)
	if *rewrite {
		var b strings.Builder
		b.WriteString("# ACL entry list, format version 1 (see acl/doc.go); regenerate with go test ./acl -rewrite\n")
		writeHex(&b, "len u32 | crc32c u32", data[:frameHeader])
		writeHex(&b, fmt.Sprintf("magic 0xac | version 1 | count uv | %d entries", len(want)), data[frameHeader:])
		b.WriteString("# an empty list\n")
		writeHex(&b, "len | crc | magic | version | count 0", AppendEntries(nil, nil))
		if err := os.WriteFile(goldenPath, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file := readHex(t, goldenPath)
	got, rest, err := ParseEntries(file)
	if err != nil {
		t.Fatalf("ParseEntries(golden) = %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("golden entries:\n got %v\nwant %v", got, want)
	}
	empty, rest, err := ParseEntries(rest)
	if err != nil || len(empty) != 0 || len(rest) != 0 {
		t.Errorf("golden empty list = %v, %d bytes left, %v; want none, 0, nil", empty, len(rest), err)
	}
	if !bytes.Equal(file, append(data, AppendEntries(nil, nil)...)) {
		t.Error("this build no longer writes the golden bytes; a format change needs a new version")
	}
}

func TestAppendEntriesAppends(t *testing.T) {
	prefix := []byte("prefix")
	data := AppendEntries(append([]byte(nil), prefix...), goldenEntries())
	if !bytes.HasPrefix(data, prefix) {
		t.Fatal("AppendEntries overwrote dst")
	}
	got, rest, err := ParseEntries(append(data[len(prefix):], "tail"...))
	if err != nil || !reflect.DeepEqual(got, goldenEntries()) || string(rest) != "tail" {
		t.Fatalf("ParseEntries = %v, rest %q, %v", got, rest, err)
	}
}

func TestParseEntriesTornTail(t *testing.T) {
	data := AppendEntries(nil, goldenEntries())
	for cut := range len(data) {
		_, rest, err := ParseEntries(data[:cut])
		if !errors.Is(err, ErrTruncated) || len(rest) != cut {
			t.Fatalf("ParseEntries of the first %d of %d bytes = %v (rest %d), want ErrTruncated and the input back",
				cut, len(data), err, len(rest))
		}
	}
}

func TestParseEntriesCorruption(t *testing.T) {
	data := AppendEntries(nil, goldenEntries())
	for i := range len(data) {
		for _, bit := range []byte{0x01, 0x80} {
			b := bytes.Clone(data)
			b[i] ^= bit
			_, _, err := ParseEntries(b)
			// A flipped length bit can make the frame look longer than the
			// input: a torn tail, which recovery handles as one.
			if err == nil || (!errors.Is(err, ErrCorrupt) && !(i < 4 && errors.Is(err, ErrTruncated))) {
				t.Fatalf("byte %d ^ %#x: ParseEntries = %v, want ErrCorrupt", i, bit, err)
			}
		}
	}
}

// reframe wraps body in a frame with a correct length and CRC.
func reframe(body []byte) []byte {
	dst := binary.LittleEndian.AppendUint32(nil, uint32(len(body)))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(body, castagnoli))
	return append(dst, body...)
}

// Bodies with a good CRC that still must not parse.
func TestParseEntriesBadBodies(t *testing.T) {
	entry := func(principal string, rt, pt byte, name string, op, perm byte) []byte {
		b := appendString(nil, principal)
		b = append(b, rt, pt)
		b = appendString(b, name)
		return append(b, op, perm)
	}
	good := entry(alice, 1, 1, "t", 2, 1)
	body := func(count byte, entries ...[]byte) []byte {
		b := []byte{Magic, Version, count}
		for _, e := range entries {
			b = append(b, e...)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		body []byte
		want error
		text string
	}{
		{"good", body(1, good), nil, ""},
		{"empty body", nil, ErrCorrupt, "bad magic"},
		{"bad magic", []byte{0xAB, Version, 0}, ErrCorrupt, "bad magic"},
		{"version 2", []byte{Magic, 2, 0}, ErrVersion, "version: 2"},
		{"version 0", []byte{Magic, 0, 0}, ErrVersion, "version: 0"},
		{"no count", []byte{Magic, Version}, ErrCorrupt, "bad uvarint"},
		{"count over the body", body(3, good), ErrCorrupt, "3 entries in"},
		{"huge count", append([]byte{Magic, Version}, binary.AppendUvarint(nil, 1<<62)...), ErrCorrupt, "entries in"},
		{"bytes after the entries", append(body(1, good), 0), ErrCorrupt, "1 bytes after"},
		{"string past the end", body(1, append(appendString(nil, alice), 1, 1, 100)), ErrCorrupt, "string of 100"},
		{"short entry", body(1, good[:len(good)-1]), ErrCorrupt, "short body"},
		{"resource type 0", body(1, entry(alice, 0, 1, "t", 2, 1)), ErrCorrupt, "resource type"},
		{"pattern type 3", body(1, entry(alice, 1, 3, "t", 2, 1)), ErrCorrupt, "pattern type"},
		{"operation 8", body(1, entry(alice, 1, 1, "t", 8, 1)), ErrCorrupt, "operation"},
		{"permission 0", body(1, entry(alice, 1, 1, "t", 2, 0)), ErrCorrupt, "permission"},
		{"empty principal", body(1, entry("", 1, 1, "t", 2, 1)), ErrCorrupt, "empty principal"},
		{"empty name", body(1, entry(alice, 1, 1, "", 2, 1)), ErrCorrupt, "empty resource name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParseEntries(reframe(tc.body))
			if !errors.Is(err, tc.want) || (err != nil && !strings.Contains(err.Error(), tc.text)) {
				t.Errorf("ParseEntries = %v, want %v naming %q", err, tc.want, tc.text)
			}
		})
	}
	huge := binary.LittleEndian.AppendUint32(nil, maxFrame+1)
	if _, _, err := ParseEntries(append(huge, 0, 0, 0, 0)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a length over maxFrame: ParseEntries = %v, want ErrCorrupt", err)
	}
}

// FuzzParseEntries: no panic, never reads past the frame, and whatever
// parses re-encodes to a frame that parses to the same entries and that
// New accepts. With fix set the input is the body and gets a correct
// frame, so the fuzzer gets past the CRC.
func FuzzParseEntries(f *testing.F) {
	f.Add(AppendEntries(nil, goldenEntries()), false)
	f.Add(AppendEntries(nil, goldenEntries())[frameHeader:], true)
	f.Add(AppendEntries(nil, nil)[frameHeader:], true)
	f.Add([]byte{Magic, Version, 1, 1, 'a', 1, 1, 1, 'b', 2, 1}, true)
	f.Fuzz(func(t *testing.T, data []byte, fix bool) {
		if fix {
			data = reframe(data)
		}
		entries, rest, err := ParseEntries(data)
		if err != nil {
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				t.Fatalf("unclassified error %v", err)
			}
			if len(rest) != len(data) {
				t.Fatalf("error %v with %d of %d bytes consumed", err, len(data)-len(rest), len(data))
			}
			return
		}
		if n := int(binary.LittleEndian.Uint32(data)); len(rest) != len(data)-frameHeader-n {
			t.Fatalf("rest is %d bytes, want %d after a %d-byte frame", len(rest), len(data)-frameHeader-n, n)
		}
		again, _, err := ParseEntries(AppendEntries(nil, entries))
		if err != nil || !reflect.DeepEqual(again, entries) && len(entries) > 0 {
			t.Fatalf("re-encoded entries parse to %v, %v; want %v", again, err, entries)
		}
		if _, err := New(entries, nil); err != nil {
			t.Fatalf("parsed entries rejected by New: %v", err)
		}
	})
}
