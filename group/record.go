package group

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/ringmq/ringmq/proto"
)

// RecordKind says what a record's key names. Persisted: never change.
type RecordKind uint8

const (
	KindGroup  RecordKind = 1 // key: group
	KindMember RecordKind = 2 // key: group, member id
	KindCommit RecordKind = 3 // key: group, topic, partition
	KindAck    RecordKind = 4 // key: group, topic, partition (frames of group/ack)
)

func (k RecordKind) String() string {
	switch k {
	case KindGroup:
		return "group"
	case KindMember:
		return "member"
	case KindCommit:
		return "commit"
	case KindAck:
		return "ack"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Record is one entry of the coordinator's log: the latest value of a key,
// or its deletion (Tombstone). Only the fields of its Kind are set.
type Record struct {
	Kind      RecordKind
	Tombstone bool
	Group     string
	// KindGroup.
	Type  Type
	Epoch uint32
	// KindMember (Member.ID is part of the key).
	Member MemberRecord
	// KindCommit (TopicPartition is part of the key).
	TopicPartition TopicPartition
	Commit         Commit
	// KindAck (TopicPartition is part of the key): group/ack frames, a
	// snapshot or deltas. Unlike the others an ack key's records add up:
	// Compact keeps them from the key's last snapshot on.
	Frames []byte
}

// MemberRecord is a member's persisted state; everything but its liveness.
type MemberRecord struct {
	ID             string
	ClientID       string
	Addr           string
	Topics         []string
	SessionTimeout time.Duration // whole milliseconds
	Epoch          uint32
	Owned          []OwnedPartition // sorted
	Target         []TopicPartition // sorted
}

// OwnedPartition is a partition a member owns and the epoch it got it at.
type OwnedPartition struct {
	TopicPartition
	Since uint32
}

// Key is the record's compaction key: records with equal keys replace
// each other, the last one wins.
func (r *Record) Key() string {
	b := []byte{byte(r.Kind)}
	b = appendString(b, r.Group)
	switch r.Kind {
	case KindMember:
		b = appendString(b, r.Member.ID)
	case KindCommit, KindAck:
		b = appendString(b, r.TopicPartition.Topic)
		b = binary.AppendUvarint(b, uint64(r.TopicPartition.Partition))
	}
	return string(b)
}

// Frame layout (see doc.go). Persisted: never change these values.
const (
	frameHeaderSize = 8 // length u32 | crc32c u32
	recordVersion   = 1
	flagTombstone   = 1
	// MaxRecordSize bounds one encoded record.
	MaxRecordSize = 4 << 20
)

// AppendRecord appends r's frame to dst.
func AppendRecord(dst []byte, r *Record) []byte {
	start := len(dst)
	var flags byte
	if r.Tombstone {
		flags = flagTombstone
	}
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, recordVersion, byte(r.Kind), flags)
	dst = appendString(dst, r.Group)
	switch r.Kind {
	case KindGroup:
		if !r.Tombstone {
			dst = append(dst, byte(r.Type))
			dst = binary.AppendUvarint(dst, uint64(r.Epoch))
		}
	case KindMember:
		dst = appendString(dst, r.Member.ID)
		if !r.Tombstone {
			dst = appendMember(dst, &r.Member)
		}
	case KindCommit:
		dst = appendString(dst, r.TopicPartition.Topic)
		dst = binary.AppendUvarint(dst, uint64(r.TopicPartition.Partition))
		if !r.Tombstone {
			dst = binary.AppendUvarint(dst, r.Commit.Offset)
			dst = appendString(dst, r.Commit.Metadata)
		}
	case KindAck:
		dst = appendString(dst, r.TopicPartition.Topic)
		dst = binary.AppendUvarint(dst, uint64(r.TopicPartition.Partition))
		if !r.Tombstone {
			dst = binary.AppendUvarint(dst, uint64(len(r.Frames)))
			dst = append(dst, r.Frames...)
		}
	}
	payload := dst[start+frameHeaderSize:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[start+4:], proto.CRC32C(payload))
	return dst
}

func appendMember(dst []byte, m *MemberRecord) []byte {
	dst = appendString(dst, m.ClientID)
	dst = appendString(dst, m.Addr)
	dst = binary.AppendUvarint(dst, uint64(m.SessionTimeout/time.Millisecond))
	dst = binary.AppendUvarint(dst, uint64(m.Epoch))
	dst = binary.AppendUvarint(dst, uint64(len(m.Topics)))
	for _, t := range m.Topics {
		dst = appendString(dst, t)
	}
	dst = binary.AppendUvarint(dst, uint64(len(m.Owned)))
	for _, o := range m.Owned {
		dst = appendString(dst, o.Topic)
		dst = binary.AppendUvarint(dst, uint64(o.Partition))
		dst = binary.AppendUvarint(dst, uint64(o.Since))
	}
	dst = binary.AppendUvarint(dst, uint64(len(m.Target)))
	for _, tp := range m.Target {
		dst = appendString(dst, tp.Topic)
		dst = binary.AppendUvarint(dst, uint64(tp.Partition))
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// ParseRecord decodes the frame at the start of src and returns the rest.
// A frame cut short is ErrTruncated; a bad CRC or field is ErrCorrupt.
func ParseRecord(src []byte) (Record, []byte, error) {
	if len(src) < frameHeaderSize {
		return Record{}, src, fmt.Errorf("%w: %d bytes, want a %d-byte header", ErrTruncated, len(src), frameHeaderSize)
	}
	n := binary.LittleEndian.Uint32(src)
	if n < 3 || n > MaxRecordSize {
		return Record{}, src, fmt.Errorf("%w: length %d", ErrCorrupt, n)
	}
	if uint64(n) > uint64(len(src)-frameHeaderSize) {
		return Record{}, src, fmt.Errorf("%w: length %d with %d bytes left", ErrTruncated, n, len(src)-frameHeaderSize)
	}
	payload := src[frameHeaderSize : frameHeaderSize+int(n)]
	if got, want := proto.CRC32C(payload), binary.LittleEndian.Uint32(src[4:]); got != want {
		return Record{}, src, fmt.Errorf("%w: crc32c %08x, header says %08x", ErrCorrupt, got, want)
	}
	if payload[0] != recordVersion {
		return Record{}, src, fmt.Errorf("%w: version %d", ErrVersion, payload[0])
	}
	rd := reader{b: payload[3:]}
	r := Record{Kind: RecordKind(payload[1])}
	switch payload[2] {
	case 0:
	case flagTombstone:
		r.Tombstone = true
	default:
		rd.fail("flags %#x", payload[2])
	}
	rd.record(&r)
	if err := rd.done(); err != nil {
		return Record{}, src, err
	}
	return r, src[frameHeaderSize+int(n):], nil
}

// record reads the key and, unless r is a tombstone, the value of r.Kind.
func (rd *reader) record(r *Record) {
	r.Group = rd.name("group")
	switch r.Kind {
	case KindGroup:
		if !r.Tombstone {
			r.Type = Type(rd.uvarint(math.MaxUint8, "type"))
			if !r.Type.valid() {
				rd.fail("type %d", r.Type)
			}
			r.Epoch = rd.uint32("epoch")
		}
	case KindMember:
		r.Member.ID = rd.string(MaxMemberIDLen, "member id")
		if !r.Tombstone {
			rd.member(&r.Member)
		}
	case KindCommit:
		r.TopicPartition = rd.tp()
		if !r.Tombstone {
			r.Commit.Offset = rd.uvarint(math.MaxUint64, "offset")
			r.Commit.Metadata = rd.string(MaxMetadataLen, "metadata")
		}
	case KindAck:
		r.TopicPartition = rd.tp()
		if !r.Tombstone {
			r.Frames = []byte(rd.string(MaxRecordSize, "ack frames"))
			if rd.err == nil && len(r.Frames) == 0 {
				rd.fail("empty ack frames")
			}
		}
	default:
		rd.fail("kind %d", r.Kind)
	}
}

func (rd *reader) member(m *MemberRecord) {
	m.ClientID = rd.string(MaxClientIDLen, "client id")
	m.Addr = rd.string(MaxAddrLen, "addr")
	m.SessionTimeout = time.Duration(rd.uvarint(math.MaxInt64/uint64(time.Millisecond), "session timeout")) * time.Millisecond
	m.Epoch = rd.uint32("member epoch")
	nt := rd.count("topics")
	for range nt {
		m.Topics = append(m.Topics, rd.name("topic"))
	}
	no := rd.count("owned")
	for range no {
		tp := rd.tp()
		m.Owned = append(m.Owned, OwnedPartition{tp, rd.uint32("since")})
	}
	ng := rd.count("target")
	for range ng {
		m.Target = append(m.Target, rd.tp())
	}
}

// reader decodes fields and keeps its first error: a short or hostile
// input never panics; ParseRecord checks once at the end.
type reader struct {
	b   []byte
	err error
}

func (rd *reader) fail(format string, args ...any) {
	if rd.err == nil {
		rd.err = fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
	}
	rd.b = nil
}

func (rd *reader) uvarint(max uint64, what string) uint64 {
	if rd.err != nil {
		return 0
	}
	v, n := binary.Uvarint(rd.b)
	if n <= 0 || n > 1 && rd.b[n-1] == 0 {
		rd.fail("%s: bad or non-minimal varint", what)
		return 0
	}
	rd.b = rd.b[n:]
	if v > max {
		rd.fail("%s %d > %d", what, v, max)
		return 0
	}
	return v
}

func (rd *reader) uint32(what string) uint32 { return uint32(rd.uvarint(math.MaxUint32, what)) }

func (rd *reader) string(max int, what string) string {
	n := rd.uvarint(uint64(max), what+" length")
	if rd.err != nil {
		return ""
	}
	if n > uint64(len(rd.b)) {
		rd.fail("%s: %d bytes, %d left", what, n, len(rd.b))
		return ""
	}
	s := string(rd.b[:n])
	rd.b = rd.b[n:]
	return s
}

// name reads a topic or group name and checks it.
func (rd *reader) name(what string) string {
	s := rd.string(proto.MaxNameLen, what)
	if rd.err == nil && !validName(s) {
		rd.fail("%s %q", what, s)
	}
	return s
}

func (rd *reader) tp() TopicPartition {
	return TopicPartition{rd.name("topic"), rd.uint32("partition")}
}

// count reads a list length, bounded by the bytes left (each element
// takes at least two), so a hostile count cannot make it allocate much.
func (rd *reader) count(what string) int {
	n := rd.uvarint(math.MaxUint32, what)
	if n > uint64(len(rd.b))/2 {
		rd.fail("%s %d with %d bytes left", what, n, len(rd.b))
		return 0
	}
	return int(n)
}

func (rd *reader) done() error {
	if rd.err == nil && len(rd.b) != 0 {
		rd.fail("%d trailing bytes", len(rd.b))
	}
	return rd.err
}
