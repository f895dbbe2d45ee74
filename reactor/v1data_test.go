package reactor

import (
	"testing"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

// TestServeVersion1DataDir: a server started on a data directory written
// by the last version-1 server (every version-1 codec) serves every record
// intact, in version 2.
func TestServeVersion1DataDir(t *testing.T) {
	dir, want := ringtest.CopyV1Data(t, "..")
	srv := startServer(t, testConfig(t, dir))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	defer c.Close()
	var got []ringtest.V1Record
	for p := uint32(0); p < 2; p++ {
		end := ringtest.ListOffset(t, c, "v1", p, -1)
		for next := uint64(0); next < end; {
			req := &proto.FetchRequest{MaxBytes: 1 << 20, Topics: []proto.FetchTopic{{Name: []byte("v1"),
				Partitions: []proto.FetchPartition{{Partition: p, Offset: next, PartitionMaxBytes: 1 << 20}}}}}
			resp, err := c.Fetch(ringtest.Ctx(t), req)
			if err != nil {
				t.Fatal(err)
			}
			fp := resp.Topics[0].Partitions[0]
			if fp.Error != proto.None || len(fp.Records) == 0 {
				t.Fatalf("fetch v1/%d@%d: %v, %d bytes", p, next, fp.Error, len(fp.Records))
			}
			got = ringtest.AppendV1Records(t, got, p, fp.Records)
			next = got[len(got)-1].Offset + 1
		}
	}
	ringtest.CheckV1Records(t, got, want)
}
