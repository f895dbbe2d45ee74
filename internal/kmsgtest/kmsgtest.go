// Package kmsgtest encodes and decodes Kafka RecordBatch v2 with an
// implementation independent of ringmq's: github.com/twmb/franz-go/pkg/kmsg
// for the batch and record layout, and each codec's stock library for the
// compression (the standard library's compress/gzip, golang/snappy with
// the xerial framing spelled out here, pierrec/lz4 frames, klauspost zstd).
// It imports nothing of ringmq's, so proto's own tests can use it. Tests
// only.
package kmsgtest

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka's codec numbers (attributes bits 0-2).
const (
	None   = 0
	Gzip   = 1
	Snappy = 2
	LZ4    = 3
	Zstd   = 4
)

// Codecs lists every codec with its name.
var Codecs = []struct {
	Name  string
	Codec int16
}{{"none", None}, {"gzip", Gzip}, {"snappy", Snappy}, {"lz4", LZ4}, {"zstd", Zstd}}

// Record is one record of a batch, as an application sees it.
type Record struct {
	TimestampDelta int64
	Key, Value     []byte // nil: null
	Headers        []kmsg.Header
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Batch encodes recs as one RecordBatch v2 with codec, as a Kafka producer
// sends it: base offset 0, partition leader epoch -1, no producer id.
func Batch(codec int16, firstTimestamp int64, recs []Record) ([]byte, error) {
	var section []byte
	maxTS := firstTimestamp
	for i, r := range recs {
		kr := kmsg.Record{TimestampDelta64: r.TimestampDelta, OffsetDelta: int32(i), Key: r.Key, Value: r.Value, Headers: r.Headers}
		body := kr.AppendTo(nil) // with Length 0, a one-byte varint
		kr.Length = int32(len(body) - 1)
		section = kr.AppendTo(section)
		maxTS = max(maxTS, firstTimestamp+r.TimestampDelta)
	}
	section, err := compress(codec, section)
	if err != nil {
		return nil, err
	}
	rb := kmsg.RecordBatch{
		FirstOffset: 0, Length: int32(49 + len(section)), PartitionLeaderEpoch: -1, Magic: 2,
		Attributes: codec, LastOffsetDelta: int32(len(recs) - 1), FirstTimestamp: firstTimestamp,
		MaxTimestamp: maxTS, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(len(recs)), Records: section,
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b, nil
}

// Decode reads one whole RecordBatch v2 with kmsg, checks its length, magic
// and CRC, decompresses its records and decodes them with kmsg.
func Decode(b []byte) (kmsg.RecordBatch, []kmsg.Record, error) {
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b); err != nil {
		return rb, nil, err
	}
	switch {
	case int(rb.Length)+12 != len(b):
		return rb, nil, fmt.Errorf("length %d for %d bytes", rb.Length, len(b))
	case rb.Magic != 2:
		return rb, nil, fmt.Errorf("magic %d", rb.Magic)
	case uint32(rb.CRC) != crc32.Checksum(b[21:], castagnoli):
		return rb, nil, errors.New("crc mismatch")
	}
	section, err := decompress(rb.Attributes&7, rb.Records)
	if err != nil {
		return rb, nil, err
	}
	var recs []kmsg.Record
	for len(section) > 0 {
		n, k := binary.Varint(section)
		if k <= 0 || n < 0 || int64(len(section)-k) < n {
			return rb, nil, fmt.Errorf("record %d: bad length", len(recs))
		}
		var r kmsg.Record
		if err := r.ReadFrom(section[:k+int(n)]); err != nil {
			return rb, nil, fmt.Errorf("record %d: %w", len(recs), err)
		}
		recs = append(recs, r)
		section = section[k+int(n):]
	}
	if len(recs) != int(rb.NumRecords) {
		return rb, nil, fmt.Errorf("%d records, header says %d", len(recs), rb.NumRecords)
	}
	return rb, recs, nil
}

func compress(codec int16, src []byte) ([]byte, error) {
	var buf bytes.Buffer
	switch codec {
	case None:
		return src, nil
	case Gzip:
		w := gzip.NewWriter(&buf)
		w.Write(src)
		err := w.Close()
		return buf.Bytes(), err
	case Snappy: // xerial framing, one chunk per 32 KiB
		buf.WriteString("\x82SNAPPY\x00")
		binary.Write(&buf, binary.BigEndian, [2]int32{1, 1})
		for len(src) > 0 {
			chunk := snappy.Encode(nil, src[:min(len(src), 32<<10)])
			src = src[min(len(src), 32<<10):]
			binary.Write(&buf, binary.BigEndian, int32(len(chunk)))
			buf.Write(chunk)
		}
		return buf.Bytes(), nil
	case LZ4:
		w := lz4.NewWriter(&buf)
		w.Write(src)
		err := w.Close()
		return buf.Bytes(), err
	case Zstd:
		e, err := zstd.NewWriter(nil)
		if err != nil {
			return nil, err
		}
		defer e.Close()
		return e.EncodeAll(src, nil), nil
	}
	return nil, fmt.Errorf("codec %d", codec)
}

func decompress(codec int16, src []byte) ([]byte, error) {
	switch codec {
	case None:
		return src, nil
	case Gzip:
		r, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(r)
	case Snappy:
		if !bytes.HasPrefix(src, []byte("\x82SNAPPY\x00")) {
			return snappy.Decode(nil, src)
		}
		var out []byte
		for src = src[16:]; len(src) > 0; {
			if len(src) < 4 {
				return nil, errors.New("short xerial chunk")
			}
			n := int(binary.BigEndian.Uint32(src))
			if n > len(src)-4 {
				return nil, errors.New("xerial chunk past the end")
			}
			chunk, err := snappy.Decode(nil, src[4:4+n])
			if err != nil {
				return nil, err
			}
			out, src = append(out, chunk...), src[4+n:]
		}
		return out, nil
	case LZ4:
		return io.ReadAll(lz4.NewReader(bytes.NewReader(src)))
	case Zstd:
		d, err := zstd.NewReader(nil)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		return d.DecodeAll(src, nil)
	}
	return nil, fmt.Errorf("codec %d", codec)
}

// Sample is a set of records exercising null and empty keys and values,
// headers (one with a null value), negative and large timestamp deltas.
func Sample() []Record {
	recs := []Record{
		{0, []byte("user-1"), []byte("created"), nil},
		{250, nil, []byte("no key"), []kmsg.Header{{Key: "trace", Value: []byte("a1b2")}}},
		{-10, []byte{}, nil, []kmsg.Header{{Key: "k", Value: []byte("v")}, {Key: "null", Value: nil}}},
		{1 << 40, []byte("user-2"), []byte{}, nil},
	}
	for i := 0; i < 200; i++ {
		recs = append(recs, Record{int64(i), []byte(fmt.Sprintf("key-%d", i%7)),
			bytes.Repeat([]byte(fmt.Sprintf("value %d ", i)), 1+i%50), nil})
	}
	return recs
}
