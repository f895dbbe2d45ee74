package reactor

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

// rawRoundTrip sends one request frame (any API number, any body) on a new
// connection and returns the response header and body.
func rawRoundTrip(t *testing.T, addr string, api proto.APIKey, body []byte) (proto.ResponseHeader, []byte) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	frame := proto.AppendRequestHeader(nil, proto.RequestHeader{API: api, CorrelationID: 7}, len(body))
	if _, err := nc.Write(append(frame, body...)); err != nil {
		t.Fatal(err)
	}
	var lenBuf [proto.FrameLengthSize]byte
	if _, err := io.ReadFull(nc, lenBuf[:]); err != nil {
		t.Fatalf("api %d: read response: %v", api, err)
	}
	n, _ := proto.FrameLength(lenBuf[:])
	resp := make([]byte, n)
	copy(resp, lenBuf[:])
	if _, err := io.ReadFull(nc, resp[proto.FrameLengthSize:]); err != nil {
		t.Fatalf("api %d: read response: %v", api, err)
	}
	h, rb, err := proto.ParseResponseHeader(resp)
	if err != nil {
		t.Fatal(err)
	}
	if h.CorrelationID != 7 {
		t.Fatalf("api %d: correlation id %d, want 7", api, h.CorrelationID)
	}
	return h, rb
}

// An API number the server does not know is answered UNSUPPORTED_API, not
// UNSUPPORTED_VERSION.
func TestUnknownAPIIsUnsupportedAPI(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	for _, api := range []proto.APIKey{0, 99, 0xfffe} {
		if h, _ := rawRoundTrip(t, srv.Addr(), api, nil); h.Error != proto.UnsupportedAPI {
			t.Errorf("api %d answered %v, want UNSUPPORTED_API", api, h.Error)
		}
	}
}

// A produce part with an empty records field is a bad request, not a
// storage error, and the other parts of the request still land.
func TestProduceEmptyRecordsIsInvalidRequest(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "empty", 2)
	var b proto.BatchBuilder
	b.Append(time.Now().UnixMilli(), nil, []byte("v"), nil)
	resp, err := c.Produce(ringtest.Ctx(t), &proto.ProduceRequest{Acks: proto.AcksLeader, TimeoutMs: 10000,
		Topics: []proto.ProduceTopic{{Name: []byte("empty"), Partitions: []proto.ProducePartition{
			{Partition: 0, Records: nil}, {Partition: 1, Records: b.Finish()}}}}})
	if err != nil {
		t.Fatal(err)
	}
	ps := resp.Topics[0].Partitions
	if ps[0].Error != proto.InvalidRequest {
		t.Errorf("empty records answered %v, want INVALID_REQUEST", ps[0].Error)
	}
	if ps[1].Error != proto.None {
		t.Errorf("the other partition answered %v", ps[1].Error)
	}
	if end := ringtest.ListOffset(t, c, "empty", 0, -1); end != 0 {
		t.Errorf("partition 0 log end %d after an empty produce", end)
	}
}

// Group names follow proto.ValidName on the server too.
func TestInvalidGroupNamesAreRefused(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "grp", 1)
	produceOne(t, c, "grp", 0, []byte("v"))
	for _, name := range []string{strings.Repeat("g", 10<<10), "two\nlines", "a b", "..", ""} {
		_, err := c.OffsetCommit(ringtest.Ctx(t), &proto.OffsetCommitRequest{Group: []byte(name),
			Topics: []proto.OffsetCommitTopic{{Name: []byte("grp"), Partitions: []proto.OffsetCommitPartition{{Partition: 0, Offset: 1}}}}})
		if !errors.Is(err, proto.InvalidGroupName) {
			t.Errorf("commit for group %.20q: %v, want INVALID_GROUP_NAME", name, err)
		}
	}
	groups, err := c.ListGroups(ringtest.Ctx(t), &proto.ListGroupsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(groups.Groups) != 0 {
		t.Errorf("groups stored after refused commits: %d", len(groups.Groups))
	}
	if _, err := client.NewConsumer(srv.Addr(), client.ConsumerOptions{Group: "two\nlines"}); !errors.Is(err, proto.InvalidGroupName) {
		t.Errorf("client consumer with an invalid group: %v, want INVALID_GROUP_NAME", err)
	}
}

// A commit past the partition's log end is refused; one at the log end
// (everything consumed) is accepted.
func TestCommitPastLogEndIsRefused(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "cm", 1)
	for i := 0; i < 3; i++ {
		produceOne(t, c, "cm", 0, []byte("v"))
	}
	commit := func(off uint64) proto.ErrorCode {
		resp, err := c.OffsetCommit(ringtest.Ctx(t), &proto.OffsetCommitRequest{Group: []byte("g"),
			Topics: []proto.OffsetCommitTopic{{Name: []byte("cm"), Partitions: []proto.OffsetCommitPartition{{Partition: 0, Offset: off}}}}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0].Error
	}
	for _, off := range []uint64{4, 1 << 40, proto.NoOffset} {
		if code := commit(off); code != proto.OffsetOutOfRange {
			t.Errorf("commit %d past log end 3: %v, want OFFSET_OUT_OF_RANGE", off, code)
		}
	}
	if code := commit(3); code != proto.None {
		t.Errorf("commit at the log end: %v", code)
	}
	resp, err := c.OffsetFetch(ringtest.Ctx(t), &proto.OffsetFetchRequest{Group: []byte("g")})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Topics[0].Partitions[0].Offset; got != 3 {
		t.Errorf("committed offset %d, want 3", got)
	}
}

// ringmq_request_errors_total counts errors by API and code, whether the
// whole request failed or one partition of it.
func TestRequestAndPartitionErrorsAreCounted(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "errs", 1)
	series := func(api, code string) string {
		return `ringmq_request_errors_total{api="` + api + `",code="` + code + `"}`
	}
	value := func(s string) float64 { // a series not created yet is 0
		if !strings.Contains(scrapeText(t), s+" ") {
			return 0
		}
		return metricValue(t, s)
	}
	unknownTopic := series("produce", "UNKNOWN_TOPIC")
	badBody := series("produce", "INVALID_REQUEST")
	outOfRange := series("fetch", "OFFSET_OUT_OF_RANGE")
	before := []float64{value(unknownTopic), value(badBody), value(outOfRange)}

	var b proto.BatchBuilder
	b.Append(time.Now().UnixMilli(), nil, []byte("v"), nil)
	if _, err := c.Produce(ringtest.Ctx(t), &proto.ProduceRequest{Acks: proto.AcksLeader, TimeoutMs: 10000,
		Topics: []proto.ProduceTopic{{Name: []byte("no-such-topic"), Partitions: []proto.ProducePartition{{Partition: 0, Records: b.Finish()}}}}}); err != nil {
		t.Fatal(err)
	}
	if h, _ := rawRoundTrip(t, srv.Addr(), proto.APIProduce, []byte{1, 2, 3}); h.Error != proto.InvalidRequest {
		t.Fatalf("garbage produce body: %v", h.Error)
	}
	if _, err := c.Fetch(ringtest.Ctx(t), &proto.FetchRequest{MaxBytes: 1 << 20, Topics: []proto.FetchTopic{{Name: []byte("errs"),
		Partitions: []proto.FetchPartition{{Partition: 0, Offset: 100, PartitionMaxBytes: 1 << 20}}}}}); err != nil {
		t.Fatal(err)
	}
	for i, s := range []string{unknownTopic, badBody, outOfRange} {
		if got := value(s); got != before[i]+1 {
			t.Errorf("%s = %v, want %v", s, got, before[i]+1)
		}
	}
}

func scrapeText(t *testing.T) string {
	t.Helper()
	var buf strings.Builder
	metrics.WritePrometheus(&buf, false)
	return buf.String()
}
