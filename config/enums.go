package config

import (
	"fmt"
	"strings"
)

// FlushPolicy says when appended data reaches the disk. Its numbers are
// persisted in TopicConfig's encoding: never change them.
type FlushPolicy uint8

const (
	// FlushUnset is a TopicConfig's "not overridden"; it is invalid in a
	// Config.
	FlushUnset FlushPolicy = 0
	// FlushInterval fsyncs in the background every storage.flush_interval.
	FlushInterval FlushPolicy = 1
	// FlushSync fdatasyncs before the ack, one sync per dirty file and loop
	// turn (group commit).
	FlushSync FlushPolicy = 2
)

var flushNames = []string{FlushInterval: "interval", FlushSync: "sync"}

func (f FlushPolicy) String() string { return enumString(flushNames, uint8(f)) }

// MarshalText writes the TOML spelling ("interval", "sync").
func (f FlushPolicy) MarshalText() ([]byte, error) { return enumMarshal(flushNames, uint8(f)) }

// UnmarshalText parses the TOML spelling; the error lists the valid ones.
func (f *FlushPolicy) UnmarshalText(b []byte) error {
	return enumUnmarshal(flushNames, (*uint8)(f), b)
}

// SendZC is the [reactor] send_zc choice.
type SendZC uint8

const (
	sendZCUnset SendZC = iota
	// SendZCAuto uses zero-copy send only where it pays: large sends to
	// non-loopback peers, decided per connection.
	SendZCAuto
	// SendZCOn uses zero-copy send for every large send.
	SendZCOn
	// SendZCOff never uses zero-copy send.
	SendZCOff
)

var sendZCNames = []string{SendZCAuto: "auto", SendZCOn: "on", SendZCOff: "off"}

func (z SendZC) String() string { return enumString(sendZCNames, uint8(z)) }

// MarshalText writes the TOML spelling ("auto", "on", "off").
func (z SendZC) MarshalText() ([]byte, error) { return enumMarshal(sendZCNames, uint8(z)) }

// UnmarshalText parses the TOML spelling; the error lists the valid ones.
func (z *SendZC) UnmarshalText(b []byte) error {
	return enumUnmarshal(sendZCNames, (*uint8)(z), b)
}

// LogFormat is the [log] format of log lines.
type LogFormat uint8

const (
	logFormatUnset LogFormat = iota
	// LogText writes key=value lines (slog.TextHandler).
	LogText
	// LogJSON writes one JSON object per line (slog.JSONHandler).
	LogJSON
)

var logFormatNames = []string{LogText: "text", LogJSON: "json"}

func (l LogFormat) String() string { return enumString(logFormatNames, uint8(l)) }

// MarshalText writes the TOML spelling ("text", "json").
func (l LogFormat) MarshalText() ([]byte, error) { return enumMarshal(logFormatNames, uint8(l)) }

// UnmarshalText parses the TOML spelling; the error lists the valid ones.
func (l *LogFormat) UnmarshalText(b []byte) error {
	return enumUnmarshal(logFormatNames, (*uint8)(l), b)
}

// enumString names v, or "unset" for 0 and "unknown(v)" past the table.
func enumString(names []string, v uint8) string {
	if int(v) < len(names) && names[v] != "" {
		return names[v]
	}
	if v == 0 {
		return "unset"
	}
	return fmt.Sprintf("unknown(%d)", v)
}

func enumMarshal(names []string, v uint8) ([]byte, error) {
	if int(v) < len(names) && names[v] != "" {
		return []byte(names[v]), nil
	}
	return nil, fmt.Errorf("no name for value %d", v)
}

func enumUnmarshal(names []string, dst *uint8, b []byte) error {
	for i, name := range names {
		if name != "" && name == string(b) {
			*dst = uint8(i)
			return nil
		}
	}
	return fmt.Errorf("want %s", enumChoices(names))
}

// enumChoices lists the valid spellings: `"a", "b" or "c"`.
func enumChoices(names []string) string {
	var quoted []string
	for _, name := range names {
		if name != "" {
			quoted = append(quoted, fmt.Sprintf("%q", name))
		}
	}
	if len(quoted) == 1 {
		return quoted[0]
	}
	return strings.Join(quoted[:len(quoted)-1], ", ") + " or " + quoted[len(quoted)-1]
}

// validEnum reports whether v has a name.
func validEnum(names []string, v uint8) bool {
	return int(v) < len(names) && names[v] != ""
}
