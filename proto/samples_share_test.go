package proto

// Samples of the shared-subscription messages (ShareAcquire to ShareDescribe).

func shareMsgTypes() []msgType {
	return []msgType{
		{"ShareAcquireRequest", func() Message { return new(ShareAcquireRequest) }, []Message{
			&ShareAcquireRequest{Group: "workers", MemberID: "5f0c2a9e1b7d4c3a", MemberEpoch: 3, Topic: "jobs", Partition: 2, MaxRecords: 500},
		}},
		{"ShareAcquireResponse", func() Message { return new(ShareAcquireResponse) }, []Message{
			&ShareAcquireResponse{AckTimeoutMs: 30_000, Ranges: []ShareRange{{0, 10, 1}, {12, 13, 4}}},
			&ShareAcquireResponse{Error: FencedMemberEpoch, Message: "member m1 is at epoch 4; request has epoch 3"},
		}},
		{"ShareAckRequest", func() Message { return new(ShareAckRequest) }, []Message{
			&ShareAckRequest{Group: "workers", MemberID: "m1", MemberEpoch: 3, Topic: "jobs", Partition: 2, Acks: []ShareAck{
				{Op: ShareAccept, Start: 0, End: 10}, {Op: ShareRelease, Start: 12, End: 13, DelayMs: ShareBackoff, Reason: "db down"},
				{Op: ShareReject, Start: 14, End: 15, Reason: "bad json"}, {Op: ShareAcceptUpTo, End: 20}}},
		}},
		{"ShareAckResponse", func() Message { return new(ShareAckResponse) }, []Message{
			&ShareAckResponse{Results: []ErrorCode{None, RecordNotHeld}},
			&ShareAckResponse{Error: UnknownMemberID, Message: "group has no member m1"},
		}},
		{"ShareDescribeRequest", func() Message { return new(ShareDescribeRequest) }, []Message{
			&ShareDescribeRequest{Group: "workers"},
		}},
		{"ShareDescribeResponse", func() Message { return new(ShareDescribeResponse) }, []Message{
			&ShareDescribeResponse{Partitions: []SharePartitionState{{"jobs", 0, 100, 250, 30, 2, 7, 1}}},
			&ShareDescribeResponse{Error: GroupNotFound},
		}},
	}
}
