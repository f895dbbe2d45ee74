package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"runtime"
	"testing"
)

func TestMessageRoundTrip(t *testing.T) {
	for _, mt := range msgTypes() {
		for i, s := range mt.samples {
			enc := s.AppendTo(nil)
			got := mt.new()
			if err := got.Decode(enc); err != nil {
				t.Fatalf("%s sample %d: decode: %v", mt.name, i, err)
			}
			if !reflect.DeepEqual(got, s) {
				t.Fatalf("%s sample %d: decoded\n%+v\nwant\n%+v", mt.name, i, got, s)
			}
			prefixed := s.AppendTo([]byte("xyz"))
			if !bytes.Equal(prefixed[:3], []byte("xyz")) || !bytes.Equal(prefixed[3:], enc) {
				t.Fatalf("%s sample %d: AppendTo does not append to dst", mt.name, i)
			}
		}
	}
}

func TestMessageRequestAPIKeys(t *testing.T) {
	want := map[string]APIKey{
		"HelloRequest": APIHello, "MetadataRequest": APIMetadata, "CreateTopicRequest": APICreateTopic,
		"DeleteTopicRequest": APIDeleteTopic, "DescribeTopicRequest": APIDescribeTopic,
		"ProduceRequest": APIProduce, "FetchRequest": APIFetch, "ListOffsetsRequest": APIListOffsets,
		"OffsetCommitRequest": APIOffsetCommit, "OffsetFetchRequest": APIOffsetFetch,
		"ListGroupsRequest": APIListGroups, "AlterTopicRequest": APIAlterTopic,
		"AddPartitionsRequest": APIAddPartitions, "InitProducerRequest": APIInitProducer,
		"ClusterStatusRequest": APIClusterStatus,
		"RaftMessagesRequest":  APIRaftMessages, "BrokerHeartbeatRequest": APIBrokerHeartbeat,
		"JoinGroupRequest": APIJoinGroup, "HeartbeatRequest": APIHeartbeat,
		"LeaveGroupRequest": APILeaveGroup, "DescribeGroupRequest": APIDescribeGroup,
		"DeleteGroupRequest": APIDeleteGroup, "ResetOffsetsRequest": APIResetOffsets,
		"ReplicaFetchRequest": APIReplicaFetch,
	}
	seen := 0
	for _, mt := range msgTypes() {
		req, ok := mt.new().(Request)
		if !ok {
			continue
		}
		seen++
		if req.APIKey() != want[mt.name] {
			t.Errorf("%s.APIKey() = %v, want %v", mt.name, req.APIKey(), want[mt.name])
		}
	}
	if seen != len(want) {
		t.Fatalf("%d request types, want %d", seen, len(want))
	}
}

// Every strict prefix of a valid body fails with a classified error, and so
// does a body with a trailing byte.
func TestMessageTruncatedAndTrailing(t *testing.T) {
	for _, mt := range msgTypes() {
		for i, s := range mt.samples {
			enc := s.AppendTo(nil)
			for n := 0; n < len(enc); n++ {
				err := mt.new().Decode(enc[:n:n])
				if !errors.Is(err, ErrShortBuffer) && !errors.Is(err, ErrMalformed) {
					t.Fatalf("%s sample %d: prefix %d/%d: err = %v", mt.name, i, n, len(enc), err)
				}
			}
			err := mt.new().Decode(append(enc[:len(enc):len(enc)], 0))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("%s sample %d: trailing byte: err = %v", mt.name, i, err)
			}
		}
	}
}

// Decoding into a struct that held another message gives the same result
// as decoding into a fresh one.
func TestMessageDecodeReuse(t *testing.T) {
	for _, mt := range msgTypes() {
		for i, a := range mt.samples {
			for j, b := range mt.samples {
				m := mt.new()
				if err := m.Decode(a.AppendTo(nil)); err != nil {
					t.Fatal(err)
				}
				want := b.AppendTo(nil)
				if err := m.Decode(want); err != nil {
					t.Fatal(err)
				}
				if got := m.AppendTo(nil); !bytes.Equal(got, want) {
					t.Fatalf("%s: sample %d decoded over sample %d re-encodes differently", mt.name, j, i)
				}
			}
		}
	}
}

func TestMessageHostileCount(t *testing.T) {
	body := []byte{1, 0, 0, 0, 0} // acks 1, timeout 0
	body = binary.LittleEndian.AppendUint32(body, 0xFFFFFFFF)
	body = append(body, make([]byte, 16)...)
	var r ProduceRequest
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := r.Decode(body)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 || cap(r.Topics) != 0 {
		t.Fatalf("hostile count: %d bytes allocated, cap %d", n, cap(r.Topics))
	}
}

func TestHelloResponseBoolStrict(t *testing.T) {
	b := (&HelloResponse{Version: 1, Moved: true}).AppendTo(nil)
	b[len(b)-1] = 2
	if err := new(HelloResponse).Decode(b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("moved=2: err = %v, want ErrMalformed", err)
	}
}

func TestExpectsResponse(t *testing.T) {
	cases := []struct {
		req  Request
		want bool
	}{
		{&ProduceRequest{Acks: AcksNone}, false},
		{&ProduceRequest{Acks: AcksLeader}, true},
		{&ProduceRequest{Acks: AcksAll}, true},
		{&FetchRequest{}, true},
		{&HelloRequest{}, true},
	}
	for _, c := range cases {
		if got := ExpectsResponse(c.req); got != c.want {
			t.Errorf("ExpectsResponse(%T %+v) = %v", c.req, c.req, got)
		}
	}
}

// The server's zero-copy path (headers, then records as separate slices)
// writes exactly the bytes FetchResponse.AppendTo writes, and
// FetchResponseSize predicts the frame length.
func TestFetchResponseZeroCopy(t *testing.T) {
	b1, b2 := sampleBatch(2), sampleBatch(3)
	type part struct {
		h     FetchPartitionHeader
		iovec [][]byte
	}
	topics := []struct {
		name  []byte
		parts []part
	}{
		{[]byte("orders"), []part{
			{FetchPartitionHeader{Partition: 0, HighWatermark: 10, LogStart: 1}, [][]byte{b1, b2}},
			{FetchPartitionHeader{Partition: 3, Error: NotLeader}, nil},
		}},
		{[]byte("payments"), []part{{FetchPartitionHeader{Partition: 1, HighWatermark: 2}, [][]byte{b2}}}},
	}
	var size FetchResponseSize
	want := FetchResponse{}
	for _, tp := range topics {
		size.AddTopic(tp.name)
		wt := FetchTopicResponse{Name: tp.name}
		for i := range tp.parts {
			p := &tp.parts[i]
			recs := bytes.Join(p.iovec, nil)
			p.h.RecordsLen = uint32(len(recs))
			size.AddPartition(len(recs))
			wt.Partitions = append(wt.Partitions, FetchPartitionResponse{
				Partition: p.h.Partition, Error: p.h.Error, HighWatermark: p.h.HighWatermark,
				LogStart: p.h.LogStart, Records: recs})
		}
		want.Topics = append(want.Topics, wt)
	}
	rh := ResponseHeader{CorrelationID: 77}
	var iovecs [][]byte
	hdr := AppendResponseHeader(nil, rh, size.BodyLen())
	hdr = AppendFetchResponseStart(hdr, len(topics))
	for _, tp := range topics {
		hdr = AppendFetchResponseTopicHeader(hdr, tp.name, len(tp.parts))
		for i := range tp.parts {
			hdr = AppendFetchPartitionHeader(hdr, &tp.parts[i].h)
			iovecs = append(iovecs, hdr)
			iovecs = append(iovecs, tp.parts[i].iovec...)
			hdr = nil
		}
	}
	got := bytes.Join(iovecs, nil)
	wantFrame := AppendResponse(nil, rh, &want)
	if !bytes.Equal(got, wantFrame) {
		t.Fatalf("zero-copy frame differs from AppendTo:\n got %x\nwant %x", got, wantFrame)
	}
	if size.FrameLen() != len(got) {
		t.Fatalf("FrameLen = %d, frame is %d bytes", size.FrameLen(), len(got))
	}
	checkFetchAliases(t, got)
}

// The decoded records alias the frame: no copy on the client either.
func checkFetchAliases(t *testing.T, frame []byte) {
	t.Helper()
	h, body, err := ParseResponseHeader(frame)
	if err != nil || h.CorrelationID != 77 {
		t.Fatalf("ParseResponseHeader: %+v %v", h, err)
	}
	var r FetchResponse
	if err := r.Decode(body); err != nil {
		t.Fatal(err)
	}
	recs := r.Topics[0].Partitions[0].Records
	i := bytes.Index(frame, recs)
	frame[i+20]++
	if recs[20] != frame[i+20] {
		t.Fatal("records do not alias the frame")
	}
	if _, _, err := ValidateBatch(recs); err == nil {
		t.Fatal("a batch changed in the frame still validates: records were copied")
	}
}

func TestValidName(t *testing.T) {
	long := bytes.Repeat([]byte("a"), MaxNameLen)
	cases := []struct {
		name string
		want bool
	}{
		{"orders", true}, {"Orders_2024-01.v2", true}, {string(long), true},
		{"", false}, {".", false}, {"..", false}, {"...", true}, {"a/b", false},
		{"a b", false}, {"é", false}, {string(long) + "a", false}, {"a\x00", false},
	}
	for _, c := range cases {
		if got := ValidName([]byte(c.name)); got != c.want {
			t.Errorf("ValidName(%q) = %v, want %v", c.name, got, c.want)
		}
	}
}
