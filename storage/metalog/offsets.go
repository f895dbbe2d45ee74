package metalog

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/ringmq/ringmq/proto"
)

// Key prefixes owned by the typed helpers; Put and Delete reject keys under
// them. Persisted: never change.
//
//	offset key:  "o/" group 0x00 topic 0x00 partition(u32 big-endian)
//	topic key:   "t/" topic
//
// Big-endian partitions and the NUL separator (names may not contain NUL)
// keep one group's offsets contiguous and ordered by (topic, partition).
const (
	OffsetKeyPrefix = "o/"
	TopicKeyPrefix  = "t/"
)

// Offset value layout (little-endian), persisted: never change.
//
//	offset size field
//	     0    1 version          offsetValueVersion
//	     1    8 offset           u64
//	     9    8 commit_time_ms   i64, unix milliseconds
//	    17    … metadata         zig-zag varint length, then bytes
const offsetValueVersion = 1

// OffsetCommit is a consumer group's committed position in one partition.
type OffsetCommit struct {
	Offset       uint64
	Metadata     string
	CommitTimeMs int64
}

// PartitionOffset is one entry of GroupOffsets.
type PartitionOffset struct {
	Topic     string
	Partition uint32
	OffsetCommit
}

// Topic is one entry of Topics: a name and its server-encoded config.
type Topic struct {
	Name   string
	Config []byte
}

// appendOffsetValue appends the encoding of c to dst.
func appendOffsetValue(dst []byte, c OffsetCommit) []byte {
	dst = append(dst, offsetValueVersion)
	dst = binary.LittleEndian.AppendUint64(dst, c.Offset)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(c.CommitTimeMs))
	dst = binary.AppendVarint(dst, int64(len(c.Metadata)))
	return append(dst, c.Metadata...)
}

// parseOffsetValue decodes a value written by appendOffsetValue.
func parseOffsetValue(src []byte) (c OffsetCommit, err error) {
	d := proto.NewDecoder(src)
	version := d.U8()
	c.Offset = d.U64()
	c.CommitTimeMs = d.I64()
	n := d.Varint()
	if n < 0 {
		return c, fmt.Errorf("%w: offset metadata length %d", ErrCorrupt, n)
	}
	c.Metadata = string(d.Bytes(int(n)))
	switch {
	case d.Err() != nil:
		return c, fmt.Errorf("%w: offset value: %v", ErrCorrupt, d.Err())
	case version != offsetValueVersion:
		return c, fmt.Errorf("%w: offset value version %d", ErrVersion, version)
	case d.Len() != 0:
		return c, fmt.Errorf("%w: %d trailing bytes in offset value", ErrCorrupt, d.Len())
	}
	return c, nil
}

// appendOffsetKey appends the key of (group, topic, partition) to dst.
func appendOffsetKey(dst []byte, group, topic string, partition uint32) []byte {
	dst = append(dst, OffsetKeyPrefix...)
	dst = append(dst, group...)
	dst = append(dst, 0)
	dst = append(dst, topic...)
	dst = append(dst, 0)
	return binary.BigEndian.AppendUint32(dst, partition)
}

// parseOffsetKey splits a key written by appendOffsetKey.
func parseOffsetKey(key string) (group, topic string, partition uint32, err error) {
	rest, ok := strings.CutPrefix(key, OffsetKeyPrefix)
	group, rest, ok2 := strings.Cut(rest, "\x00")
	topic, rest, ok3 := strings.Cut(rest, "\x00")
	if !ok || !ok2 || !ok3 || group == "" || topic == "" || len(rest) != 4 {
		return "", "", 0, fmt.Errorf("%w: malformed offset key %q", ErrCorrupt, key)
	}
	return group, topic, binary.BigEndian.Uint32([]byte(rest)), nil
}

// checkEntry validates a put read back from disk whose key is under a typed
// prefix, so that the typed readers never meet a value they cannot decode.
func checkEntry(r record) error {
	key := string(r.key)
	switch {
	case strings.HasPrefix(key, OffsetKeyPrefix):
		if _, _, _, err := parseOffsetKey(key); err != nil {
			return err
		}
		_, err := parseOffsetValue(r.value)
		return err
	case strings.HasPrefix(key, TopicKeyPrefix):
		if checkName(key[len(TopicKeyPrefix):]) != nil {
			return fmt.Errorf("%w: malformed topic key %q", ErrCorrupt, key)
		}
	}
	return nil
}

func checkName(name string) error {
	if name == "" || strings.IndexByte(name, 0) >= 0 {
		return fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	return nil
}

func offsetKey(group, topic string, partition uint32) (string, error) {
	if err := checkName(group); err != nil {
		return "", err
	}
	if err := checkName(topic); err != nil {
		return "", err
	}
	key := string(appendOffsetKey(nil, group, topic, partition))
	if len(key) > MaxKeySize {
		return "", ErrTooLarge
	}
	return key, nil
}

// CommitOffset records group's committed offset for topic/partition.
func (s *Store) CommitOffset(group, topic string, partition uint32, c OffsetCommit) error {
	key, err := offsetKey(group, topic, partition)
	if err != nil {
		return err
	}
	value := appendOffsetValue(nil, c)
	if len(value) > MaxValueSize {
		return ErrTooLarge
	}
	return s.write(mutation{opPut, key, value})
}

// FetchOffset returns group's committed offset for topic/partition.
func (s *Store) FetchOffset(group, topic string, partition uint32) (OffsetCommit, bool) {
	key, err := offsetKey(group, topic, partition)
	if err != nil {
		return OffsetCommit{}, false
	}
	s.mu.Lock()
	v, ok := s.t.m[key]
	s.mu.Unlock()
	if !ok {
		return OffsetCommit{}, false
	}
	return mustParseOffsetValue(key, v), true
}

// mustParseOffsetValue decodes a stored offset value. Open validated every
// one read from disk and CommitOffset writes only valid ones.
func mustParseOffsetValue(key string, v []byte) OffsetCommit {
	c, err := parseOffsetValue(v)
	if err != nil {
		panic(fmt.Sprintf("BUG: metalog: stored offset value for %q: %v", key, err))
	}
	return c
}

// DeleteOffset removes group's committed offset for topic/partition.
func (s *Store) DeleteOffset(group, topic string, partition uint32) error {
	key, err := offsetKey(group, topic, partition)
	if err != nil {
		return err
	}
	return s.write(mutation{op: opDelete, key: key})
}

// DeleteGroup removes every committed offset of group in one log write.
// A crash during that write may leave a prefix of the deletes applied.
func (s *Store) DeleteGroup(group string) error {
	if err := checkName(group); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	entries := s.t.collect(nil, OffsetKeyPrefix+group+"\x00")
	ms := make([]mutation, len(entries))
	for i, e := range entries {
		ms[i] = mutation{op: opDelete, key: e.key}
	}
	return s.writeLocked(ms)
}

// ListGroups returns the groups that have committed offsets, sorted.
func (s *Store) ListGroups() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var groups []string
	for i := s.t.seek(OffsetKeyPrefix); i < len(s.t.keys); {
		key := s.t.keys[i]
		if !strings.HasPrefix(key, OffsetKeyPrefix) {
			break
		}
		group, _, _ := strings.Cut(key[len(OffsetKeyPrefix):], "\x00")
		groups = append(groups, group)
		// Skip the group's other keys: 0x01 sorts right after the separator.
		i = s.t.seek(OffsetKeyPrefix + group + "\x01")
	}
	return groups
}

// GroupOffsets returns group's committed offsets ordered by topic, then
// partition.
func (s *Store) GroupOffsets(group string) []PartitionOffset {
	if checkName(group) != nil {
		return nil
	}
	var out []PartitionOffset
	s.Range(OffsetKeyPrefix+group+"\x00", func(key string, v []byte) bool {
		_, topic, partition, err := parseOffsetKey(key)
		if err != nil {
			panic(fmt.Sprintf("BUG: metalog: stored offset key: %v", err))
		}
		out = append(out, PartitionOffset{topic, partition, mustParseOffsetValue(key, v)})
		return true
	})
	return out
}

// PutTopic stores a topic's config, a topic record encoded by
// AppendTopicRecord (the store does not look inside it).
func (s *Store) PutTopic(name string, config []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	key := TopicKeyPrefix + name
	if len(key) > MaxKeySize || len(config) > MaxValueSize {
		return ErrTooLarge
	}
	return s.write(mutation{opPut, key, config})
}

// TopicConfig returns a copy of a topic's config.
func (s *Store) TopicConfig(name string) ([]byte, bool) {
	if checkName(name) != nil {
		return nil, false
	}
	return s.Get(TopicKeyPrefix + name)
}

// DeleteTopic removes a topic's config. Committed offsets for the topic
// are left to the caller (DeleteOffset).
func (s *Store) DeleteTopic(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	return s.write(mutation{op: opDelete, key: TopicKeyPrefix + name})
}

// Topics returns every topic, sorted by name. Configs are shared with the
// store and must not be modified.
func (s *Store) Topics() []Topic {
	var out []Topic
	s.Range(TopicKeyPrefix, func(key string, v []byte) bool {
		out = append(out, Topic{Name: key[len(TopicKeyPrefix):], Config: v})
		return true
	})
	return out
}
