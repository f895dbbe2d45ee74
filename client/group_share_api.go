package client

import (
	"context"

	"github.com/ringmq/ringmq/proto"
)

// Typed shared-subscription requests (see proto/msg_share.go). A refusal
// in the response body is returned as an error wrapping its
// proto.ErrorCode; ShareAck's per-ack results are in the response.

// ShareAcquire asks the coordinator for records of one partition; the
// answer is the offset ranges acquired for the member.
func (c *Conn) ShareAcquire(ctx context.Context, req *proto.ShareAcquireRequest) (*proto.ShareAcquireResponse, error) {
	resp, err := roundTrip[proto.ShareAcquireResponse](ctx, c, req)
	if err != nil {
		return nil, err
	}
	return resp, codeErr(proto.APIShareAcquire, req.Group, resp.Error, resp.Message)
}

// ShareAck acknowledges records of one partition.
func (c *Conn) ShareAck(ctx context.Context, req *proto.ShareAckRequest) (*proto.ShareAckResponse, error) {
	resp, err := roundTrip[proto.ShareAckResponse](ctx, c, req)
	if err != nil {
		return nil, err
	}
	return resp, codeErr(proto.APIShareAck, req.Group, resp.Error, resp.Message)
}

// ShareDescribe returns a shared group's per-partition ack state.
func (c *Conn) ShareDescribe(ctx context.Context, req *proto.ShareDescribeRequest) (*proto.ShareDescribeResponse, error) {
	resp, err := roundTrip[proto.ShareDescribeResponse](ctx, c, req)
	if err != nil {
		return nil, err
	}
	return resp, codeErr(proto.APIShareDescribe, req.Group, resp.Error, resp.Message)
}
