package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrShortBuffer is reported when a decoder runs past the end of its input.
var ErrShortBuffer = errors.New("proto: input too short")

// Decoder reads little-endian fields from a byte slice and keeps the first
// error (franz-go's kbin.Reader style): callers decode every field, then check
// Err once. After an error every read returns a zero value; no read panics
// or looks past the input.
type Decoder struct {
	b   []byte
	err error
}

// NewDecoder returns a decoder over b.
func NewDecoder(b []byte) Decoder { return Decoder{b: b} }

// Err is the first error met, or nil.
func (d *Decoder) Err() error { return d.err }

// Rest returns the bytes not yet consumed.
func (d *Decoder) Rest() []byte { return d.b }

// Len is the number of unread bytes.
func (d *Decoder) Len() int { return len(d.b) }

func (d *Decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *Decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.fail(ErrShortBuffer)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *Decoder) u8() uint8 {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

// U8 reads one byte.
func (d *Decoder) U8() uint8 { return d.u8() }

// U16 reads a uint16.
func (d *Decoder) U16() uint16 {
	if v := d.take(2); v != nil {
		return binary.LittleEndian.Uint16(v)
	}
	return 0
}

// U32 reads a uint32.
func (d *Decoder) U32() uint32 {
	if v := d.take(4); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

// U64 reads a uint64.
func (d *Decoder) U64() uint64 {
	if v := d.take(8); v != nil {
		return binary.LittleEndian.Uint64(v)
	}
	return 0
}

// I64 reads an int64.
func (d *Decoder) I64() int64 { return int64(d.U64()) }

// I32 reads an int32.
func (d *Decoder) I32() int32 { return int32(d.U32()) }

// Bytes reads n raw bytes, aliasing the input.
func (d *Decoder) Bytes(n int) []byte { return d.take(n) }

func (d *Decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(fmt.Errorf("%w: bad varint", ErrCorrupt))
		return 0
	}
	d.b = d.b[n:]
	return v
}

// Varint reads a zig-zag varint.
func (d *Decoder) Varint() int64 { return d.varint() }

// varBytes reads a varint length (-1 = nil) and that many bytes.
func (d *Decoder) varBytes() []byte {
	n := d.varint()
	if d.err != nil || n == -1 {
		return nil
	}
	if n < -1 || n > int64(len(d.b)) {
		d.fail(fmt.Errorf("%w: length %d", ErrCorrupt, n))
		return nil
	}
	return d.take(int(n))
}

// VarBytes reads a varint-length-prefixed byte string (nil for length -1).
func (d *Decoder) VarBytes() []byte { return d.varBytes() }
