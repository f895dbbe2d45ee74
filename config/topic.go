package config

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
)

// TopicConfig is a topic's overrides of the [storage] defaults, given to
// CreateTopic and kept in the metadata store. A zero field is "not
// overridden"; Resolve fills it from the server's defaults.
type TopicConfig struct {
	RetentionMs    int64       // -1: forever
	RetentionBytes int64       // -1: no limit
	SegmentBytes   int64       // MinSegmentBytes..MaxSegmentBytes
	Flush          FlushPolicy // FlushUnset: not overridden
}

// Override keys, as ParseTopicOverrides takes them and Overrides returns
// them (the [storage] keys of the same settings).
const (
	keyRetentionMs    = "retention_ms"
	keyRetentionBytes = "retention_bytes"
	keySegmentBytes   = "segment_bytes"
	keyFlush          = "flush"
)

// ParseTopicOverrides builds a TopicConfig from key/value strings (integers
// in decimal, flush as in the TOML file). Keys may also be spelled as
// Kafka does (retention.ms; see TopicKey). An unknown key, a key given in
// both spellings, a malformed number or a value out of range is a
// *KeyError naming it; keys are checked in sorted order, so the error is
// deterministic.
func ParseTopicOverrides(kv map[string]string) (TopicConfig, error) {
	var t TopicConfig
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	seen := make(map[string]string, len(keys))
	for _, k := range keys {
		canon, ok := TopicKey(k)
		if !ok {
			return TopicConfig{}, &KeyError{Key: k, Err: ErrUnknownKey}
		}
		if other, dup := seen[canon]; dup {
			return TopicConfig{}, invalid(canon, kv[k], fmt.Sprintf("given twice (as %s and %s)", other, k))
		}
		seen[canon] = k
		if err := t.set(canon, kv[k]); err != nil {
			return TopicConfig{}, err
		}
	}
	return t, nil
}

// set parses one override; a value that parses but is out of range is
// reported by the range check, not here.
func (t *TopicConfig) set(key, value string) error {
	var dst *int64
	switch key {
	case keyRetentionMs:
		dst = &t.RetentionMs
	case keyRetentionBytes:
		dst = &t.RetentionBytes
	case keySegmentBytes:
		dst = &t.SegmentBytes
	case keyFlush:
		if err := t.Flush.UnmarshalText([]byte(value)); err != nil {
			return invalid(key, value, err.Error())
		}
		return nil
	default:
		return &KeyError{Key: key, Err: ErrUnknownKey}
	}
	n, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		return invalid(key, value, "want a decimal integer")
	}
	if reason := topicIntReason(key, n); reason != "" {
		return invalid(key, n, reason)
	}
	*dst = n
	return nil
}

// Validate checks the fields that are set; zero fields pass.
func (t TopicConfig) Validate() error {
	var ck checker
	t.validate(&ck, "", true)
	return ck.err
}

// Resolve returns defaults with every field that t sets replaced by t's.
func (t TopicConfig) Resolve(defaults TopicConfig) TopicConfig {
	if t.RetentionMs != 0 {
		defaults.RetentionMs = t.RetentionMs
	}
	if t.RetentionBytes != 0 {
		defaults.RetentionBytes = t.RetentionBytes
	}
	if t.SegmentBytes != 0 {
		defaults.SegmentBytes = t.SegmentBytes
	}
	if t.Flush != FlushUnset {
		defaults.Flush = t.Flush
	}
	return defaults
}

// Overrides is the inverse of ParseTopicOverrides: the fields t sets, as
// key/value strings.
func (t TopicConfig) Overrides() map[string]string {
	kv := map[string]string{}
	if t.RetentionMs != 0 {
		kv[keyRetentionMs] = strconv.FormatInt(t.RetentionMs, 10)
	}
	if t.RetentionBytes != 0 {
		kv[keyRetentionBytes] = strconv.FormatInt(t.RetentionBytes, 10)
	}
	if t.SegmentBytes != 0 {
		kv[keySegmentBytes] = strconv.FormatInt(t.SegmentBytes, 10)
	}
	if t.Flush != FlushUnset {
		kv[keyFlush] = t.Flush.String()
	}
	return kv
}

// TopicConfig encoding, version 1, little-endian. It is the value of a
// topic's record in the metadata log, which frames it (length, CRC).
//
//	offset size field
//	     0    1 version          TopicConfigVersion
//	     1    8 retention_ms     i64, 0 = not overridden
//	     9    8 retention_bytes  i64, 0 = not overridden
//	    17    8 segment_bytes    i64, 0 = not overridden
//	    25    1 flush            FlushPolicy: 0 unset, 1 interval, 2 sync
//
// Persisted: never change these offsets or numbers; a new field needs a new
// version, and ParseTopicConfig keeps reading version 1.
const (
	TopicConfigVersion = 1
	topicConfigV1Size  = 26
)

// AppendTopicConfig appends the encoding of t to dst.
func AppendTopicConfig(dst []byte, t TopicConfig) []byte {
	dst = append(dst, TopicConfigVersion)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(t.RetentionMs))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(t.RetentionBytes))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(t.SegmentBytes))
	return append(dst, byte(t.Flush))
}

// ParseTopicConfig decodes one TopicConfig from the front of src and returns
// the bytes after it. Short input, an unknown version or values out of
// range wrap ErrCorrupt.
func ParseTopicConfig(src []byte) (TopicConfig, []byte, error) {
	if len(src) == 0 {
		return TopicConfig{}, src, fmt.Errorf("%w: empty", ErrCorrupt)
	}
	if src[0] != TopicConfigVersion {
		return TopicConfig{}, src, fmt.Errorf("%w: version %d", ErrCorrupt, src[0])
	}
	if len(src) < topicConfigV1Size {
		return TopicConfig{}, src, fmt.Errorf("%w: %d bytes, want %d", ErrCorrupt, len(src), topicConfigV1Size)
	}
	t := TopicConfig{
		RetentionMs:    int64(binary.LittleEndian.Uint64(src[1:])),
		RetentionBytes: int64(binary.LittleEndian.Uint64(src[9:])),
		SegmentBytes:   int64(binary.LittleEndian.Uint64(src[17:])),
		Flush:          FlushPolicy(src[25]),
	}
	if err := t.Validate(); err != nil {
		return TopicConfig{}, src, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return t, src[topicConfigV1Size:], nil
}

// TopicKey returns the canonical name of a topic override key given in
// either spelling: ours (retention_ms) or Kafka's (retention.ms), and false
// for an unknown key.
func TopicKey(k string) (string, bool) {
	switch k {
	case keyRetentionMs, "retention.ms":
		return keyRetentionMs, true
	case keyRetentionBytes, "retention.bytes":
		return keyRetentionBytes, true
	case keySegmentBytes, "segment.bytes":
		return keySegmentBytes, true
	case keyFlush:
		return keyFlush, true
	}
	return k, false
}
