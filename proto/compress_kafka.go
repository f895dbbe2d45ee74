package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/gzip"
)

// The two codecs whose Kafka form needs more than a stock call: gzip
// (pooled writers and readers) and snappy in xerial framing.

var gzipCompressors = sync.Pool{New: func() any {
	c := new(streamCompressor)
	w, err := gzip.NewWriterLevel(&c.out, gzip.DefaultCompression)
	if err != nil {
		panic("BUG: proto: gzip writer: " + err.Error())
	}
	c.w = w
	return c
}}

func compressGzip(dst, src []byte) []byte { return compressStream(&gzipCompressors, "gzip", dst, src) }

type gzipDecompressor struct {
	r   gzip.Reader
	src bytes.Reader
}

var gzipDecompressors = sync.Pool{New: func() any { return new(gzipDecompressor) }}

// decompressGzip reads exactly one gzip member: Kafka writes one, and a
// second one would be bytes the CRC covers but no reader expects.
func decompressGzip(dst, src []byte, limit int) ([]byte, error) {
	d := gzipDecompressors.Get().(*gzipDecompressor)
	defer gzipDecompressors.Put(d)
	d.src.Reset(src)
	defer d.src.Reset(nil) // the pool must not keep the caller's bytes
	if err := d.r.Reset(&d.src); err != nil {
		return nil, err
	}
	d.r.Multistream(false)
	dst, err := readLimited(dst, &d.r, limit)
	if err == nil && d.src.Len() != 0 {
		dst, err = nil, errors.New("trailing bytes after the gzip stream")
	}
	return dst, err
}

// xerial snappy framing (github.com/xerial/snappy-java SnappyOutputStream),
// what Kafka's Java producer writes for snappy.
const (
	xerialHeader    = "\x82SNAPPY\x00"
	xerialHeaderLen = len(xerialHeader) + 8 // magic, version, compatible version
	xerialVersion   = 1
	xerialBlockSize = 32 << 10
)

func compressSnappyXerial(dst, src []byte) []byte {
	dst = append(dst, xerialHeader...)
	dst = binary.BigEndian.AppendUint32(dst, xerialVersion)
	dst = binary.BigEndian.AppendUint32(dst, xerialVersion)
	for len(src) > 0 {
		chunk := src[:min(len(src), xerialBlockSize)]
		src = src[len(chunk):]
		n := len(dst)
		dst = growLen(dst, 4+snappy.MaxEncodedLen(len(chunk)))
		enc := snappy.Encode(dst[n+4:], chunk)
		binary.BigEndian.PutUint32(dst[n:], uint32(len(enc)))
		dst = dst[:n+4+len(enc)]
	}
	return dst
}

// decompressSnappy reads the xerial framing when src starts with its magic,
// else one raw snappy block.
func decompressSnappy(dst, src []byte, limit int) ([]byte, error) {
	if !bytes.HasPrefix(src, []byte(xerialHeader)) {
		return appendSnappyBlock(dst, src, limit)
	}
	if len(src) < xerialHeaderLen {
		return nil, errors.New("short xerial snappy header")
	}
	src = src[xerialHeaderLen:]
	start := len(dst)
	for len(src) > 0 {
		if len(src) < 4 {
			return nil, errors.New("short xerial snappy chunk length")
		}
		n := binary.BigEndian.Uint32(src)
		if uint64(n) > uint64(len(src)-4) {
			return nil, fmt.Errorf("xerial snappy chunk of %d bytes past the end", n)
		}
		var err error
		if dst, err = appendSnappyBlock(dst, src[4:4+n], limit-(len(dst)-start)); err != nil {
			return nil, err
		}
		src = src[4+n:]
	}
	return dst, nil
}

// appendSnappyBlock appends the decoding of one raw snappy block to dst.
func appendSnappyBlock(dst, block []byte, limit int) ([]byte, error) {
	n, err := snappy.DecodedLen(block)
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("decompressed size %d exceeds %d bytes", n, limit)
	}
	start := len(dst)
	dst = growLen(dst, n)
	out, err := snappy.Decode(dst[start:], block)
	if err != nil {
		return nil, err
	}
	if len(out) != n || (n > 0 && &out[0] != &dst[start]) {
		return nil, errors.New("snappy block decoded to an unexpected size")
	}
	return dst, nil
}
