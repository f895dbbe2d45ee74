package proto

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Compressed records sections, as Kafka stores them. A batch's codec bits
// (attributes bits 0-2) say how its records section — the bytes after the
// 61-byte header — is stored. The header is never compressed, record_count
// and the timestamps describe the uncompressed records, and the CRC covers
// the stored (compressed) bytes, so the broker checks a batch's integrity
// without decompressing it. Each codec stores one stream in the format
// Kafka's own clients write, readable with any language's stock library:
//
//	codec   bits  records section
//	none    0     the records as they are
//	gzip    1     one gzip stream (RFC 1952)
//	snappy  2     xerial framing, as Kafka's Java client writes it:
//	              "\x82SNAPPY\x00" | i32 version 1 | i32 compatible 1 |
//	              chunks of (i32 length | snappy block of up to 32 KiB input);
//	              a single raw snappy block (what some other clients and
//	              ringmq version 1 wrote) is read too
//	lz4     3     one LZ4 frame (frame format, 64 KiB blocks, no content checksum)
//	zstd    4     one zstd frame (RFC 8878, no content checksum)
//
// These formats are persisted: never change what a codec number means.
//
// Decompression never produces more than MaxDecompressedSize bytes, however
// the stream is crafted (decompression bombs fail with ErrCorrupt).
// Encoders and decoders come from sync.Pools, so steady-state compression
// and decompression allocate little beyond the caller's buffers.

// MaxDecompressedSize bounds the records section of one batch after
// decompression.
const MaxDecompressedSize = MaxBatchSize

// lz4BlockSize is the block size of the LZ4 frames CompressBatch writes.
const lz4BlockSize = lz4.Block64Kb

// CompressBatch appends to dst a copy of batch — one whole, uncompressed,
// finished batch — whose records section is compressed with codec, with
// the codec bits set and the CRC recomputed; base_offset,
// partition_leader_epoch and every other header field are kept. With CodecNone it appends batch unchanged. It
// returns the extended dst. It panics if batch is not a whole uncompressed
// batch or codec is unknown: the caller built the batch.
func CompressBatch(dst []byte, batch []byte, codec Codec) []byte {
	h, err := ParseBatchHeader(batch)
	switch {
	case err != nil:
		panic("BUG: proto: CompressBatch: " + err.Error())
	case len(batch) < h.Size() || h.Codec() != CodecNone || codec > maxKnownCodec:
		panic(fmt.Sprintf("BUG: proto: CompressBatch of %d bytes (batch %d, codec %d) to codec %d",
			len(batch), h.Size(), h.Codec(), codec))
	}
	batch = batch[:h.Size()]
	if codec == CodecNone {
		return append(dst, batch...)
	}
	start := len(dst)
	dst = append(dst, batch[:BatchHeaderSize]...)
	dst = appendCompressed(dst, BatchRecords(batch, &h), codec)
	attrs := h.Attributes&^AttrCodecMask | uint16(codec)
	out := FinishBatch(dst[start:], attrs, h.RecordCount, h.FirstTimestamp, h.MaxTimestamp,
		h.ProducerID, h.ProducerEpoch, h.BaseSequence)
	SetBaseOffset(out, h.BaseOffset)
	SetLeaderEpoch(out, h.LeaderEpoch)
	return dst
}

// DecompressRecords returns the uncompressed records section of batch (one
// whole batch; its CRC is not checked here, see ValidateBatch). For
// CodecNone it returns the section itself, aliasing batch; otherwise it
// decompresses into dst[:0], growing it as needed, and the result aliases
// that buffer. Pass the previous result's buffer back as dst to reuse it.
// A stream that does not decode, has trailing bytes, or decompresses to
// more than MaxDecompressedSize fails with ErrCorrupt.
func DecompressRecords(dst []byte, batch []byte) (records []byte, err error) {
	return decompressRecords(dst, batch, MaxDecompressedSize)
}

func decompressRecords(dst, batch []byte, limit int) ([]byte, error) {
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return nil, err
	}
	if len(batch) < h.Size() {
		return nil, ErrShortBatch
	}
	src := BatchRecords(batch, &h)
	var out []byte
	switch h.Codec() {
	case CodecNone:
		return src, nil
	case CodecGzip:
		out, err = decompressGzip(dst[:0], src, limit)
	case CodecSnappy:
		out, err = decompressSnappy(dst[:0], src, limit)
	case CodecLZ4:
		out, err = decompressLZ4(dst[:0], src, limit)
	case CodecZstd:
		out, err = decompressZstd(dst[:0], src, limit)
	default:
		panic("BUG: proto: ParseBatchHeader accepted codec " + fmt.Sprint(h.Codec()))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v records: %w", ErrCorrupt, h.Codec(), err)
	}
	return out, nil
}

// NewBatchIter returns an iterator over the records of batch (one whole
// batch, validated with ValidateBatch), decompressing into scratch when the
// batch is compressed. It returns scratch, possibly grown, for the caller to
// pass again next time. The records alias batch or scratch.
func NewBatchIter(scratch, batch []byte) (it RecordIter, newScratch []byte, err error) {
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return RecordIter{}, scratch, err
	}
	records, err := DecompressRecords(scratch, batch)
	if err != nil {
		return RecordIter{}, scratch, err
	}
	if h.Codec() != CodecNone {
		scratch = records
	}
	return NewRecordIterRecords(h, records), scratch, nil
}

// String is the codec's name: none, gzip, snappy, lz4, zstd.
func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	case CodecSnappy:
		return "snappy"
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// ParseCodec maps a codec name (as String writes it) to its Codec.
func ParseCodec(name string) (Codec, error) {
	for c := CodecNone; c <= maxKnownCodec; c++ {
		if c.String() == name {
			return c, nil
		}
	}
	return 0, fmt.Errorf("proto: unknown compression codec %q", name)
}

func appendCompressed(dst, src []byte, codec Codec) []byte {
	switch codec {
	case CodecGzip:
		return compressGzip(dst, src)
	case CodecSnappy:
		return compressSnappyXerial(dst, src)
	case CodecLZ4:
		return compressLZ4(dst, src)
	case CodecZstd:
		e := zstdEncoders.Get().(*zstd.Encoder)
		defer zstdEncoders.Put(e)
		return e.EncodeAll(src, dst)
	}
	panic(fmt.Sprintf("BUG: proto: compress with codec %d", codec))
}

// growLen returns b extended by n bytes (contents of the new bytes are
// unspecified), reallocating only when the capacity is short.
func growLen(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), 2*cap(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

// appendWriter is an io.Writer appending to a byte slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// streamCompressor is a pooled streaming encoder (gzip, lz4) writing
// into the caller's slice.
type streamCompressor struct {
	w interface {
		io.WriteCloser
		Reset(io.Writer)
	}
	out appendWriter
}

// compressStream appends src compressed by a streamCompressor from pool.
func compressStream(pool *sync.Pool, codec string, dst, src []byte) []byte {
	c := pool.Get().(*streamCompressor)
	defer pool.Put(c)
	c.out.b = dst
	c.w.Reset(&c.out)
	_, err := c.w.Write(src)
	if err == nil {
		err = c.w.Close()
	}
	if err != nil { // appendWriter never fails
		panic("BUG: proto: " + codec + " compress: " + err.Error())
	}
	dst, c.out.b = c.out.b, nil
	return dst
}

var lz4Compressors = sync.Pool{New: func() any {
	c := new(streamCompressor)
	w := lz4.NewWriter(&c.out)
	if err := w.Apply(lz4.BlockSizeOption(lz4BlockSize), lz4.ChecksumOption(false)); err != nil {
		panic("BUG: proto: lz4 writer options: " + err.Error())
	}
	c.w = w
	return c
}}

func compressLZ4(dst, src []byte) []byte { return compressStream(&lz4Compressors, "lz4", dst, src) }

type lz4Decompressor struct {
	r   *lz4.Reader
	src bytes.Reader
}

var lz4Decompressors = sync.Pool{New: func() any {
	d := new(lz4Decompressor)
	d.r = lz4.NewReader(&d.src)
	return d
}}

func decompressLZ4(dst, src []byte, limit int) ([]byte, error) {
	d := lz4Decompressors.Get().(*lz4Decompressor)
	defer lz4Decompressors.Put(d)
	d.src.Reset(src)
	d.r.Reset(&d.src)
	dst, err := readLimited(dst, d.r, limit)
	if err == nil && d.src.Len() != 0 {
		dst, err = nil, errors.New("trailing bytes after the lz4 frame")
	}
	d.src.Reset(nil) // the pool must not keep the caller's bytes
	return dst, err
}

// readLimited appends everything r yields to dst, failing once more than
// limit bytes have been read.
func readLimited(dst []byte, r io.Reader, limit int) ([]byte, error) {
	start := len(dst)
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst)-start > limit {
			return nil, fmt.Errorf("decompressed size exceeds %d bytes", limit)
		}
		switch {
		case err == io.EOF:
			return dst, nil
		case err != nil:
			return nil, err
		}
	}
}

var zstdEncoders = sync.Pool{New: func() any {
	e, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false),
		zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithLowerEncoderMem(true))
	if err != nil {
		panic("BUG: proto: zstd encoder options: " + err.Error())
	}
	return e
}}

// zstdDecoders hold decoders with a concurrency of 1, which start no
// goroutines, so a decoder the pool drops needs no Close.
var zstdDecoders = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(MaxDecompressedSize), zstd.WithDecoderMaxWindow(MaxDecompressedSize))
	if err != nil {
		panic("BUG: proto: zstd decoder options: " + err.Error())
	}
	return d
}}

func decompressZstd(dst, src []byte, limit int) ([]byte, error) {
	d := zstdDecoders.Get().(*zstd.Decoder)
	defer zstdDecoders.Put(d)
	out, err := d.DecodeAll(src, dst)
	if err != nil {
		return nil, err
	}
	if len(out) > limit {
		return nil, fmt.Errorf("decompressed size exceeds %d bytes", limit)
	}
	return out, nil
}
