package client

import (
	"context"

	"github.com/ringmq/ringmq/proto"
)

// Typed consumer-group requests. A refusal carried in the response body
// (unknown member, fenced epoch, exclusive subscription held, group not
// empty, ...) is returned as an error wrapping its proto.ErrorCode with
// the server's message; the response is returned too.

// JoinGroup joins a group as a new member and returns its first
// assignment.
func (c *Conn) JoinGroup(ctx context.Context, req *proto.JoinGroupRequest) (*proto.AssignmentResponse, error) {
	resp, err := roundTrip[proto.AssignmentResponse](ctx, c, req)
	if err != nil {
		return nil, err
	}
	return resp, codeErr(proto.APIJoinGroup, req.Group, resp.Error, resp.Message)
}

// Heartbeat keeps a member alive, reports what it holds and returns its
// assignment.
func (c *Conn) Heartbeat(ctx context.Context, req *proto.HeartbeatRequest) (*proto.AssignmentResponse, error) {
	resp, err := roundTrip[proto.AssignmentResponse](ctx, c, req)
	if err != nil {
		return nil, err
	}
	return resp, codeErr(proto.APIHeartbeat, req.Group, resp.Error, resp.Message)
}

// LeaveGroup removes a member; its partitions are free at once.
func (c *Conn) LeaveGroup(ctx context.Context, req *proto.LeaveGroupRequest) error {
	resp, err := roundTrip[proto.GroupResultResponse](ctx, c, req)
	if err != nil {
		return err
	}
	return codeErr(proto.APILeaveGroup, req.Group, resp.Error, resp.Message)
}

// DescribeGroup returns a group's type, state, members and positions.
func (c *Conn) DescribeGroup(ctx context.Context, req *proto.DescribeGroupRequest) (*proto.DescribeGroupResponse, error) {
	resp, err := roundTrip[proto.DescribeGroupResponse](ctx, c, req)
	if err != nil {
		return nil, err
	}
	return resp, codeErr(proto.APIDescribeGroup, req.Group, resp.Error, resp.Message)
}

// DeleteGroup deletes a group and its commits (refused while it has
// members).
func (c *Conn) DeleteGroup(ctx context.Context, req *proto.DeleteGroupRequest) error {
	resp, err := roundTrip[proto.GroupResultResponse](ctx, c, req)
	if err != nil {
		return err
	}
	return codeErr(proto.APIDeleteGroup, req.Group, resp.Error, resp.Message)
}

// ResetOffsets sets (or with DryRun plans) a group's positions in a topic.
func (c *Conn) ResetOffsets(ctx context.Context, req *proto.ResetOffsetsRequest) (*proto.ResetOffsetsResponse, error) {
	resp, err := roundTrip[proto.ResetOffsetsResponse](ctx, c, req)
	if err != nil {
		return nil, err
	}
	return resp, codeErr(proto.APIResetOffsets, req.Group, resp.Error, resp.Message)
}

// FindCoordinator asks which node coordinates a group.
func (c *Conn) FindCoordinator(ctx context.Context, req *proto.FindCoordinatorRequest) (*proto.FindCoordinatorResponse, error) {
	return roundTrip[proto.FindCoordinatorResponse](ctx, c, req)
}
