package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"testing"
)

const goldenBatchV1Path = "testdata/batch_v1.hex"

// readGoldenV1 returns the version-1 golden batch, written by the last
// version-1 BatchBuilder (the same records as goldenBatch).
func readGoldenV1(t testing.TB) []byte {
	t.Helper()
	text, err := os.ReadFile(goldenBatchV1Path)
	if err != nil {
		t.Fatal(err)
	}
	data, err := parseHexFile(string(text))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestConvertGoldenBatchV1: the version-1 golden batch converts to exactly
// the version-2 golden batch, and is refused as a version-2 batch with
// ErrBatchVersion.
func TestConvertGoldenBatchV1(t *testing.T) {
	v1 := readGoldenV1(t)
	h, err := ParseBatchV1(v1)
	if err != nil {
		t.Fatal(err)
	}
	if h.RecordCount != 4 || h.ProducerID != 42 || h.Size() != len(v1) {
		t.Fatalf("version-1 header %+v", h)
	}
	v2, n, err := ConvertBatchV1([]byte("prefix"), v1, NoLeaderEpoch)
	if err != nil || n != len(v1) {
		t.Fatalf("ConvertBatchV1: %d bytes, %v", n, err)
	}
	if !bytes.Equal(v2[6:], goldenBatch()) || string(v2[:6]) != "prefix" {
		t.Fatalf("converted batch differs from the version-2 golden batch:\n%x\n%x", v2[6:], goldenBatch())
	}
	if len(v2)-6-len(v1) != BatchHeaderSize-BatchHeaderSizeV1 {
		t.Fatalf("converted batch is %d bytes, version 1 %d", len(v2)-6, len(v1))
	}
	if _, _, err := ValidateBatch(v1); !errors.Is(err, ErrBatchVersion) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ValidateBatch(version 1) = %v, want ErrBatchVersion", err)
	}
	epoch, _, _ := ConvertBatchV1(nil, v1, 7)
	if h2, _, err := ValidateBatch(epoch); err != nil || h2.LeaderEpoch != 7 {
		t.Fatalf("epoch 7: %+v %v", h2, err)
	}
}

// TestConvertBatchV1Codecs: each version-1 codec number maps to the
// version-2 codec of the same stream, and the records still decompress.
func TestConvertBatchV1Codecs(t *testing.T) {
	for v1Codec, want := range v1Codecs {
		v2 := CompressBatch(nil, goldenBatch(), want)
		// Rebuild the version-2 batch as version 1 wrote it.
		v1 := make([]byte, BatchHeaderSizeV1, BatchHeaderSizeV1+len(v2))
		v1 = append(v1, v2[BatchHeaderSize:]...)
		le := binary.LittleEndian
		le.PutUint32(v1[8:], uint32(len(v1)-12))
		v1[v1OffMagic] = BatchMagicV1
		le.PutUint16(v1[v1OffAttributes:], uint16(v1Codec))
		le.PutUint32(v1[19:], 3)
		le.PutUint64(v1[23:], 1_700_000_000_000)
		le.PutUint64(v1[31:], 1_700_000_001_000)
		le.PutUint64(v1[39:], 42)
		le.PutUint16(v1[47:], 3)
		le.PutUint32(v1[49:], 7)
		le.PutUint32(v1[53:], 4)
		le.PutUint32(v1[v1OffCRC:], CRC32C(v1[v1OffAttributes:]))
		got, _, err := ConvertBatchV1(nil, v1, NoLeaderEpoch)
		if err != nil {
			t.Fatalf("codec %d: %v", v1Codec, err)
		}
		if !bytes.Equal(got, v2) {
			t.Fatalf("version-1 codec %d: converted\n%x\nwant %v batch\n%x", v1Codec, got, want, v2)
		}
		records, err := DecompressRecords(nil, got)
		if err != nil || !bytes.Equal(records, goldenBatch()[BatchHeaderSize:]) {
			t.Fatalf("version-1 codec %d: records %v", v1Codec, err)
		}
	}
}

// FuzzConvertBatchV1: any input either fails with ErrCorrupt or
// ErrShortBatch, or converts to a valid version-2 batch holding the same
// records section.
func FuzzConvertBatchV1(f *testing.F) {
	f.Add(readGoldenV1(f))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := data[:len(data):len(data)]
		out, n, err := ConvertBatchV1(nil, in, 0)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrShortBatch) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		h, rest, err := ValidateBatch(out)
		if err != nil || len(rest) != 0 || h.LeaderEpoch != 0 {
			t.Fatalf("converted batch does not validate: %+v %v", h, err)
		}
		if !bytes.Equal(BatchRecords(out, &h), in[BatchHeaderSizeV1:n]) {
			t.Fatal("records section changed in the conversion")
		}
	})
}
