package config

import (
	"bytes"
	_ "embed"
	"encoding"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Errors of this package; test for them with errors.Is.
var (
	ErrUnknownKey = errors.New("config: unknown key")
	ErrInvalid    = errors.New("config: invalid value")
	ErrSyntax     = errors.New("config: TOML syntax error")
	ErrCorrupt    = errors.New("config: corrupt topic config encoding")
)

// KeyError is a problem with one setting. Err is ErrUnknownKey or
// ErrInvalid.
type KeyError struct {
	Key    string // dotted key as in the file: "storage.flush"
	Value  string // the value as TOML writes it: `"sometimes"`, `-1`; "" for unknown keys
	Reason string // what a valid value looks like
	Err    error
}

func (e *KeyError) Error() string {
	if e.Err == ErrUnknownKey {
		return fmt.Sprintf("unknown key %q", e.Key)
	}
	return e.Key + " = " + e.Value + ": " + e.Reason
}

func (e *KeyError) Unwrap() error { return e.Err }

func invalid(key string, value any, reason string) *KeyError {
	return &KeyError{Key: key, Value: formatValue(value), Reason: reason, Err: ErrInvalid}
}

// formatValue writes v the way it would appear in a TOML file.
func formatValue(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case time.Duration:
		return strconv.Quote(v.String())
	case slog.Level:
		return strconv.Quote(strings.ToLower(v.String()))
	case encoding.TextMarshaler:
		b, err := v.MarshalText()
		if err != nil {
			return fmt.Sprint(v)
		}
		return strconv.Quote(string(b))
	case map[string]any:
		return "{...}"
	case []any, []map[string]any:
		return "[...]"
	case time.Time:
		return v.Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

type syntaxError struct {
	line int
	msg  string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }
func (e *syntaxError) Unwrap() error { return ErrSyntax }

//go:embed default.toml
var defaultTOML []byte

// DefaultTOML returns a copy of the embedded default configuration file,
// which documents every setting.
func DefaultTOML() []byte { return bytes.Clone(defaultTOML) }

// Load reads the TOML file at path over Default and validates the result.
// A missing file is an error that wraps fs.ErrNotExist; other errors are
// prefixed with path.
func Load(path string) (Config, error) {
	cfg, err := LoadUnvalidated(path)
	if err == nil {
		if err = cfg.Validate(); err != nil {
			err = fmt.Errorf("%s: %w", path, err)
		}
	}
	return cfg, err
}

// LoadUnvalidated is Load without the validation, for a caller that
// overrides settings (command-line flags) and validates the result: a
// file whose replication_factor fits the --peers given is valid although
// it names no peers itself.
func LoadUnvalidated(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	cfg := Default()
	if err := decode(&cfg, data); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes TOML text over Default and validates the result.
func Parse(data []byte) (Config, error) {
	cfg := Default()
	if err := decode(&cfg, data); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// decode sets the fields of cfg named by the keys in data, in file order,
// and stops at the first unknown key or badly typed value.
func decode(cfg *Config, data []byte) error {
	var doc map[string]any
	md, err := toml.Decode(string(data), &doc)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return &syntaxError{line: pe.Position.Line, msg: pe.Message}
		}
		return &syntaxError{msg: err.Error()}
	}
	fields := settingFields(cfg)
	for _, k := range md.Keys() {
		key := k.String()
		switch len(k) {
		case 1:
			if _, ok := fields.tables[key]; !ok {
				return &KeyError{Key: key, Err: ErrUnknownKey}
			}
			if _, ok := doc[key].(map[string]any); !ok {
				return invalid(key, doc[key], "want a table ["+key+"]")
			}
		case 2:
			f, ok := fields.keys[key]
			if !ok {
				return &KeyError{Key: key, Err: ErrUnknownKey}
			}
			table, ok := doc[k[0]].(map[string]any)
			if !ok {
				return invalid(k[0], doc[k[0]], "want a table ["+k[0]+"]")
			}
			if err := setField(key, f, table[k[1]]); err != nil {
				return err
			}
		default:
			// A deeper key sits under a setting given as a table; the
			// setting's own key came first and failed its type check.
			return &KeyError{Key: key, Err: ErrUnknownKey}
		}
	}
	return nil
}

// fieldIndex maps "table" and "table.key" to the fields of one Config.
type fieldIndex struct {
	tables map[string]struct{}
	keys   map[string]reflect.Value
}

// settingFields indexes the settings of cfg by their dotted TOML keys, from
// the struct tags of Config.
func settingFields(cfg *Config) fieldIndex {
	idx := fieldIndex{tables: map[string]struct{}{}, keys: map[string]reflect.Value{}}
	top := reflect.ValueOf(cfg).Elem()
	for i := range top.NumField() {
		table := top.Type().Field(i).Tag.Get("toml")
		idx.tables[table] = struct{}{}
		sub := top.Field(i)
		for j := range sub.NumField() {
			idx.keys[table+"."+sub.Type().Field(j).Tag.Get("toml")] = sub.Field(j)
		}
	}
	return idx
}

// Keys lists every setting's dotted key ("server.listen", ...) in the order
// of the Config struct.
func Keys() []string {
	var keys []string
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		table := t.Field(i)
		for j := range table.Type.NumField() {
			keys = append(keys, table.Tag.Get("toml")+"."+table.Type.Field(j).Tag.Get("toml"))
		}
	}
	return keys
}

// setField stores the TOML value v into the setting f, checking its type.
// Ranges are Validate's job.
func setField(key string, f reflect.Value, v any) error {
	switch p := f.Addr().Interface().(type) {
	case *string:
		s, ok := v.(string)
		if !ok {
			return invalid(key, v, "want a string")
		}
		*p = s
	case *bool:
		b, ok := v.(bool)
		if !ok {
			return invalid(key, v, "want true or false")
		}
		*p = b
	case *int:
		n, ok := v.(int64)
		if !ok {
			return invalid(key, v, "want an integer")
		}
		*p = int(n)
	case *int64:
		n, ok := v.(int64)
		if !ok {
			return invalid(key, v, "want an integer")
		}
		*p = n
	case *uint64:
		n, ok := v.(int64)
		if !ok || n < 0 {
			return invalid(key, v, "want an integer of at least 0")
		}
		*p = uint64(n)
	case *[]Peer:
		return setPeers(key, p, v)
	case *time.Duration:
		return setDuration(key, p, v)
	case *slog.Level:
		return setLevel(key, p, v)
	case encoding.TextUnmarshaler:
		s, ok := v.(string)
		if !ok {
			return invalid(key, v, "want a string")
		}
		if err := p.UnmarshalText([]byte(s)); err != nil {
			return invalid(key, v, err.Error())
		}
	default:
		panic(fmt.Sprintf("BUG: config: setting %s has unsupported type %s", key, f.Type()))
	}
	return nil
}

func setDuration(key string, p *time.Duration, v any) error {
	const want = `want a duration such as "500ms", "10s" or "1h30m"`
	s, ok := v.(string)
	if !ok {
		return invalid(key, v, want)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return invalid(key, v, want)
	}
	*p = d
	return nil
}

var levelNames = map[string]slog.Level{
	"debug": slog.LevelDebug, "info": slog.LevelInfo,
	"warn": slog.LevelWarn, "error": slog.LevelError,
}

func setLevel(key string, p *slog.Level, v any) error {
	const want = `want "debug", "info", "warn" or "error"`
	s, ok := v.(string)
	if !ok {
		return invalid(key, v, want)
	}
	l, ok := levelNames[strings.ToLower(s)]
	if !ok {
		return invalid(key, v, want)
	}
	*p = l
	return nil
}
