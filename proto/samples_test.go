package proto

// Sample messages of every type: the round-trip tests use them, and their
// encodings are the fuzz seed corpora under testdata/fuzz (kept current by
// TestFuzzSeeds).

// msgType names one message type and makes empty values of it.
type msgType struct {
	name    string // the fuzz target is "Fuzz" + name
	new     func() Message
	samples []Message
}

func sampleBatch(n int) []byte {
	var b BatchBuilder
	b.Reset(nil)
	b.SetProducer(7, 1, 100)
	for i := 0; i < n; i++ {
		b.Append(1_700_000_000_000+int64(i), []byte{'k', byte('0' + i)}, []byte("value"), []Header{{Key: "h", Value: []byte{byte(i)}}})
	}
	return append([]byte(nil), b.Finish()...)
}

func msgTypes() []msgType {
	all := append(adminMsgTypes(), dataMsgTypes()...)
	all = append(all, alterMsgTypes()...) // after the others: their seed files keep their numbers
	all = append(all, producerMsgTypes()...)
	all = append(all, clusterMsgTypes()...)
	all = append(all, groupMsgTypes()...)
	return append(all, replicaMsgTypes()...)
}

func adminMsgTypes() []msgType {
	return []msgType{
		{"HelloRequest", func() Message { return new(HelloRequest) }, []Message{
			&HelloRequest{MinVersion: 1, MaxVersion: 1, ClientID: "orders-service", RequestedShard: NoShard},
			&HelloRequest{MinVersion: 1, MaxVersion: 3, ClientID: "", RequestedShard: 2},
		}},
		{"HelloResponse", func() Message { return new(HelloResponse) }, []Message{
			&HelloResponse{Version: 1, Reactors: 8, Shard: 2, Moved: true},
			&HelloResponse{Version: 1, Reactors: 1},
		}},
		{"MetadataRequest", func() Message { return new(MetadataRequest) }, []Message{
			&MetadataRequest{Topics: []string{"orders", "payments"}},
			&MetadataRequest{},
		}},
		{"MetadataResponse", func() Message { return new(MetadataResponse) }, []Message{
			&MetadataResponse{Topics: []MetadataTopic{
				{Name: "orders", Partitions: []PartitionInfo{
					{Partition: 0, LogEnd: 1200, Leader: 1, LeaderEpoch: 3, Replicas: []uint32{1, 2, 3}, ISR: []uint32{1, 3}},
					{Partition: 1, Shard: 1, LogStart: 300, LogEnd: 1500, Leader: 2, Replicas: []uint32{2}, ISR: []uint32{2}},
					{Partition: 2, Leader: NoNode, LeaderEpoch: 7, Replicas: []uint32{3}, ISR: []uint32{3}},
				}},
				{Name: "missing", Error: UnknownTopic},
			}, Brokers: []BrokerInfo{{1, "10.0.0.1:9400", true}, {2, "10.0.0.2:9400", true}, {3, "10.0.0.3:9400", false}},
				ControllerID: 2},
			&MetadataResponse{},
		}},
		{"CreateTopicRequest", func() Message { return new(CreateTopicRequest) }, []Message{
			&CreateTopicRequest{Name: "orders", Partitions: 12, ReplicationFactor: 3, Configs: []Config{
				{ConfigRetentionMs, "604800000"}, {ConfigFlush, FlushSync}, {ConfigSegmentBytes, "1073741824"}}},
			&CreateTopicRequest{Name: "t", Partitions: 1},
		}},
		{"CreateTopicResponse", func() Message { return new(CreateTopicResponse) }, []Message{
			&CreateTopicResponse{},
			&CreateTopicResponse{Error: InvalidConfig, Message: "retention_ms: not a number"},
		}},
		{"DeleteTopicRequest", func() Message { return new(DeleteTopicRequest) }, []Message{
			&DeleteTopicRequest{Name: "orders"},
		}},
		{"DeleteTopicResponse", func() Message { return new(DeleteTopicResponse) }, []Message{
			&DeleteTopicResponse{Error: UnknownTopic},
		}},
		{"DescribeTopicRequest", func() Message { return new(DescribeTopicRequest) }, []Message{
			&DescribeTopicRequest{Name: "orders"},
		}},
		{"DescribeTopicResponse", func() Message { return new(DescribeTopicResponse) }, []Message{
			&DescribeTopicResponse{
				Partitions: []DescribePartition{
					{Partition: 0, LogEnd: 1200, Bytes: 1 << 20, Leader: 1, LeaderEpoch: 2, Replicas: []uint32{1, 2}, ISR: []uint32{1, 2}},
					{Partition: 1, Shard: 1, LogStart: 300, LogEnd: 1500, Bytes: 3 << 20, Status: "fenced: no space left on device",
						Leader: 2, Replicas: []uint32{2, 1}, ISR: []uint32{2}},
				},
				Configs: []Config{{ConfigRetentionBytes, "1099511627776"}, {ConfigFlush, FlushInterval}},
			},
			&DescribeTopicResponse{Error: UnknownTopic},
		}},
		{"ListGroupsRequest", func() Message { return new(ListGroupsRequest) }, []Message{
			&ListGroupsRequest{Group: "billing"}, &ListGroupsRequest{},
		}},
		{"ListGroupsResponse", func() Message { return new(ListGroupsResponse) }, []Message{
			&ListGroupsResponse{Groups: []GroupInfo{
				{Name: "billing", Type: GroupTypeFailover, State: GroupStateStable, Members: 3,
					Topics: []GroupTopic{{Name: "orders", Partitions: []GroupPartition{{0, 100, 150, 50}, {1, 7, 7, 0}}}}},
				{Name: "audit", Type: GroupTypeExclusive, State: GroupStateEmpty},
			}},
		}},
	}
}

func dataMsgTypes() []msgType {
	return []msgType{
		{"ProduceRequest", func() Message { return new(ProduceRequest) }, []Message{
			&ProduceRequest{Acks: AcksAll, TimeoutMs: 30000, Topics: []ProduceTopic{
				{Name: []byte("orders"), Partitions: []ProducePartition{
					{Partition: 0, Records: sampleBatch(3)},
					{Partition: 5, Records: append(sampleBatch(1), sampleBatch(2)...)},
				}},
				{Name: []byte("payments"), Partitions: []ProducePartition{{Partition: 1, Records: sampleBatch(1)}}},
			}},
			&ProduceRequest{Acks: AcksNone, TimeoutMs: 0},
		}},
		{"ProduceResponse", func() Message { return new(ProduceResponse) }, []Message{
			&ProduceResponse{Topics: []ProduceTopicResponse{
				{Name: []byte("orders"), Partitions: []ProducePartitionResponse{{0, None, 1000, 1003}, {5, None, 20, 23}}},
				{Name: []byte("payments"), Partitions: []ProducePartitionResponse{{1, UnknownPartition, 0, 0}}},
			}},
		}},
		{"FetchRequest", func() Message { return new(FetchRequest) }, []Message{
			&FetchRequest{MaxWaitMs: 500, MinBytes: 1, MaxBytes: 1 << 20, Topics: []FetchTopic{
				{Name: []byte("orders"), Partitions: []FetchPartition{{0, 1000, 1 << 18}, {5, 0, 1 << 18}}},
				{Name: []byte("payments"), Partitions: []FetchPartition{{1, 42, 4096}}},
			}},
		}},
		{"FetchResponse", func() Message { return new(FetchResponse) }, []Message{
			&FetchResponse{Topics: []FetchTopicResponse{
				{Name: []byte("orders"), Partitions: []FetchPartitionResponse{
					{Partition: 0, HighWatermark: 1003, LogStart: 0, Records: sampleBatch(3)},
					{Partition: 5, Error: OffsetOutOfRange, HighWatermark: 23, LogStart: 10, Records: []byte{}},
				}},
			}},
		}},
		{"ListOffsetsRequest", func() Message { return new(ListOffsetsRequest) }, []Message{
			&ListOffsetsRequest{Topics: []ListOffsetsTopic{{Name: []byte("orders"), Partitions: []ListOffsetsPartition{
				{0, TimestampEarliest}, {1, TimestampLatest}, {2, 1_700_000_000_000}}}}},
		}},
		{"ListOffsetsResponse", func() Message { return new(ListOffsetsResponse) }, []Message{
			&ListOffsetsResponse{Topics: []ListOffsetsTopicResponse{{Name: []byte("orders"), Partitions: []ListOffsetsPartitionResponse{
				{0, None, 0, -1}, {1, None, 1500, -1}, {2, None, 1234, 1_700_000_000_004}, {9, UnknownPartition, 0, 0}}}}},
		}},
		{"OffsetCommitRequest", func() Message { return new(OffsetCommitRequest) }, []Message{
			&OffsetCommitRequest{Group: []byte("billing"), MemberID: []byte{}, Topics: []OffsetCommitTopic{{Name: []byte("orders"), Partitions: []OffsetCommitPartition{
				{0, 100, []byte("host-a")}, {1, 7, []byte{}}}}}},
			&OffsetCommitRequest{Group: []byte("billing"), MemberID: []byte("5f0c2a9e1b7d4c3a"), MemberEpoch: 12, Topics: []OffsetCommitTopic{
				{Name: []byte("orders"), Partitions: []OffsetCommitPartition{{3, 33622, []byte{}}}}}},
		}},
		{"OffsetCommitResponse", func() Message { return new(OffsetCommitResponse) }, []Message{
			&OffsetCommitResponse{Topics: []OffsetCommitTopicResponse{{Name: []byte("orders"), Partitions: []PartitionError{
				{0, None}, {1, OffsetOutOfRange}}}}},
		}},
		{"OffsetFetchRequest", func() Message { return new(OffsetFetchRequest) }, []Message{
			&OffsetFetchRequest{Group: []byte("billing"), MemberID: []byte{}, Topics: []OffsetFetchTopic{{Name: []byte("orders"), Partitions: []uint32{0, 1, 2}}}},
			&OffsetFetchRequest{Group: []byte("billing"), MemberID: []byte("5f0c2a9e1b7d4c3a"), MemberEpoch: 3},
		}},
		{"OffsetFetchResponse", func() Message { return new(OffsetFetchResponse) }, []Message{
			&OffsetFetchResponse{Topics: []OffsetFetchTopicResponse{{Name: []byte("orders"), Partitions: []OffsetFetchPartitionResponse{
				{0, 100, []byte("host-a"), 1_700_000_000_000, None}, {2, NoOffset, []byte{}, 0, None}}}}},
		}},
	}
}

func alterMsgTypes() []msgType {
	return []msgType{
		{"AlterTopicRequest", func() Message { return new(AlterTopicRequest) }, []Message{
			&AlterTopicRequest{Name: "orders", Configs: []Config{{ConfigRetentionMs, "3600000"}, {ConfigFlush, ""}}},
			&AlterTopicRequest{Name: "t"},
		}},
		{"AlterTopicResponse", func() Message { return new(AlterTopicResponse) }, []Message{
			&AlterTopicResponse{},
			&AlterTopicResponse{Error: InvalidConfig, Message: "segment_bytes: out of range"},
		}},
		{"AddPartitionsRequest", func() Message { return new(AddPartitionsRequest) }, []Message{
			&AddPartitionsRequest{Name: "orders", Partitions: 6},
		}},
		{"AddPartitionsResponse", func() Message { return new(AddPartitionsResponse) }, []Message{
			&AddPartitionsResponse{},
			&AddPartitionsResponse{Error: InvalidPartitions, Message: "topic has 6 partitions already"},
		}},
	}
}

func clusterMsgTypes() []msgType {
	return []msgType{
		{"ClusterStatusRequest", func() Message { return new(ClusterStatusRequest) }, []Message{
			&ClusterStatusRequest{},
		}},
		{"ClusterStatusResponse", func() Message { return new(ClusterStatusResponse) }, []Message{
			&ClusterStatusResponse{NodeID: 2, ControllerID: 1, Term: 4, CommitIndex: 120, AppliedIndex: 118,
				Nodes:  []ClusterNode{{1, "10.0.0.1:9400", true, 17}, {2, "10.0.0.2:9400", true, 18}, {3, "10.0.0.3:9400", false, 0}},
				Topics: 2, Partitions: 5,
				Offline: []ClusterPartition{{Topic: "orders", Partition: 2, Leader: NoNode, LeaderEpoch: 4,
					Replicas: []uint32{3}, ISR: []uint32{3}}},
				UnderReplicated: []ClusterPartition{{Topic: "payments", Partition: 0, Leader: 1, LeaderEpoch: 9,
					Replicas: []uint32{1, 3}, ISR: []uint32{1}}},
			},
			&ClusterStatusResponse{NodeID: 1},
		}},
		{"RaftMessagesRequest", func() Message { return new(RaftMessagesRequest) }, []Message{
			&RaftMessagesRequest{From: 3, Messages: [][]byte{{0x08, 0x03, 0x10, 0x01}, {0x08, 0x08}}},
			&RaftMessagesRequest{From: 1},
		}},
		{"BrokerHeartbeatRequest", func() Message { return new(BrokerHeartbeatRequest) }, []Message{
			&BrokerHeartbeatRequest{BrokerID: 2, BrokerEpoch: 1 << 33},
		}},
		{"BrokerHeartbeatResponse", func() Message { return new(BrokerHeartbeatResponse) }, []Message{
			&BrokerHeartbeatResponse{}, &BrokerHeartbeatResponse{Error: NotController, ControllerID: 3},
		}},
	}
}
