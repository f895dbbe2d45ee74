package driver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	pb "go.etcd.io/raft/v3/raftpb"
)

// Errors of this package; test for them with errors.Is.
var (
	// ErrCorrupt marks damaged controller files that are not a torn tail:
	// the driver refuses to start on them.
	ErrCorrupt = errors.New("controller driver: corrupt file")
	// ErrStopped: the driver was closed or stopped on an error.
	ErrStopped = errors.New("controller driver: stopped")
)

// Frame layout (see doc.go); persisted: never change.
const (
	frameHeader  = 8 // length, crc32c
	frameVersion = 1

	kindEntry     = 1
	kindHardState = 2
	kindSnapshot  = 3

	maxFrame = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendFrame appends a frame of kind whose fields body appends.
func appendFrame(dst []byte, kind byte, body func([]byte) []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, frameVersion, kind)
	dst = body(dst)
	n := len(dst) - start - frameHeader
	binary.LittleEndian.PutUint32(dst[start:], uint32(n))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+frameHeader:], castagnoli))
	return dst
}

func appendBytes(dst, b []byte) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(b))), b...)
}

// AppendEntry appends a log entry frame: index, term, type, data.
func AppendEntry(dst []byte, e *pb.Entry) []byte {
	return appendFrame(dst, kindEntry, func(b []byte) []byte {
		b = binary.AppendUvarint(b, e.GetIndex())
		b = binary.AppendUvarint(b, e.GetTerm())
		b = binary.AppendUvarint(b, uint64(e.GetType()))
		return appendBytes(b, e.GetData())
	})
}

// AppendHardState appends a hard state frame: term, vote, commit.
func AppendHardState(dst []byte, hs *pb.HardState) []byte {
	return appendFrame(dst, kindHardState, func(b []byte) []byte {
		b = binary.AppendUvarint(b, hs.GetTerm())
		b = binary.AppendUvarint(b, hs.GetVote())
		return binary.AppendUvarint(b, hs.GetCommit())
	})
}

// AppendSnapshot appends a snapshot frame: index, term, voters, data.
func AppendSnapshot(dst []byte, s *pb.Snapshot) []byte {
	md := s.GetMetadata()
	return appendFrame(dst, kindSnapshot, func(b []byte) []byte {
		b = binary.AppendUvarint(b, md.GetIndex())
		b = binary.AppendUvarint(b, md.GetTerm())
		voters := md.GetConfState().GetVoters()
		b = binary.AppendUvarint(b, uint64(len(voters)))
		for _, v := range voters {
			b = binary.AppendUvarint(b, v)
		}
		return appendBytes(b, s.GetData())
	})
}

// errTorn: the frame runs past the end of its input (a torn write).
var errTorn = errors.New("torn frame")

// splitFrame checks the frame at the start of src and returns its kind,
// its fields and the rest. A frame cut short is errTorn; a bad length,
// checksum or version wraps ErrCorrupt.
func splitFrame(src []byte) (kind byte, fields, rest []byte, err error) {
	if len(src) < frameHeader {
		return 0, nil, src, errTorn
	}
	n := binary.LittleEndian.Uint32(src)
	if n < 2 || n > maxFrame {
		return 0, nil, src, fmt.Errorf("%w: frame length %d", ErrCorrupt, n)
	}
	if uint64(len(src)-frameHeader) < uint64(n) {
		return 0, nil, src, errTorn
	}
	body := src[frameHeader : frameHeader+n]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(src[4:]) {
		return 0, nil, src, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	if body[0] != frameVersion {
		return 0, nil, src, fmt.Errorf("%w: frame version %d", ErrCorrupt, body[0])
	}
	return body[1], body[2:], src[frameHeader+n:], nil
}

// reader decodes fields and keeps its first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = fmt.Errorf("%w: bad varint", ErrCorrupt)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)) {
		r.err = fmt.Errorf("%w: field of %d bytes past the frame", ErrCorrupt, n)
	}
	if r.err != nil {
		return nil
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b
}

func (r *reader) done(kind byte, want byte) error {
	if r.err == nil && kind != want {
		r.err = fmt.Errorf("%w: frame kind %d, want %d", ErrCorrupt, kind, want)
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d bytes after the fields", ErrCorrupt, len(r.b))
	}
	return r.err
}

// ParseEntry decodes one entry frame.
func ParseEntry(src []byte) (*pb.Entry, []byte, error) {
	kind, fields, rest, err := splitFrame(src)
	if err != nil {
		return nil, src, err
	}
	r := reader{b: fields}
	idx, term, typ := r.uvarint(), r.uvarint(), r.uvarint()
	data := r.bytes()
	if err := r.done(kind, kindEntry); err != nil {
		return nil, src, err
	}
	e := &pb.Entry{Index: new(idx), Term: new(term), Type: pb.EntryType(typ).Enum()}
	if len(data) > 0 {
		e.Data = append([]byte(nil), data...)
	}
	return e, rest, nil
}

// ParseHardState decodes one hard state frame.
func ParseHardState(src []byte) (*pb.HardState, []byte, error) {
	kind, fields, rest, err := splitFrame(src)
	if err != nil {
		return nil, src, err
	}
	r := reader{b: fields}
	term, vote, commit := r.uvarint(), r.uvarint(), r.uvarint()
	if err := r.done(kind, kindHardState); err != nil {
		return nil, src, err
	}
	return &pb.HardState{Term: new(term), Vote: new(vote), Commit: new(commit)}, rest, nil
}

// ParseSnapshot decodes one snapshot frame.
func ParseSnapshot(src []byte) (*pb.Snapshot, []byte, error) {
	kind, fields, rest, err := splitFrame(src)
	if err != nil {
		return nil, src, err
	}
	r := reader{b: fields}
	idx, term, n := r.uvarint(), r.uvarint(), r.uvarint()
	if r.err == nil && n > uint64(len(r.b)) {
		r.err = fmt.Errorf("%w: %d voters", ErrCorrupt, n)
	}
	var voters []uint64
	for i := uint64(0); i < n && r.err == nil; i++ {
		voters = append(voters, r.uvarint())
	}
	data := r.bytes()
	if err := r.done(kind, kindSnapshot); err != nil {
		return nil, src, err
	}
	return &pb.Snapshot{
		Data: append([]byte(nil), data...),
		Metadata: &pb.SnapshotMetadata{Index: new(idx), Term: new(term),
			ConfState: &pb.ConfState{Voters: voters}},
	}, rest, nil
}
