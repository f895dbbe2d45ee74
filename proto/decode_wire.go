package proto

import (
	"errors"
	"fmt"
)

// ErrMalformed marks a message body that does not decode: an impossible
// count, a bad boolean, or bytes left over after the last field.
var ErrMalformed = errors.New("proto: malformed message")

// Wire-format reads for message bodies (see the package doc). Like the
// other Decoder reads they keep the first error and never read past the
// input.

// I8 reads an int8.
func (d *Decoder) I8() int8 { return int8(d.u8()) }

// I16 reads an int16.
func (d *Decoder) I16() int16 { return int16(d.U16()) }

// Bool reads a u8 that must be 0 or 1.
func (d *Decoder) Bool() bool {
	v := d.u8()
	if v > 1 {
		d.fail(fmt.Errorf("%w: bool %d", ErrMalformed, v))
	}
	return v == 1
}

// Bytes16 reads a u16 length and that many bytes, aliasing the input.
func (d *Decoder) Bytes16() []byte { return d.take(int(d.U16())) }

// String16 reads a u16 length and that many bytes as a string (allocates).
func (d *Decoder) String16() string { return string(d.Bytes16()) }

// Bytes32 reads a u32 length and that many bytes, aliasing the input.
func (d *Decoder) Bytes32() []byte {
	n := d.U32()
	if d.err == nil && uint64(n) > uint64(len(d.b)) {
		d.fail(fmt.Errorf("%w: %d bytes declared, %d left", ErrShortBuffer, n, len(d.b)))
		return nil
	}
	return d.take(int(n))
}

// ArrayLen reads a u32 element count. Each element takes at least minSize
// bytes, so a count the remaining input cannot hold fails before the caller
// allocates anything for it.
func (d *Decoder) ArrayLen(minSize int) int {
	n := d.U32()
	if d.err != nil {
		return 0
	}
	if minSize < 1 {
		panic("BUG: proto: ArrayLen with minSize < 1")
	}
	if uint64(n) > uint64(len(d.b)/minSize) {
		d.fail(fmt.Errorf("%w: count %d cannot fit in %d bytes", ErrMalformed, n, len(d.b)))
		return 0
	}
	return int(n)
}

// End fails with ErrMalformed if input is left, and returns the first error.
// Message decoders call it last.
func (d *Decoder) End() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(d.b)))
	}
	return d.err
}
