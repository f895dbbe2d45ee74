package main

// Output formats of ringmq consume.

import (
	"strconv"
	"unicode/utf8"

	"github.com/ringmq/ringmq/client"
)

// appendJSONRecord appends r as one JSON object:
//
//	{"topic":"t","partition":0,"offset":7,"timestamp":1700000000000,
//	 "key":null,"value":"text","headers":{"k":"v"}}
//
// key is null for a null key. Keys, values and headers are JSON strings;
// bytes that are not UTF-8 become U+FFFD, as encoding/json does.
func appendJSONRecord(dst []byte, r *client.Record) []byte {
	dst = append(dst, `{"topic":`...)
	dst = appendJSONString(dst, r.Topic)
	dst = append(dst, `,"partition":`...)
	dst = strconv.AppendUint(dst, uint64(r.Partition), 10)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendUint(dst, r.Offset, 10)
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
	dst = append(dst, `,"key":`...)
	dst = appendJSONBytes(dst, r.Key)
	dst = append(dst, `,"value":`...)
	dst = appendJSONBytes(dst, r.Value)
	dst = append(dst, `,"headers":{`...)
	for i, h := range r.Headers {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, h.Key)
		dst = append(dst, ':')
		dst = appendJSONBytes(dst, h.Value)
	}
	return append(dst, "}}"...)
}

// appendJSONBytes appends b as a JSON string, or null for nil.
func appendJSONBytes(dst, b []byte) []byte {
	if b == nil {
		return append(dst, "null"...)
	}
	return appendJSONString(dst, b)
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
