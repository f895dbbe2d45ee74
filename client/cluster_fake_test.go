package client

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringmq/ringmq/proto"
)

// fakeCluster is nodes 1..n (fake servers) sharing one view of topic "t":
// each partition has a leader (proto.NoNode: offline) and a leader epoch,
// and one log (as if replicated) that only the leader appends to and
// serves; other nodes answer misled (NOT_LEADER unless set). Tests move
// leaders and kill nodes while a client runs.
type fakeCluster struct {
	producerIDs atomic.Int64
	t           *testing.T
	nodes       []*fakeServer // node id i+1

	mu      sync.Mutex
	leaders []uint32
	epochs  []uint32
	logs    [][]string // record values by partition
	down    []bool     // by node index: killed
	misled  proto.ErrorCode
	// lying makes node id answer misled for every partition although
	// Metadata says it leads them (0: none).
	lying uint32
	// lagging names a node that does not know topic "t" yet (0: none).
	lagging uint32
	// opening: so many Metadata answers for "t" say LEADER_NOT_AVAILABLE
	// (a node still opening a topic just created).
	opening atomic.Int64

	controller     uint32       // ClusterStatus's controller leader
	creates        atomic.Int64 // CreateTopic requests
	createRefusals int64        // the first ones answer CONTROLLER_NOT_AVAILABLE

	metadata   atomic.Int64    // Metadata requests answered
	metadataBy [4]atomic.Int64 // by node id: a refresh asks the bootstrap node once
	misleads   atomic.Int64    // misled answers
	servedBy   sync.Map        // "produce/fetch/list n p" → true: node n served partition p as leader
	fetchDelay time.Duration
}

func newFakeCluster(t *testing.T, leaders ...uint32) *fakeCluster {
	n := 3
	fc := &fakeCluster{t: t, leaders: leaders, epochs: make([]uint32, len(leaders)),
		logs: make([][]string, len(leaders)), down: make([]bool, n), misled: proto.NotLeader,
		fetchDelay: 20 * time.Millisecond}
	for i := range n {
		id := uint32(i + 1)
		fc.nodes = append(fc.nodes, newFakeServer(t, func(c *fakeConn, h proto.RequestHeader, body []byte) {
			fc.handle(id, c, h, body)
		}))
	}
	for i := range fc.epochs {
		fc.epochs[i] = 1
	}
	return fc
}

// addrs is the client's bootstrap list for nodes ids.
func (fc *fakeCluster) addrs(ids ...uint32) string {
	var out []string
	for _, id := range ids {
		out = append(out, fc.nodes[id-1].addr())
	}
	return strings.Join(out, ",")
}

// setLeader makes node leader partition p's leader in a new epoch.
func (fc *fakeCluster) setLeader(p int, leader uint32) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.leaders[p] = leader
	fc.epochs[p]++
}

// kill shuts node id down: its listener and connections close.
func (fc *fakeCluster) kill(id uint32) {
	fc.mu.Lock()
	fc.down[id-1] = true
	fc.mu.Unlock()
	fc.nodes[id-1].shutdown()
}

// log returns a copy of partition p's record values.
func (fc *fakeCluster) log(p int) []string {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return append([]string(nil), fc.logs[p]...)
}

func (fc *fakeCluster) served(op string, node uint32, p uint32) bool {
	_, ok := fc.servedBy.Load(fmt.Sprintf("%s %d %d", op, node, p))
	return ok
}

func (fc *fakeCluster) handle(id uint32, c *fakeConn, h proto.RequestHeader, body []byte) {
	var resp proto.Message
	switch h.API {
	case proto.APIMetadata:
		resp = fc.answerMetadata(id, decodeReq[proto.MetadataRequest](fc.t, body))
	case proto.APIProduce:
		resp = fc.answerProduce(id, decodeReq[proto.ProduceRequest](fc.t, body))
	case proto.APIFetch:
		r, empty := fc.answerFetch(id, decodeReq[proto.FetchRequest](fc.t, body))
		if empty { // a long poll that found nothing: answer after a while
			time.AfterFunc(fc.fetchDelay, func() { c.reply(h.CorrelationID, proto.None, r) })
			return
		}
		resp = r
	case proto.APIListOffsets:
		resp = fc.answerListOffsets(id, decodeReq[proto.ListOffsetsRequest](fc.t, body))
	case proto.APIDescribeTopic:
		resp = fc.answerDescribe(id)
	case proto.APIClusterStatus:
		resp = fc.answerStatus(id)
	case proto.APIInitProducer: // any node hands out ids (idempotent producers)
		resp = &proto.InitProducerResponse{ProducerID: int64(fc.producerIDs.Add(1)), Epoch: 0}
	case proto.APICreateTopic:
		req := decodeReq[proto.CreateTopicRequest](fc.t, body)
		r := &proto.CreateTopicResponse{}
		if fc.creates.Add(1) <= fc.createRefusals {
			r.Error, r.Message = proto.ControllerNotAvailable, "no controller leader yet"
		} else if req.ReplicationFactor > 1 {
			r.Error, r.Message = proto.InvalidReplicationFactor, "replication factor 3 > 1 live brokers"
		}
		resp = r
	default:
		fc.t.Errorf("fake cluster: unexpected %v", h.API)
		return
	}
	c.reply(h.CorrelationID, proto.None, resp)
}

func (fc *fakeCluster) answerMetadata(id uint32, req *proto.MetadataRequest) *proto.MetadataResponse {
	fc.metadata.Add(1)
	fc.metadataBy[id].Add(1)
	fc.mu.Lock()
	defer fc.mu.Unlock()
	resp := &proto.MetadataResponse{ControllerID: max(fc.controller, 1)}
	for i, s := range fc.nodes {
		resp.Brokers = append(resp.Brokers, proto.BrokerInfo{ID: uint32(i + 1), Addr: s.addr(), Alive: !fc.down[i]})
	}
	names := req.Topics
	if len(names) == 0 {
		names = []string{"t"}
	}
	for _, name := range names {
		if name != "t" || fc.lagging == id {
			resp.Topics = append(resp.Topics, proto.MetadataTopic{Name: name, Error: proto.UnknownTopic})
			continue
		}
		if fc.opening.Add(-1) >= 0 {
			resp.Topics = append(resp.Topics, proto.MetadataTopic{Name: name, Error: proto.LeaderNotAvailable})
			continue
		}
		t := proto.MetadataTopic{Name: name}
		for p, leader := range fc.leaders {
			pi := proto.PartitionInfo{Partition: uint32(p), Leader: leader, LeaderEpoch: fc.epochs[p],
				Replicas: []uint32{max(leader, 1)}}
			if leader != proto.NoNode {
				pi.ISR = []uint32{leader}
			}
			if leader == id { // the node's own view: its shard and offsets
				pi.Shard, pi.LogEnd = 1, uint64(len(fc.logs[p]))
			}
			t.Partitions = append(t.Partitions, pi)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

// leads reports whether node id may serve partition p, or the error it
// answers. fc.mu is held.
func (fc *fakeCluster) leads(id, p uint32) proto.ErrorCode {
	switch {
	case int(p) >= len(fc.leaders):
		return proto.UnknownPartition
	case fc.leaders[p] != id || fc.lying == id:
		fc.misleads.Add(1)
		return fc.misled
	}
	return proto.None
}

func (fc *fakeCluster) answerProduce(id uint32, req *proto.ProduceRequest) *proto.ProduceResponse {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	resp := &proto.ProduceResponse{}
	for _, t := range req.Topics {
		tr := proto.ProduceTopicResponse{Name: t.Name}
		for _, pp := range t.Partitions {
			pr := proto.ProducePartitionResponse{Partition: pp.Partition, Error: fc.leads(id, pp.Partition)}
			if pr.Error == proto.None {
				fc.servedBy.Store(fmt.Sprintf("produce %d %d", id, pp.Partition), true)
				pr.BaseOffset = uint64(len(fc.logs[pp.Partition]))
				fc.logs[pp.Partition] = append(fc.logs[pp.Partition], batchValues(fc.t, pp.Records)...)
				pr.LogEnd = uint64(len(fc.logs[pp.Partition]))
			}
			tr.Partitions = append(tr.Partitions, pr)
		}
		resp.Topics = append(resp.Topics, tr)
	}
	return resp
}

// answerFetch serves up to 10 records per partition from the asked
// offset; empty is true when no partition had any.
func (fc *fakeCluster) answerFetch(id uint32, req *proto.FetchRequest) (resp *proto.FetchResponse, empty bool) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	resp, empty = &proto.FetchResponse{}, true
	for _, t := range req.Topics {
		tr := proto.FetchTopicResponse{Name: t.Name}
		for _, fp := range t.Partitions {
			pr := proto.FetchPartitionResponse{Partition: fp.Partition, Error: fc.leads(id, fp.Partition)}
			if pr.Error == proto.None {
				fc.servedBy.Store(fmt.Sprintf("fetch %d %d", id, fp.Partition), true)
				log := fc.logs[fp.Partition]
				pr.HighWatermark = uint64(len(log))
				if fp.Offset < uint64(len(log)) {
					end := min(uint64(len(log)), fp.Offset+10)
					pr.Records = fakeBatch(fp.Offset, log[fp.Offset:end])
					empty = false
				}
			} else {
				empty = false
			}
			tr.Partitions = append(tr.Partitions, pr)
		}
		resp.Topics = append(resp.Topics, tr)
	}
	return resp, empty
}

func (fc *fakeCluster) answerListOffsets(id uint32, req *proto.ListOffsetsRequest) *proto.ListOffsetsResponse {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	resp := &proto.ListOffsetsResponse{}
	for _, t := range req.Topics {
		tr := proto.ListOffsetsTopicResponse{Name: t.Name}
		for _, lp := range t.Partitions {
			pr := proto.ListOffsetsPartitionResponse{Partition: lp.Partition, Error: fc.leads(id, lp.Partition)}
			if pr.Error == proto.None {
				fc.servedBy.Store(fmt.Sprintf("list %d %d", id, lp.Partition), true)
				if lp.Timestamp == proto.TimestampLatest {
					pr.Offset = uint64(len(fc.logs[lp.Partition]))
				}
			}
			tr.Partitions = append(tr.Partitions, pr)
		}
		resp.Topics = append(resp.Topics, tr)
	}
	return resp
}

// batchValues returns the record values of the batches in b.
func batchValues(t *testing.T, b []byte) []string {
	var out []string
	for len(b) > 0 {
		h, rest, err := proto.ValidateBatch(b)
		if err != nil {
			t.Errorf("fake cluster: produce batch: %v", err)
			return out
		}
		records, err := proto.DecompressRecords(nil, b[:h.Size()])
		if err != nil {
			t.Errorf("fake cluster: produce batch: %v", err)
			return out
		}
		it := proto.NewRecordIterRecords(h, records)
		for it.Next() {
			out = append(out, string(it.Record().Value))
		}
		b = rest
	}
	return out
}

// fakeBatch is one batch of values from offset base.
func fakeBatch(base uint64, values []string) []byte {
	var b proto.BatchBuilder
	b.Reset(nil)
	for _, v := range values {
		b.Append(1000, nil, []byte(v), nil)
	}
	out := append([]byte(nil), b.Finish()...)
	proto.SetBaseOffset(out, base)
	return out
}

// answerDescribe describes "t" as node id sees it: every partition's
// leadership, and offsets and size only where id leads.
func (fc *fakeCluster) answerDescribe(id uint32) *proto.DescribeTopicResponse {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	resp := &proto.DescribeTopicResponse{Configs: []proto.Config{{Key: proto.ConfigFlush, Value: proto.FlushInterval}}}
	for p, leader := range fc.leaders {
		dp := proto.DescribePartition{Partition: uint32(p), Leader: leader, LeaderEpoch: fc.epochs[p],
			Replicas: []uint32{max(leader, 1)}}
		if leader != proto.NoNode {
			dp.ISR = []uint32{leader}
		}
		if leader == id {
			dp.Shard, dp.LogEnd, dp.Bytes = 1, uint64(len(fc.logs[p])), 100*uint64(len(fc.logs[p]))
		}
		resp.Partitions = append(resp.Partitions, dp)
	}
	return resp
}

// answerStatus is node id's view: the controller fc.controller, a term
// that tells the nodes apart (10 + id).
func (fc *fakeCluster) answerStatus(id uint32) *proto.ClusterStatusResponse {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	resp := &proto.ClusterStatusResponse{NodeID: id, ControllerID: fc.controller, Term: 10 + uint64(id),
		CommitIndex: 100, Topics: 1, Partitions: uint32(len(fc.leaders))}
	for i, s := range fc.nodes {
		resp.Nodes = append(resp.Nodes, proto.ClusterNode{ID: uint32(i + 1), Addr: s.addr(), Alive: !fc.down[i], BrokerEpoch: uint64(i + 5)})
	}
	for p, leader := range fc.leaders {
		if leader == proto.NoNode {
			resp.Offline = append(resp.Offline, proto.ClusterPartition{Topic: "t", Partition: uint32(p), LeaderEpoch: fc.epochs[p], Replicas: []uint32{1}})
		}
	}
	return resp
}
