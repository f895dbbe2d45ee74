package proto

import (
	"encoding/binary"
	"fmt"
	"math"
)

// MaxStringLen is the longest string or name a message can carry (u16
// length). Encoders panic on longer ones: callers validate user input first.
const MaxStringLen = math.MaxUint16

// Append-style primitives shared by every message encoder.

func appendU8(dst []byte, v uint8) []byte   { return append(dst, v) }
func appendI8(dst []byte, v int8) []byte    { return append(dst, uint8(v)) }
func appendU16(dst []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(dst, v) }
func appendI16(dst []byte, v int16) []byte  { return appendU16(dst, uint16(v)) }
func appendU32(dst []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(dst, v) }
func appendU64(dst []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(dst, v) }
func appendI64(dst []byte, v int64) []byte  { return appendU64(dst, uint64(v)) }

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}

func appendString16(dst []byte, s string) []byte {
	if len(s) > MaxStringLen {
		panic(fmt.Sprintf("BUG: proto: string of %d bytes exceeds %d", len(s), MaxStringLen))
	}
	dst = appendU16(dst, uint16(len(s)))
	return append(dst, s...)
}

func appendBytes16(dst, b []byte) []byte {
	if len(b) > MaxStringLen {
		panic(fmt.Sprintf("BUG: proto: name of %d bytes exceeds %d", len(b), MaxStringLen))
	}
	dst = appendU16(dst, uint16(len(b)))
	return append(dst, b...)
}

func appendBytes32(dst, b []byte) []byte {
	dst = appendU32(dst, checkedU32(len(b)))
	return append(dst, b...)
}

func appendArrayLen(dst []byte, n int) []byte { return appendU32(dst, checkedU32(n)) }

func checkedU32(n int) uint32 {
	if n < 0 || uint64(n) > math.MaxUint32 {
		panic(fmt.Sprintf("BUG: proto: length %d does not fit a u32", n))
	}
	return uint32(n)
}

// grow returns s resliced to n elements. Within its capacity it keeps the
// old elements, so their own slices are reused by the decoder that
// overwrites every field; beyond it, it extends s with zero elements.
func grow[T any](s []T, n int) []T {
	if n <= cap(s) {
		return s[:n]
	}
	return append(s[:cap(s)], make([]T, n-cap(s))...)
}
