package metalog

import (
	"encoding/binary"
	"fmt"

	"github.com/ringmq/ringmq/config"
)

// Topic record: the value stored under TopicKeyPrefix + name by PutTopic.
// The metadata log frames it (length, CRC); this is its body. Little-endian,
// persisted: never change these offsets or numbers. A new field needs a new
// version, and ParseTopicRecord keeps reading version 1.
//
//	offset size field
//	     0    1 version      TopicRecordVersion = 1
//	     1    4 partitions   u32, ≥ 1
//	     5   26 overrides    config.TopicConfig (config.AppendTopicConfig,
//	                         which carries its own version byte)
//
// testdata/golden/topic-v1.hex holds a record of this layout.
const (
	TopicRecordVersion = 1 // never change
	topicRecordHead    = 5 // version + partitions
)

// TopicRecord is what the metadata store keeps about one topic: its
// partition count and the overrides it was created or altered with (the
// server resolves them against its defaults when it loads the topic).
type TopicRecord struct {
	Partitions uint32
	Overrides  config.TopicConfig
}

// AppendTopicRecord appends the encoding of r to dst.
func AppendTopicRecord(dst []byte, r TopicRecord) []byte {
	dst = append(dst, TopicRecordVersion)
	dst = binary.LittleEndian.AppendUint32(dst, r.Partitions)
	return config.AppendTopicConfig(dst, r.Overrides)
}

// ParseTopicRecord decodes one topic record from the front of src and
// returns the bytes after it. Short input, an unknown version, a zero
// partition count or bad overrides wrap ErrCorrupt (ErrVersion for a
// version this code does not know).
func ParseTopicRecord(src []byte) (TopicRecord, []byte, error) {
	if len(src) == 0 {
		return TopicRecord{}, src, fmt.Errorf("%w: empty topic record", ErrCorrupt)
	}
	if src[0] != TopicRecordVersion {
		return TopicRecord{}, src, fmt.Errorf("%w: topic record version %d", ErrVersion, src[0])
	}
	if len(src) < topicRecordHead {
		return TopicRecord{}, src, fmt.Errorf("%w: topic record of %d bytes", ErrCorrupt, len(src))
	}
	r := TopicRecord{Partitions: binary.LittleEndian.Uint32(src[1:])}
	if r.Partitions == 0 {
		return TopicRecord{}, src, fmt.Errorf("%w: topic record with 0 partitions", ErrCorrupt)
	}
	o, rest, err := config.ParseTopicConfig(src[topicRecordHead:])
	if err != nil {
		return TopicRecord{}, src, fmt.Errorf("%w: topic overrides: %w", ErrCorrupt, err)
	}
	r.Overrides = o
	return r, rest, nil
}
