package driver

import (
	"fmt"

	wire "github.com/ringmq/ringmq/proto"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Raft messages on the client port: each message travels as one
// RaftMessages request (proto.APIRaftMessages, one-way) to the peer's
// client address, where a reactor decodes it (UnmarshalMessage) and
// hands it to the driver's Deliver without blocking.

// AppendRaftRequest appends m as a whole RaftMessages request frame from
// node m.From. It is a TCPConfig.AppendFrame.
func AppendRaftRequest(dst []byte, m *pb.Message) ([]byte, error) {
	b, err := proto.MarshalOptions{}.Marshal(m)
	if err != nil {
		return dst, fmt.Errorf("controller transport: marshal: %w", err)
	}
	req := wire.RaftMessagesRequest{From: uint32(m.GetFrom()), Messages: [][]byte{b}}
	return wire.AppendRequest(dst, 1, &req), nil
}

// UnmarshalMessage decodes one message of a RaftMessages request (it
// copies what it keeps of b).
func UnmarshalMessage(b []byte) (*pb.Message, error) {
	m := new(pb.Message)
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("controller transport: unmarshal: %w", err)
	}
	return m, nil
}
