package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Fuzz targets for every decoder. Invariants: no panic; every failure is
// classified (ErrShortBuffer, ErrMalformed, ErrBadFrame, ErrCorrupt,
// ErrShortBatch); the input is passed with cap == len, so reading past it
// would panic; and a message that decodes re-encodes to the same bytes and
// decodes again to the same value. Seeds live in testdata/fuzz/<target>/
// and are checked by TestFuzzSeeds.

func msgTypeByName(name string) msgType {
	for _, mt := range msgTypes() {
		if mt.name == name {
			return mt
		}
	}
	panic("BUG: no message type " + name)
}

func fuzzMessage(f *testing.F, name string) {
	mt := msgTypeByName(name)
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := checkMessageRoundTrip(mt, data); err != nil {
			t.Fatal(err)
		}
	})
}

func checkMessageRoundTrip(mt msgType, data []byte) error {
	m := mt.new()
	if err := m.Decode(data[:len(data):len(data)]); err != nil {
		if !errors.Is(err, ErrShortBuffer) && !errors.Is(err, ErrMalformed) {
			return fmt.Errorf("%s: unclassified error %v", mt.name, err)
		}
		return nil
	}
	enc := m.AppendTo(nil)
	if !bytes.Equal(enc, data) {
		return fmt.Errorf("%s: re-encoding differs:\n in %x\nout %x", mt.name, data, enc)
	}
	m2 := mt.new()
	if err := m2.Decode(enc); err != nil || !reflect.DeepEqual(m, m2) {
		return fmt.Errorf("%s: second decode %v:\n%+v\n%+v", mt.name, err, m, m2)
	}
	warm := mt.new()
	for _, s := range mt.samples {
		_ = warm.Decode(s.AppendTo(nil))
	}
	if err := warm.Decode(enc); err != nil || !bytes.Equal(warm.AppendTo(nil), enc) {
		return fmt.Errorf("%s: decoding into a reused struct differs (%v)", mt.name, err)
	}
	return nil
}

func FuzzHelloRequest(f *testing.F)            { fuzzMessage(f, "HelloRequest") }
func FuzzHelloResponse(f *testing.F)           { fuzzMessage(f, "HelloResponse") }
func FuzzMetadataRequest(f *testing.F)         { fuzzMessage(f, "MetadataRequest") }
func FuzzMetadataResponse(f *testing.F)        { fuzzMessage(f, "MetadataResponse") }
func FuzzCreateTopicRequest(f *testing.F)      { fuzzMessage(f, "CreateTopicRequest") }
func FuzzCreateTopicResponse(f *testing.F)     { fuzzMessage(f, "CreateTopicResponse") }
func FuzzAlterTopicRequest(f *testing.F)       { fuzzMessage(f, "AlterTopicRequest") }
func FuzzAlterTopicResponse(f *testing.F)      { fuzzMessage(f, "AlterTopicResponse") }
func FuzzAddPartitionsRequest(f *testing.F)    { fuzzMessage(f, "AddPartitionsRequest") }
func FuzzAddPartitionsResponse(f *testing.F)   { fuzzMessage(f, "AddPartitionsResponse") }
func FuzzDeleteTopicRequest(f *testing.F)      { fuzzMessage(f, "DeleteTopicRequest") }
func FuzzDeleteTopicResponse(f *testing.F)     { fuzzMessage(f, "DeleteTopicResponse") }
func FuzzDescribeTopicRequest(f *testing.F)    { fuzzMessage(f, "DescribeTopicRequest") }
func FuzzDescribeTopicResponse(f *testing.F)   { fuzzMessage(f, "DescribeTopicResponse") }
func FuzzListGroupsRequest(f *testing.F)       { fuzzMessage(f, "ListGroupsRequest") }
func FuzzListGroupsResponse(f *testing.F)      { fuzzMessage(f, "ListGroupsResponse") }
func FuzzProduceRequest(f *testing.F)          { fuzzMessage(f, "ProduceRequest") }
func FuzzProduceResponse(f *testing.F)         { fuzzMessage(f, "ProduceResponse") }
func FuzzFetchRequest(f *testing.F)            { fuzzMessage(f, "FetchRequest") }
func FuzzFetchResponse(f *testing.F)           { fuzzMessage(f, "FetchResponse") }
func FuzzListOffsetsRequest(f *testing.F)      { fuzzMessage(f, "ListOffsetsRequest") }
func FuzzListOffsetsResponse(f *testing.F)     { fuzzMessage(f, "ListOffsetsResponse") }
func FuzzOffsetCommitRequest(f *testing.F)     { fuzzMessage(f, "OffsetCommitRequest") }
func FuzzOffsetCommitResponse(f *testing.F)    { fuzzMessage(f, "OffsetCommitResponse") }
func FuzzOffsetFetchRequest(f *testing.F)      { fuzzMessage(f, "OffsetFetchRequest") }
func FuzzOffsetFetchResponse(f *testing.F)     { fuzzMessage(f, "OffsetFetchResponse") }
func FuzzClusterStatusRequest(f *testing.F)    { fuzzMessage(f, "ClusterStatusRequest") }
func FuzzClusterStatusResponse(f *testing.F)   { fuzzMessage(f, "ClusterStatusResponse") }
func FuzzRaftMessagesRequest(f *testing.F)     { fuzzMessage(f, "RaftMessagesRequest") }
func FuzzBrokerHeartbeatRequest(f *testing.F)  { fuzzMessage(f, "BrokerHeartbeatRequest") }
func FuzzBrokerHeartbeatResponse(f *testing.F) { fuzzMessage(f, "BrokerHeartbeatResponse") }

// requestTypes maps each API to its request message type.
func requestTypes() map[APIKey]msgType {
	m := make(map[APIKey]msgType)
	for _, mt := range msgTypes() {
		if r, ok := mt.new().(Request); ok {
			m[r.APIKey()] = mt
		}
	}
	return m
}

// FuzzRequestHeader parses a frame as the reactor does, then dispatches the
// body to its request decoder.
func FuzzRequestHeader(f *testing.F) {
	reqs := requestTypes()
	f.Fuzz(func(t *testing.T, data []byte) {
		h, body, err := ParseRequestHeader(data[:len(data):len(data)])
		if err != nil {
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		n, _ := FrameLength(data)
		again := append(AppendRequestHeader(nil, h, len(body)), body...)
		if !bytes.Equal(again, data[:n]) {
			t.Fatalf("re-encoded frame differs:\n in %x\nout %x", data[:n], again)
		}
		if mt, ok := reqs[h.API]; ok && h.API.Supports(h.Version) {
			if err := checkMessageRoundTrip(mt, body); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func FuzzResponseHeader(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		h, body, err := ParseResponseHeader(data[:len(data):len(data)])
		if err != nil {
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		n, _ := FrameLength(data)
		again := append(AppendResponseHeader(nil, h, len(body)), body...)
		if !bytes.Equal(again, data[:n]) {
			t.Fatalf("re-encoded frame differs:\n in %x\nout %x", data[:n], again)
		}
	})
}

// fuzzSeeds returns the seed inputs of every fuzz target.
func fuzzSeeds() map[string][][]byte {
	seeds := make(map[string][][]byte)
	for _, mt := range msgTypes() {
		for i, s := range mt.samples {
			body := s.AppendTo(nil)
			seeds["Fuzz"+mt.name] = append(seeds["Fuzz"+mt.name], body)
			if r, ok := s.(Request); ok {
				seeds["FuzzRequestHeader"] = append(seeds["FuzzRequestHeader"], AppendRequest(nil, uint32(i+1), r))
			} else {
				frame := AppendResponse(nil, ResponseHeader{CorrelationID: uint32(i + 1)}, s)
				seeds["FuzzResponseHeader"] = append(seeds["FuzzResponseHeader"], frame)
			}
		}
	}
	seeds["FuzzResponseHeader"] = append(seeds["FuzzResponseHeader"],
		AppendResponse(nil, ResponseHeader{CorrelationID: 3, Error: UnsupportedAPI}, nil))
	lz4 := craftBatch(uint16(CodecLZ4), 1, []byte("compressed bytes"))
	seeds["FuzzParseBatch"] = [][]byte{
		goldenBatch(), sampleBatch(3), append(sampleBatch(1), sampleBatch(2)...), lz4,
	}
	return seeds
}

func seedFile(data []byte) string { return fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data) }

// TestFuzzSeeds keeps testdata/fuzz/*/seed-* equal to today's encodings of
// the sample messages, which makes the seeds a golden test of the wire
// format as well. Regenerate with -rewrite.
func TestFuzzSeeds(t *testing.T) {
	for target, inputs := range fuzzSeeds() {
		dir := filepath.Join("testdata", "fuzz", target)
		if *rewrite {
			writeSeeds(t, dir, inputs)
		}
		old, _ := filepath.Glob(filepath.Join(dir, "seed-*"))
		if len(old) != len(inputs) {
			t.Errorf("%s: %d seed files, want %d (regenerate with -rewrite)", dir, len(old), len(inputs))
		}
		for i, in := range inputs {
			got, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("seed-%d", i)))
			if err != nil || string(got) != seedFile(in) {
				t.Errorf("%s seed %d differs from today's encoding (%v): the wire format changed?", target, i, err)
			}
		}
	}
}

func writeSeeds(t *testing.T, dir string, inputs [][]byte) {
	old, _ := filepath.Glob(filepath.Join(dir, "seed-*"))
	for _, p := range old {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, in := range inputs {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d", i)), []byte(seedFile(in)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzParseBatch walks batches back to back as recovery does. A batch that
// validates and iterates is rebuilt with BatchBuilder: the rebuild always
// holds the same records, and it is byte-identical whenever the input was
// in the canonical form the builder writes. So that mutations reach the
// record decoder instead of stopping at the CRC, the first batch is also
// checked with its CRC recomputed.
func FuzzParseBatch(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := walkBatches(data[:len(data):len(data)]); err != nil {
			t.Fatal(err)
		}
		fixed := append([]byte(nil), data...)
		if h, err := ParseBatchHeader(fixed); err == nil && h.Size() <= len(fixed) {
			binary.BigEndian.PutUint32(fixed[offCRC:], CRC32C(fixed[offAttributes:h.Size()]))
			if err := walkBatches(fixed[:h.Size():h.Size()]); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func walkBatches(in []byte) error {
	for len(in) > 0 {
		h, rest, err := ValidateBatch(in)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrShortBatch) {
				return fmt.Errorf("unclassified error %v", err)
			}
			return nil
		}
		if err := checkBatchRebuild(h, in[:h.Size():h.Size()]); err != nil {
			return err
		}
		in = rest
	}
	return nil
}

type decodedRecord struct {
	ts         int64
	key, value []byte
	headers    []Header
	canonical  bool // headers parse strictly with nothing left over
}

func decodeRecords(batch []byte) ([]decodedRecord, []byte, error) {
	it, err := NewRecordIter(batch)
	if err != nil {
		return nil, nil, err
	}
	var recs []decodedRecord
	for it.Next() {
		r := it.Record()
		hs, ok := strictHeaders(r.RawHeaders, r.HeaderCount)
		if !ok {
			hs = r.Headers(nil)
		}
		recs = append(recs, decodedRecord{r.Timestamp, r.Key, r.Value, hs, ok})
	}
	return recs, it.d.b, it.Err()
}

func strictHeaders(raw []byte, n int) ([]Header, bool) {
	d := NewDecoder(raw)
	var hs []Header
	for i := 0; i < n; i++ {
		k, v := d.VarBytes(), d.VarBytes()
		if k == nil && d.Err() == nil {
			return nil, false // a null key reads back as ""
		}
		hs = append(hs, Header{Key: string(k), Value: v})
	}
	return hs, d.Err() == nil && d.Len() == 0
}

func checkBatchRebuild(h BatchHeader, batch []byte) error {
	recs, left, err := decodeRecords(batch)
	if err != nil {
		if h.Codec() == CodecNone && !errors.Is(err, ErrCorrupt) {
			return fmt.Errorf("unclassified record error %v", err)
		}
		return nil
	}
	rebuilt := rebuildBatch(h, recs)
	again, _, err := decodeRecords(rebuilt)
	if _, _, verr := ValidateBatch(rebuilt); verr != nil || err != nil || len(again) != len(recs) {
		return fmt.Errorf("rebuilt batch does not read back: %v %v", verr, err)
	}
	for i := range recs {
		a, b := recs[i], again[i]
		if a.ts != b.ts || !sameBytes(a.key, b.key) || !sameBytes(a.value, b.value) || !sameHeaders(a.headers, b.headers) {
			return fmt.Errorf("record %d changed in the rebuild: %+v -> %+v", i, a, b)
		}
	}
	if canonicalBatch(h, batch, recs, left) && !bytes.Equal(rebuilt, batch) {
		return fmt.Errorf("canonical batch rebuilt differently:\n in %x\nout %x", batch, rebuilt)
	}
	return nil
}

func sameHeaders(a, b []Header) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !sameBytes(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

func rebuildBatch(h BatchHeader, recs []decodedRecord) []byte {
	var b BatchBuilder
	b.Reset(nil)
	b.SetProducer(h.ProducerID, h.ProducerEpoch, h.BaseSequence)
	b.attrs = h.Attributes
	for _, r := range recs {
		b.Append(r.ts, r.key, r.value, r.headers)
	}
	out := b.Finish()
	SetBaseOffset(out, h.BaseOffset)
	return out
}

// canonicalBatch is an oracle independent of BatchBuilder: the header's
// timestamps are the records' first and largest, and the records section
// is exactly each record encoded with minimal varints and offset deltas
// 0, 1, 2...
func canonicalBatch(h BatchHeader, batch []byte, recs []decodedRecord, left []byte) bool {
	if len(left) != 0 || h.FirstTimestamp != recs[0].ts {
		return false
	}
	maxTS := recs[0].ts
	var section []byte
	for i, r := range recs {
		if !r.canonical {
			return false
		}
		maxTS = max(maxTS, r.ts)
		var hb []byte
		for _, hd := range r.headers {
			hb = appendVarBytes(appendVarBytes(hb, []byte(hd.Key)), hd.Value)
		}
		section = append(section, rawRecord(r.ts-h.FirstTimestamp, int64(i), r.key, r.value, int64(len(r.headers)), hb, 0)...)
	}
	return h.MaxTimestamp == maxTS && bytes.Equal(section, BatchRecords(batch, &h))
}

// The oracle must accept what the builder writes, or the byte-identity
// check above would never run.
func TestCanonicalOracleAcceptsBuilderOutput(t *testing.T) {
	for _, batch := range fuzzSeeds()["FuzzParseBatch"][:2] {
		h, _, err := ValidateBatch(batch)
		if err != nil {
			t.Fatal(err)
		}
		recs, left, err := decodeRecords(batch)
		if err != nil || !canonicalBatch(h, batch, recs, left) {
			t.Fatalf("builder output not canonical (%v)", err)
		}
		if err := checkBatchRebuild(h, batch); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.HasPrefix(seedFile([]byte{0, 'a'}), "go test fuzz v1\n[]byte(\"\\x00a\")") {
		t.Fatalf("seed file format: %q", seedFile([]byte{0, 'a'}))
	}
}

func FuzzJoinGroupRequest(f *testing.F)      { fuzzMessage(f, "JoinGroupRequest") }
func FuzzAssignmentResponse(f *testing.F)    { fuzzMessage(f, "AssignmentResponse") }
func FuzzHeartbeatRequest(f *testing.F)      { fuzzMessage(f, "HeartbeatRequest") }
func FuzzLeaveGroupRequest(f *testing.F)     { fuzzMessage(f, "LeaveGroupRequest") }
func FuzzGroupResultResponse(f *testing.F)   { fuzzMessage(f, "GroupResultResponse") }
func FuzzDescribeGroupRequest(f *testing.F)  { fuzzMessage(f, "DescribeGroupRequest") }
func FuzzDescribeGroupResponse(f *testing.F) { fuzzMessage(f, "DescribeGroupResponse") }
func FuzzDeleteGroupRequest(f *testing.F)    { fuzzMessage(f, "DeleteGroupRequest") }
func FuzzResetOffsetsRequest(f *testing.F)   { fuzzMessage(f, "ResetOffsetsRequest") }
func FuzzResetOffsetsResponse(f *testing.F)  { fuzzMessage(f, "ResetOffsetsResponse") }

func FuzzSaslHandshakeRequest(f *testing.F)     { fuzzMessage(f, "SaslHandshakeRequest") }
func FuzzSaslHandshakeResponse(f *testing.F)    { fuzzMessage(f, "SaslHandshakeResponse") }
func FuzzSaslAuthenticateRequest(f *testing.F)  { fuzzMessage(f, "SaslAuthenticateRequest") }
func FuzzSaslAuthenticateResponse(f *testing.F) { fuzzMessage(f, "SaslAuthenticateResponse") }
func FuzzAlterUserRequest(f *testing.F)         { fuzzMessage(f, "AlterUserRequest") }
func FuzzAlterUserResponse(f *testing.F)        { fuzzMessage(f, "AlterUserResponse") }
func FuzzListUsersRequest(f *testing.F)         { fuzzMessage(f, "ListUsersRequest") }
func FuzzListUsersResponse(f *testing.F)        { fuzzMessage(f, "ListUsersResponse") }
func FuzzACLsRequest(f *testing.F)              { fuzzMessage(f, "ACLsRequest") }
func FuzzACLsResponse(f *testing.F)             { fuzzMessage(f, "ACLsResponse") }
func FuzzShareAcquireRequest(f *testing.F)      { fuzzMessage(f, "ShareAcquireRequest") }
func FuzzShareAcquireResponse(f *testing.F)     { fuzzMessage(f, "ShareAcquireResponse") }
func FuzzShareAckRequest(f *testing.F)          { fuzzMessage(f, "ShareAckRequest") }
func FuzzShareAckResponse(f *testing.F)         { fuzzMessage(f, "ShareAckResponse") }
func FuzzShareDescribeRequest(f *testing.F)     { fuzzMessage(f, "ShareDescribeRequest") }
func FuzzShareDescribeResponse(f *testing.F)    { fuzzMessage(f, "ShareDescribeResponse") }
