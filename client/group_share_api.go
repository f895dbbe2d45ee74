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

// ShareState is one partition's ack state in a shared group: Floor (every
// offset below is acked), LogEnd, records InFlight (locked by a member),
// Waiting for redelivery, and Redeliveries and DeadLetters counted since
// the coordinator started.
type ShareState struct {
	Topic        string
	Partition    uint32
	Floor        uint64
	LogEnd       uint64
	InFlight     int
	Waiting      int
	Redeliveries uint64
	DeadLetters  uint64
}

// DescribeShares returns a shared or key_shared group's ack state per
// partition (the partitions a member has acquired from).
func (a *Admin) DescribeShares(ctx context.Context, group string) ([]ShareState, error) {
	if err := validGroup(group); err != nil {
		return nil, err
	}
	var resp *proto.ShareDescribeResponse
	err := a.groupCall(ctx, group, func(c *Conn) (err error) {
		resp, err = c.ShareDescribe(ctx, &proto.ShareDescribeRequest{Group: group})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]ShareState, len(resp.Partitions))
	for i, p := range resp.Partitions {
		out[i] = ShareState{Topic: p.Topic, Partition: p.Partition, Floor: p.Floor, LogEnd: p.LogEnd, InFlight: int(p.InFlight),
			Waiting: int(p.Waiting), Redeliveries: p.Redeliveries, DeadLetters: p.DeadLetters}
	}
	return out, nil
}
