package proto

// Samples of the consumer-group messages (JoinGroup to ResetOffsets).

func groupMsgTypes() []msgType {
	orders := []GroupPartitions{{Topic: "orders", Partitions: []uint32{0, 3, 7}}, {Topic: "payments", Partitions: []uint32{1}}}
	return []msgType{
		{"JoinGroupRequest", func() Message { return new(JoinGroupRequest) }, []Message{
			&JoinGroupRequest{Group: "billing", Type: GroupTypeFailover, MemberID: "5f0c2a9e1b7d4c3a", ClientID: "billing-1",
				SessionTimeoutMs: 10_000, Topics: []string{"orders", "payments"}},
			&JoinGroupRequest{Group: "audit", Type: GroupTypeExclusive, SessionTimeoutMs: 1000, Topics: []string{"orders"}},
		}},
		{"AssignmentResponse", func() Message { return new(AssignmentResponse) }, []Message{
			&AssignmentResponse{MemberID: "5f0c2a9e1b7d4c3a", MemberEpoch: 7, HeartbeatIntervalMs: 3000,
				Assigned: orders, Revoke: []GroupPartitions{{Topic: "orders", Partitions: []uint32{5}}},
				Pending: []GroupPartitions{{Topic: "orders"}}},
			&AssignmentResponse{Error: SubscriptionHeld, Message: `group "audit" is held by member a1 (client "x" at 10.0.0.1:5000)`},
		}},
		{"HeartbeatRequest", func() Message { return new(HeartbeatRequest) }, []Message{
			&HeartbeatRequest{Group: "billing", MemberID: "5f0c2a9e1b7d4c3a", MemberEpoch: 7, Owned: orders},
			&HeartbeatRequest{Group: "billing", MemberID: "m", MemberEpoch: 1},
		}},
		{"LeaveGroupRequest", func() Message { return new(LeaveGroupRequest) }, []Message{
			&LeaveGroupRequest{Group: "billing", MemberID: "5f0c2a9e1b7d4c3a"},
		}},
		{"GroupResultResponse", func() Message { return new(GroupResultResponse) }, []Message{
			&GroupResultResponse{},
			&GroupResultResponse{Error: GroupNotEmpty, Message: `group "billing" has 2 members; stop them first`},
		}},
		{"DescribeGroupRequest", func() Message { return new(DescribeGroupRequest) }, []Message{
			&DescribeGroupRequest{Group: "billing"},
		}},
		{"DescribeGroupResponse", func() Message { return new(DescribeGroupResponse) }, []Message{
			&DescribeGroupResponse{Type: GroupTypeFailover, State: GroupStateReconciling, Epoch: 9,
				Members: []GroupMember{
					{ID: "5f0c2a9e1b7d4c3a", ClientID: "billing-1", Addr: "127.0.0.1:50312", SessionTimeoutMs: 10_000, Epoch: 9,
						Topics: []string{"orders", "payments"}, Assigned: orders,
						Revoking: []GroupPartitions{{Topic: "orders", Partitions: []uint32{5}}}},
					{ID: "c4", ClientID: "billing-2", Addr: "127.0.0.1:50313", SessionTimeoutMs: 10_000, Epoch: 8,
						Topics: []string{"orders"}, Pending: []GroupPartitions{{Topic: "orders", Partitions: []uint32{5}}}},
				},
				Topics: []GroupTopic{{Name: "orders", Partitions: []GroupPartition{{0, 100, 150, 50}, {5, 7, 7, 0}}}}},
			&DescribeGroupResponse{Error: GroupNotFound, Message: `group "nope" does not exist`},
		}},
		{"DeleteGroupRequest", func() Message { return new(DeleteGroupRequest) }, []Message{
			&DeleteGroupRequest{Group: "billing"},
		}},
		{"ResetOffsetsRequest", func() Message { return new(ResetOffsetsRequest) }, []Message{
			&ResetOffsetsRequest{Group: "billing", Topic: "orders", DryRun: true, Partitions: []ResetPartition{{0, 0}, {1, 1500}}},
			&ResetOffsetsRequest{Group: "billing", Topic: "orders"},
		}},
		{"ResetOffsetsResponse", func() Message { return new(ResetOffsetsResponse) }, []Message{
			&ResetOffsetsResponse{Partitions: []ResetResult{{0, true, 100, 0}, {1, false, 0, 1500}}},
			&ResetOffsetsResponse{Error: GroupNotEmpty, Message: "stop them before resetting"},
		}},
		{"FindCoordinatorRequest", func() Message { return new(FindCoordinatorRequest) }, []Message{
			&FindCoordinatorRequest{Group: "billing"},
		}},
		{"FindCoordinatorResponse", func() Message { return new(FindCoordinatorResponse) }, []Message{
			&FindCoordinatorResponse{NodeID: 2, Addr: "10.0.0.2:9092", Partition: 5},
		}},
	}
}
