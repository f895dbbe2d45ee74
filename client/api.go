package client

import (
	"context"
	"fmt"

	"github.com/ringmq/ringmq/proto"
)

// Typed requests. Each returns a new response (whose byte fields alias its
// own frame). Per-partition errors stay in the response; errors of the
// whole request, or of the one topic an admin request names, are returned.

// message is a pointer to a response type R.
type message[R any] interface {
	*R
	proto.Message
}

func roundTrip[R any, PR message[R]](ctx context.Context, c *Conn, req proto.Request) (*R, error) {
	resp := new(R)
	if err := c.Do(ctx, req, PR(resp)); err != nil {
		return nil, err
	}
	return resp, nil
}

// codeErr turns an error code from a response body into an error.
func codeErr(api proto.APIKey, name string, code proto.ErrorCode, msg string) error {
	switch {
	case code == proto.None:
		return nil
	case msg != "":
		return fmt.Errorf("client: %v %q: %w: %s", api, name, code, msg)
	}
	return fmt.Errorf("client: %v %q: %w", api, name, code)
}

// Metadata lists topics and where their partitions live.
func (c *Conn) Metadata(ctx context.Context, req *proto.MetadataRequest) (*proto.MetadataResponse, error) {
	return roundTrip[proto.MetadataResponse](ctx, c, req)
}

// CreateTopic creates a topic. A refusal (TopicExists, InvalidConfig, ...)
// is returned as an error carrying the server's message.
func (c *Conn) CreateTopic(ctx context.Context, req *proto.CreateTopicRequest) (*proto.CreateTopicResponse, error) {
	resp, err := roundTrip[proto.CreateTopicResponse](ctx, c, req)
	if err != nil {
		return nil, err
	}
	return resp, codeErr(proto.APICreateTopic, req.Name, resp.Error, resp.Message)
}

// DeleteTopic deletes a topic and its data.
func (c *Conn) DeleteTopic(ctx context.Context, req *proto.DeleteTopicRequest) (*proto.DeleteTopicResponse, error) {
	resp, err := roundTrip[proto.DeleteTopicResponse](ctx, c, req)
	if err != nil {
		return nil, err
	}
	return resp, codeErr(proto.APIDeleteTopic, req.Name, resp.Error, "")
}

// DescribeTopic returns a topic's partitions and configuration.
func (c *Conn) DescribeTopic(ctx context.Context, req *proto.DescribeTopicRequest) (*proto.DescribeTopicResponse, error) {
	resp, err := roundTrip[proto.DescribeTopicResponse](ctx, c, req)
	if err != nil {
		return nil, err
	}
	return resp, codeErr(proto.APIDescribeTopic, req.Name, resp.Error, "")
}

// Produce appends record batches. With acks 0 the server sends nothing
// back: Produce returns (nil, nil) once the request is queued.
func (c *Conn) Produce(ctx context.Context, req *proto.ProduceRequest) (*proto.ProduceResponse, error) {
	if !proto.ExpectsResponse(req) {
		return nil, c.Do(ctx, req, nil)
	}
	return roundTrip[proto.ProduceResponse](ctx, c, req)
}

// Fetch reads record batches; they alias the response's frame.
func (c *Conn) Fetch(ctx context.Context, req *proto.FetchRequest) (*proto.FetchResponse, error) {
	return roundTrip[proto.FetchResponse](ctx, c, req)
}

// ListOffsets finds offsets by timestamp, or the log start and end.
func (c *Conn) ListOffsets(ctx context.Context, req *proto.ListOffsetsRequest) (*proto.ListOffsetsResponse, error) {
	return roundTrip[proto.ListOffsetsResponse](ctx, c, req)
}

// OffsetCommit stores a consumer group's positions.
func (c *Conn) OffsetCommit(ctx context.Context, req *proto.OffsetCommitRequest) (*proto.OffsetCommitResponse, error) {
	return roundTrip[proto.OffsetCommitResponse](ctx, c, req)
}

// OffsetFetch reads a consumer group's committed positions.
func (c *Conn) OffsetFetch(ctx context.Context, req *proto.OffsetFetchRequest) (*proto.OffsetFetchResponse, error) {
	return roundTrip[proto.OffsetFetchResponse](ctx, c, req)
}

// ListGroups lists consumer groups with their positions and lag.
func (c *Conn) ListGroups(ctx context.Context, req *proto.ListGroupsRequest) (*proto.ListGroupsResponse, error) {
	return roundTrip[proto.ListGroupsResponse](ctx, c, req)
}

// AlterTopic changes a topic's configuration overrides. A refusal is
// returned as an error carrying the server's message.
func (c *Conn) AlterTopic(ctx context.Context, req *proto.AlterTopicRequest) (*proto.AlterTopicResponse, error) {
	resp, err := roundTrip[proto.AlterTopicResponse](ctx, c, req)
	if err != nil {
		return nil, err
	}
	return resp, codeErr(proto.APIAlterTopic, req.Name, resp.Error, resp.Message)
}

// AddPartitions grows a topic to req.Partitions partitions in all.
func (c *Conn) AddPartitions(ctx context.Context, req *proto.AddPartitionsRequest) (*proto.AddPartitionsResponse, error) {
	resp, err := roundTrip[proto.AddPartitionsResponse](ctx, c, req)
	if err != nil {
		return nil, err
	}
	return resp, codeErr(proto.APIAddPartitions, req.Name, resp.Error, resp.Message)
}

// ClusterStatus asks the node for its view of the cluster: nodes,
// controller leader, Raft term and commit index, offline and
// under-replicated partitions.
func (c *Conn) ClusterStatus(ctx context.Context) (*proto.ClusterStatusResponse, error) {
	return roundTrip[proto.ClusterStatusResponse](ctx, c, &proto.ClusterStatusRequest{})
}
