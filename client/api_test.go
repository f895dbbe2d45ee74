package client

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ringmq/ringmq/proto"
)

type apiCase struct {
	req  proto.Request
	resp proto.Message
	call func(ctx context.Context, c *Conn) (proto.Message, error)
}

// wrap adapts a typed method to apiCase.call.
func wrap[Req any, Resp proto.Message](m func(*Conn, context.Context, *Req) (Resp, error), req *Req) func(context.Context, *Conn) (proto.Message, error) {
	return func(ctx context.Context, c *Conn) (proto.Message, error) { return m(c, ctx, req) }
}

func apiCases() []apiCase {
	metaReq := &proto.MetadataRequest{Topics: []string{"orders"}}
	createReq := &proto.CreateTopicRequest{Name: "orders", Partitions: 3, Configs: []proto.Config{{Key: proto.ConfigFlush, Value: proto.FlushSync}}}
	deleteReq := &proto.DeleteTopicRequest{Name: "old"}
	describeReq := &proto.DescribeTopicRequest{Name: "orders"}
	produceReq := &proto.ProduceRequest{Acks: proto.AcksAll, TimeoutMs: 1000, Topics: []proto.ProduceTopic{
		{Name: []byte("orders"), Partitions: []proto.ProducePartition{{Partition: 1, Records: []byte("batch bytes")}}}}}
	fetchReq := &proto.FetchRequest{MaxWaitMs: 10, MinBytes: 1, MaxBytes: 1 << 20, Topics: []proto.FetchTopic{
		{Name: []byte("orders"), Partitions: []proto.FetchPartition{{Partition: 1, Offset: 5, PartitionMaxBytes: 4096}}}}}
	listReq := &proto.ListOffsetsRequest{Topics: []proto.ListOffsetsTopic{
		{Name: []byte("orders"), Partitions: []proto.ListOffsetsPartition{{Partition: 0, Timestamp: proto.TimestampLatest}}}}}
	commitReq := &proto.OffsetCommitRequest{Group: []byte("g"), Topics: []proto.OffsetCommitTopic{
		{Name: []byte("orders"), Partitions: []proto.OffsetCommitPartition{{Partition: 0, Offset: 9, Metadata: []byte("m")}}}}}
	offFetchReq := &proto.OffsetFetchRequest{Group: []byte("g")}
	groupsReq := &proto.ListGroupsRequest{Group: "g"}
	return []apiCase{
		{metaReq, &proto.MetadataResponse{Topics: []proto.MetadataTopic{{Name: "orders", Partitions: []proto.PartitionInfo{{Partition: 0, Shard: 1, LogEnd: 10}}}}},
			wrap((*Conn).Metadata, metaReq)},
		{createReq, &proto.CreateTopicResponse{}, wrap((*Conn).CreateTopic, createReq)},
		{deleteReq, &proto.DeleteTopicResponse{}, wrap((*Conn).DeleteTopic, deleteReq)},
		{describeReq, &proto.DescribeTopicResponse{Partitions: []proto.DescribePartition{{Partition: 2, Bytes: 4096}},
			Configs: []proto.Config{{Key: proto.ConfigFlush, Value: proto.FlushSync}}}, wrap((*Conn).DescribeTopic, describeReq)},
		{produceReq, &proto.ProduceResponse{Topics: []proto.ProduceTopicResponse{{Name: []byte("orders"),
			Partitions: []proto.ProducePartitionResponse{{Partition: 1, Error: proto.NotLeader, BaseOffset: 0, LogEnd: 0}}}}},
			wrap((*Conn).Produce, produceReq)},
		{fetchReq, &proto.FetchResponse{Topics: []proto.FetchTopicResponse{{Name: []byte("orders"),
			Partitions: []proto.FetchPartitionResponse{{Partition: 1, HighWatermark: 8, Records: []byte("batches")}}}}},
			wrap((*Conn).Fetch, fetchReq)},
		{listReq, &proto.ListOffsetsResponse{Topics: []proto.ListOffsetsTopicResponse{{Name: []byte("orders"),
			Partitions: []proto.ListOffsetsPartitionResponse{{Partition: 0, Offset: 42, Timestamp: -1}}}}},
			wrap((*Conn).ListOffsets, listReq)},
		{commitReq, &proto.OffsetCommitResponse{Topics: []proto.OffsetCommitTopicResponse{{Name: []byte("orders"),
			Partitions: []proto.PartitionError{{Partition: 0}}}}}, wrap((*Conn).OffsetCommit, commitReq)},
		{offFetchReq, &proto.OffsetFetchResponse{Topics: []proto.OffsetFetchTopicResponse{{Name: []byte("orders"),
			Partitions: []proto.OffsetFetchPartitionResponse{{Partition: 0, Offset: proto.NoOffset, Metadata: []byte{}}}}}},
			wrap((*Conn).OffsetFetch, offFetchReq)},
		{groupsReq, &proto.ListGroupsResponse{Groups: []proto.GroupInfo{{Name: "g", Topics: []proto.GroupTopic{{Name: "orders",
			Partitions: []proto.GroupPartition{{Partition: 0, Committed: 9, LogEnd: 12, Lag: 3}}}}}}},
			wrap((*Conn).ListGroups, groupsReq)},
	}
}

// Every typed method sends its request as proto encodes it and returns the
// server's response as proto decodes it. Per-partition errors stay in the
// response.
func TestTypedMethods(t *testing.T) {
	cases := apiCases()
	byAPI := make(map[proto.APIKey]apiCase)
	for _, c := range cases {
		byAPI[c.req.APIKey()] = c
	}
	s := newFakeServer(t, func(fc *fakeConn, h proto.RequestHeader, body []byte) {
		c, ok := byAPI[h.API]
		if !ok || !bytes.Equal(body, c.req.AppendTo(nil)) {
			t.Errorf("server: unexpected %v request %x", h.API, body)
			fc.reply(h.CorrelationID, proto.InvalidRequest, nil)
			return
		}
		fc.reply(h.CorrelationID, proto.None, c.resp)
	})
	conn := dial(t, s, Options{})
	for _, c := range cases {
		got, err := c.call(testCtx(t), conn)
		if err != nil {
			t.Fatalf("%v: %v", c.req.APIKey(), err)
		}
		if !reflect.DeepEqual(got, c.resp) {
			t.Fatalf("%v: got %+v\nwant %+v", c.req.APIKey(), got, c.resp)
		}
	}
}

func TestServerErrorCodes(t *testing.T) {
	s := newFakeServer(t, func(fc *fakeConn, h proto.RequestHeader, body []byte) {
		switch h.API {
		case proto.APICreateTopic:
			fc.reply(h.CorrelationID, proto.None, &proto.CreateTopicResponse{Error: proto.InvalidConfig, Message: "retention_ms: not a number"})
		case proto.APIDeleteTopic:
			fc.reply(h.CorrelationID, proto.None, &proto.DeleteTopicResponse{Error: proto.UnknownTopic})
		case proto.APIDescribeTopic:
			fc.reply(h.CorrelationID, proto.None, &proto.DescribeTopicResponse{Error: proto.UnknownTopic})
		default:
			fc.reply(h.CorrelationID, proto.UnsupportedAPI, nil)
		}
	})
	c := dial(t, s, Options{})
	ctx := testCtx(t)
	_, err := c.ListGroups(ctx, &proto.ListGroupsRequest{})
	var code proto.ErrorCode
	if !errors.As(err, &code) || code != proto.UnsupportedAPI || !strings.Contains(err.Error(), "ListGroups") {
		t.Fatalf("header error: %v", err)
	}
	resp, err := c.CreateTopic(ctx, &proto.CreateTopicRequest{Name: "t", Partitions: 1})
	if !errors.Is(err, proto.InvalidConfig) || !strings.Contains(err.Error(), "retention_ms: not a number") || resp == nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	if _, err := c.DeleteTopic(ctx, &proto.DeleteTopicRequest{Name: "t"}); !errors.Is(err, proto.UnknownTopic) {
		t.Fatalf("DeleteTopic: %v", err)
	}
	if _, err := c.DescribeTopic(ctx, &proto.DescribeTopicRequest{Name: "t"}); !errors.Is(err, proto.UnknownTopic) || errors.Is(err, proto.ErrRetriable) {
		t.Fatalf("DescribeTopic: %v", err)
	}
	if c.Err() != nil {
		t.Fatalf("server error codes broke the connection: %v", c.Err())
	}
}
