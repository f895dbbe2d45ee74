package reactor

import (
	"net"
	"testing"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

// Parked fetches over partitions of both reactors, ended by short
// deadlines and by their connections closing while the owners still hold
// watch messages for them: nothing may race (run with -race) and the
// server must still shut down cleanly.
func TestParkedCrossShardFetchesEndCleanly(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "park", 4)
	var parts []proto.FetchPartition
	for p := uint32(0); p < 4; p++ {
		parts = append(parts, proto.FetchPartition{Partition: p, PartitionMaxBytes: 1 << 20})
	}
	for i := 0; i < 100; i++ {
		nc, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		var frame []byte
		for j := 0; j < 4; j++ {
			req := &proto.FetchRequest{MaxWaitMs: uint32(j % 3), MinBytes: 1, MaxBytes: 1 << 20,
				Topics: []proto.FetchTopic{{Name: []byte("park"), Partitions: parts}}}
			if j == 3 {
				req.MaxWaitMs = 60_000
			}
			frame = proto.AppendRequest(frame, uint32(j), req)
		}
		nc.Write(frame)
		nc.Close()
	}
	// The server still serves, and a long poll still wakes on data.
	produceOne(t, c, "park", 3, []byte("after"))
	if got := readAll(t, c, "park", 4); len(got[3]) != 1 {
		t.Fatalf("partition 3 holds %d records", len(got[3]))
	}
}
