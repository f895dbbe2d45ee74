package client

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ringmq/ringmq/proto"
)

// A group member's fetches name its group, member id and member epoch, so
// the broker can fence them; a fetch refused FENCED_MEMBER_EPOCH (the
// coordinator moved the partition before the member heard) is not an
// error for the application: the member heartbeats at once and reads on.
func TestGroupConsumerFetchCarriesMemberEpoch(t *testing.T) {
	batch := func() []byte {
		var b proto.BatchBuilder
		b.Reset(nil)
		b.Append(1000, nil, []byte("v"), nil)
		return append([]byte(nil), b.Finish()...)
	}()
	var mu sync.Mutex
	var joined string
	var fetches []proto.FetchRequest
	heartbeats, heartbeatsAtFence := 0, -1
	assignment := func(id string) *proto.AssignmentResponse {
		return &proto.AssignmentResponse{MemberID: id, MemberEpoch: 3, HeartbeatIntervalMs: 60_000,
			Assigned: []proto.GroupPartitions{{Topic: "t", Partitions: []uint32{0}}}}
	}
	s := newFakeServer(t, func(fc *fakeConn, h proto.RequestHeader, body []byte) {
		mu.Lock()
		defer mu.Unlock()
		var resp proto.Message
		switch h.API {
		case proto.APIMetadata:
			resp = &proto.MetadataResponse{Topics: []proto.MetadataTopic{{Name: "t", Partitions: []proto.PartitionInfo{{LogEnd: 1}}}}}
		case proto.APIFindCoordinator: // a single node: itself
			resp = &proto.FindCoordinatorResponse{}
		case proto.APIJoinGroup:
			joined = decodeReq[proto.JoinGroupRequest](t, body).MemberID
			resp = assignment(joined)
		case proto.APIHeartbeat:
			heartbeats++
			resp = assignment(joined)
		case proto.APIOffsetFetch:
			resp = &proto.OffsetFetchResponse{Topics: []proto.OffsetFetchTopicResponse{{Name: []byte("t"),
				Partitions: []proto.OffsetFetchPartitionResponse{{Offset: 0}}}}}
		case proto.APILeaveGroup:
			resp = &proto.GroupResultResponse{}
		case proto.APIFetch:
			req := decodeReq[proto.FetchRequest](t, body)
			req.Group, req.MemberID = append([]byte(nil), req.Group...), append([]byte(nil), req.MemberID...)
			req.Topics = nil
			fetches = append(fetches, *req)
			pr := proto.FetchPartitionResponse{HighWatermark: 1, Records: batch}
			if len(fetches) == 1 {
				pr = proto.FetchPartitionResponse{Error: proto.FencedMemberEpoch, HighWatermark: 1}
				heartbeatsAtFence = heartbeats
			}
			resp = &proto.FetchResponse{Topics: []proto.FetchTopicResponse{{Name: []byte("t"), Partitions: []proto.FetchPartitionResponse{pr}}}}
		default:
			t.Errorf("unexpected %v", h.API)
			return
		}
		fc.reply(h.CorrelationID, proto.None, resp)
	})
	c, err := NewConsumer(s.addr(), ConsumerOptions{Group: "g", SessionTimeout: 10 * time.Second,
		MaxWait: 50 * time.Millisecond, RetryBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Subscribe(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	recs, err := c.Poll(ctx)
	if err != nil || len(recs) != 1 {
		t.Fatalf("poll after a fenced fetch: %d records, %v", len(recs), err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(fetches) < 2 {
		t.Fatalf("%d fetches, want the fenced one and another", len(fetches))
	}
	for i, f := range fetches {
		if string(f.Group) != "g" || string(f.MemberID) != joined || joined == "" || f.MemberEpoch != 3 {
			t.Fatalf("fetch %d names group %q member %q epoch %d; want g, %q, 3", i, f.Group, f.MemberID, f.MemberEpoch, joined)
		}
	}
	if heartbeats <= heartbeatsAtFence {
		t.Fatalf("no heartbeat after the fenced fetch (%d before, %d now)", heartbeatsAtFence, heartbeats)
	}
}
