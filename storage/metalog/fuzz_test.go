package metalog

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
)

// The oracle below decodes logs and snapshots the naive way, straight from
// the layout in the package doc, sharing nothing with the store's decoder
// but the size limits and checkEntry (the typed-key validation).

var castagnoliTable = crc32.MakeTable(crc32.Castagnoli)

func crcOf(b []byte) uint32 { return crc32.Checksum(b, castagnoliTable) }

// naiveFrame returns the body of the frame at b[off:] if the frame is whole
// and its CRC matches; end is where the frame's bytes end (for a bad length,
// the end of its header; for a frame past the end of b, len(b)).
func naiveFrame(b []byte, off int) (body []byte, end int, ok bool) {
	if len(b)-off < 8 {
		return nil, len(b), false
	}
	l := int(binary.LittleEndian.Uint32(b[off:]))
	if l < 4 || l > maxBodySize {
		return nil, off + 8, false
	}
	if off+8+l > len(b) {
		return nil, len(b), false
	}
	body = b[off+8 : off+8+l]
	return body, off + 8 + l, crcOf(body) == binary.LittleEndian.Uint32(b[off+4:])
}

type naiveRec struct {
	version, op byte
	key, value  string
}

func naiveBody(body []byte) (r naiveRec, ok bool) {
	r.version, r.op = body[0], body[1]
	p := body[2:]
	field := func(max int64) (string, bool) {
		n, w := binary.Varint(p)
		if w <= 0 || n < 0 || n > max || n > int64(len(p)-w) {
			return "", false
		}
		s := string(p[w : w+int(n)])
		p = p[w+int(n):]
		return s, true
	}
	var ok1, ok2 bool
	if r.key, ok1 = field(MaxKeySize); ok1 {
		r.value, ok2 = field(MaxValueSize)
	}
	return r, ok1 && ok2 && len(p) == 0 && r.version == 1
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// naiveLog applies log b to m and returns the length of its valid prefix,
// or fail if Open must report corruption.
func naiveLog(b []byte, m map[string]string) (valid int, fail bool) {
	for off := 0; off < len(b); {
		body, end, ok := naiveFrame(b, off)
		if !ok {
			return off, !allZero(b[end:])
		}
		r, ok := naiveBody(body)
		switch {
		case !ok:
			return off, true
		case r.op == opPut && checkEntry(record{opPut, []byte(r.key), []byte(r.value)}) == nil:
			m[r.key] = r.value
		case r.op == opDelete && r.value == "":
			delete(m, r.key)
		default:
			return off, true
		}
		off = end
	}
	return len(b), false
}

// naiveSnapshot loads snapshot b into m, or reports that it must fail.
func naiveSnapshot(b []byte, m map[string]string) (fail bool) {
	if len(b) < 9 || string(b[:8]) != "RMQMSNAP" || b[8] != 1 {
		return true
	}
	count, prev := 0, ""
	for off := 9; ; {
		body, end, ok := naiveFrame(b, off)
		if !ok {
			return true
		}
		r, ok := naiveBody(body)
		switch {
		case !ok:
			return true
		case r.op == opEnd:
			return r.key != "" || len(r.value) != 8 || end != len(b) ||
				binary.LittleEndian.Uint64([]byte(r.value)) != uint64(count)
		case r.op != opPut || (count > 0 && r.key <= prev) ||
			checkEntry(record{opPut, []byte(r.key), []byte(r.value)}) != nil:
			return true
		}
		m[r.key], prev = r.value, r.key
		count++
		off = end
	}
}

// fixCRCs returns a copy of b with the CRC of every in-range, whole frame
// from start on recomputed, so that the fuzzer reaches the body decoder.
func fixCRCs(b []byte, start int) []byte {
	b = append([]byte(nil), b...)
	for off := start; len(b)-off >= 8; {
		l := int(binary.LittleEndian.Uint32(b[off:]))
		if l < 4 || l > maxBodySize || off+8+l > len(b) {
			break
		}
		binary.LittleEndian.PutUint32(b[off+4:], crcOf(b[off+8:off+8+l]))
		off += 8 + l
	}
	return b
}

// FuzzMetaLog opens arbitrary bytes as meta.log (and, when snap is not
// empty, as meta.snapshot). Open must not panic; it must fail with a
// *CorruptError exactly when the oracle says the files are corrupt, and
// otherwise serve the contents of the longest valid log prefix, with the
// log cut back to that prefix.
func FuzzMetaLog(f *testing.F) {
	f.Add([]byte(nil), []byte(nil), false)
	f.Fuzz(func(t *testing.T, logB, snapB []byte, fixCRC bool) {
		if fixCRC {
			logB = fixCRCs(logB, 0)
			snapB = fixCRCs(snapB, snapshotHeaderSize)
		}
		want := map[string]string{}
		valid, fail := len(logB), false
		if len(snapB) > 0 {
			fail = naiveSnapshot(snapB, want)
		}
		if !fail {
			valid, fail = naiveLog(logB, want)
		}
		dir := t.TempDir()
		writeFile(t, logPath(dir), logB)
		if len(snapB) > 0 {
			writeFile(t, snapPath(dir), snapB)
		}
		s, err := Open(dir, Options{Logger: quiet})
		var ce *CorruptError
		switch {
		case fail && errors.As(err, &ce) && (errors.Is(err, ErrCorrupt) || errors.Is(err, ErrVersion)):
			return
		case fail:
			t.Fatalf("Open = %v, want a corruption error", err)
		case err != nil:
			t.Fatalf("Open: %v (oracle: valid prefix of %d bytes)", err, valid)
		}
		defer mustClose(t, s)
		checkContents(t, s, want)
		if size := fileSize(t, logPath(dir)); size != int64(valid) {
			t.Fatalf("log left at %d bytes, want %d", size, valid)
		}
	})
}
