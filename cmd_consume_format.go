package main

// Output formats of ringmq consume: format strings in the kcat/rpk style
// and JSON, with keys and values encoded as text, base64 or hex.

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ringmq/ringmq/client"
)

// encoding is how key, value and header value bytes are written.
type encoding uint8

const (
	encText   encoding = iota // as they are (JSON: invalid UTF-8 becomes U+FFFD)
	encBase64                 // standard base64, padded
	encHex                    // lower-case hex
)

func parseEncoding(s string) (encoding, error) {
	switch s {
	case "text":
		return encText, nil
	case "base64":
		return encBase64, nil
	case "hex":
		return encHex, nil
	}
	return 0, fmt.Errorf("--encoding must be text, base64 or hex, not %q", s)
}

// appendEncoded appends b in enc.
func appendEncoded(dst, b []byte, enc encoding) []byte {
	switch enc {
	case encBase64:
		return base64.StdEncoding.AppendEncode(dst, b)
	case encHex:
		return hex.AppendEncode(dst, b)
	}
	return append(dst, b...)
}

// A format string is text with verbs, as kcat's -f and rpk's --format:
//
//	%t topic   %p partition   %o offset   %T timestamp (ms; %T{rfc3339}, %T{unix} seconds)
//	%k key     %v value (%s too)   %h headers as k=v,k2=v2
//	%K %V      key and value length in bytes   %H number of headers   %% a percent sign
//
// %k, %v and %h take {text}, {base64} or {hex} (default: --encoding);
// \n, \t, \r and \\ are escapes. Nothing is added: end the format with
// \n for one record a line. A null key or value prints as nothing.
type recordFormat []formatPiece

type formatPiece struct {
	verb byte   // 0 for literal text
	lit  string // the literal text
	enc  encoding
	ts   tsStyle
}

type tsStyle uint8

const (
	tsMillis tsStyle = iota
	tsRFC3339
	tsUnix
)

const formatVerbs = "tpoTkvshKVH"

// parseFormat compiles a format string; enc is the default encoding of
// %k, %v and %h.
func parseFormat(s string, enc encoding) (recordFormat, error) {
	var f recordFormat
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			f = append(f, formatPiece{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			switch s[i] {
			case 'n':
				lit.WriteByte('\n')
			case 't':
				lit.WriteByte('\t')
			case 'r':
				lit.WriteByte('\r')
			case '\\':
				lit.WriteByte('\\')
			default:
				return nil, fmt.Errorf("--format: unknown escape \\%c (known: \\n \\t \\r \\\\)", s[i])
			}
		case c == '%' && i+1 < len(s) && s[i+1] == '%':
			lit.WriteByte('%')
			i++
		case c == '%':
			if i+1 >= len(s) || !strings.ContainsRune(formatVerbs, rune(s[i+1])) {
				return nil, fmt.Errorf("--format: %q at byte %d is not a verb (known: %%t %%p %%o %%T %%k %%v %%s %%h %%K %%V %%H %%%%)", s[i:min(i+2, len(s))], i)
			}
			flush()
			p := formatPiece{verb: s[i+1], enc: enc}
			i++
			if i+1 < len(s) && s[i+1] == '{' {
				end := strings.IndexByte(s[i+1:], '}')
				if end < 0 {
					return nil, fmt.Errorf("--format: unclosed { after %%%c", p.verb)
				}
				if err := p.modify(s[i+2 : i+1+end]); err != nil {
					return nil, err
				}
				i += end + 1
			}
			f = append(f, p)
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return f, nil
}

// modify applies a {modifier} to the verb.
func (p *formatPiece) modify(m string) error {
	switch p.verb {
	case 'k', 'v', 's', 'h':
		enc, err := parseEncoding(m)
		if err != nil {
			return fmt.Errorf("--format: %%%c{%s}: want {text}, {base64} or {hex}", p.verb, m)
		}
		p.enc = enc
		return nil
	case 'T':
		switch m {
		case "ms":
			p.ts = tsMillis
		case "rfc3339":
			p.ts = tsRFC3339
		case "unix":
			p.ts = tsUnix
		default:
			return fmt.Errorf("--format: %%T{%s}: want {ms}, {rfc3339} or {unix}", m)
		}
		return nil
	}
	return fmt.Errorf("--format: %%%c takes no {%s}", p.verb, m)
}

// appendRecord appends r formatted by f.
func (f recordFormat) appendRecord(dst []byte, r *client.Record) []byte {
	for i := range f {
		p := &f[i]
		switch p.verb {
		case 0:
			dst = append(dst, p.lit...)
		case 't':
			dst = append(dst, r.Topic...)
		case 'p':
			dst = strconv.AppendUint(dst, uint64(r.Partition), 10)
		case 'o':
			dst = strconv.AppendUint(dst, r.Offset, 10)
		case 'T':
			dst = appendTimestamp(dst, r.Timestamp, p.ts)
		case 'k':
			dst = appendEncoded(dst, r.Key, p.enc)
		case 'v', 's':
			dst = appendEncoded(dst, r.Value, p.enc)
		case 'h':
			for j, h := range r.Headers {
				if j > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, h.Key...)
				dst = append(dst, '=')
				dst = appendEncoded(dst, h.Value, p.enc)
			}
		case 'K':
			dst = strconv.AppendInt(dst, int64(len(r.Key)), 10)
		case 'V':
			dst = strconv.AppendInt(dst, int64(len(r.Value)), 10)
		case 'H':
			dst = strconv.AppendInt(dst, int64(len(r.Headers)), 10)
		}
	}
	return dst
}

func appendTimestamp(dst []byte, ts time.Time, style tsStyle) []byte {
	switch style {
	case tsRFC3339:
		return ts.UTC().AppendFormat(dst, time.RFC3339Nano)
	case tsUnix:
		return strconv.AppendInt(dst, ts.Unix(), 10)
	}
	return strconv.AppendInt(dst, ts.UnixMilli(), 10)
}

// consoleFormat builds the format of the Kafka console consumer's
// print.* properties: the fields asked for, then the value, separated by
// sep (which may use the format's escapes), one record a line (CreateTime:MS, Partition:P, Offset:O, headers,
// key).
func consoleFormat(sep string, timestamp, partition, offset, headers, key bool) string {
	var parts []string
	if timestamp {
		parts = append(parts, "CreateTime:%T")
	}
	if partition {
		parts = append(parts, "Partition:%p")
	}
	if offset {
		parts = append(parts, "Offset:%o")
	}
	if headers {
		parts = append(parts, "%h")
	}
	if key {
		parts = append(parts, "%k")
	}
	parts = append(parts, "%v")
	esc := strings.ReplaceAll(sep, "%", "%%") // escapes such as \t stay escapes
	return strings.Join(parts, esc) + `\n`
}

// appendJSONRecord appends r as one JSON object:
//
//	{"topic":"t","partition":0,"offset":7,"timestamp":1700000000000,
//	 "key":null,"value":"text","headers":[{"key":"k","value":"v"}]}
//
// key or value is null when null; header keys are text, and keys, values
// and header values are written in enc: with base64 or hex any bytes
// round-trip, with text invalid UTF-8 becomes U+FFFD, as encoding/json
// does.
func appendJSONRecord(dst []byte, r *client.Record, enc encoding) []byte {
	dst = append(dst, `{"topic":`...)
	dst = appendJSONString(dst, r.Topic)
	dst = append(dst, `,"partition":`...)
	dst = strconv.AppendUint(dst, uint64(r.Partition), 10)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendUint(dst, r.Offset, 10)
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
	dst = append(dst, `,"key":`...)
	dst = appendJSONBytes(dst, r.Key, enc)
	dst = append(dst, `,"value":`...)
	dst = appendJSONBytes(dst, r.Value, enc)
	dst = append(dst, `,"headers":[`...)
	for i, h := range r.Headers {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"key":`...)
		dst = appendJSONString(dst, h.Key)
		dst = append(dst, `,"value":`...)
		dst = appendJSONBytes(dst, h.Value, enc)
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

// appendJSONBytes appends b as a JSON string in enc, or null for nil.
func appendJSONBytes(dst, b []byte, enc encoding) []byte {
	switch {
	case b == nil:
		return append(dst, "null"...)
	case enc == encText:
		return appendJSONString(dst, b)
	}
	dst = append(dst, '"')
	dst = appendEncoded(dst, b, enc) // base64 and hex need no escaping
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted and escaped as a JSON string.
func appendJSONString[S string | []byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = appendJSONEscape(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune([]byte(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

func appendJSONEscape(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\n':
		return append(dst, `\n`...)
	case '\r':
		return append(dst, `\r`...)
	case '\t':
		return append(dst, `\t`...)
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}
