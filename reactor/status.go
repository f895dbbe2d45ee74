package reactor

import (
	"time"

	"github.com/ringmq/ringmq/stats"
	"github.com/ringmq/ringmq/status"
)

// Status is the server's state for the status page. It reads only what
// other goroutines may read: the published topic table, each partition's
// atomics (partShared) and the stats registry; it never touches a reactor.
func (s *Server) Status() status.Snapshot {
	snap := status.Snapshot{
		TimeMs: time.Now().UnixMilli(),
		Nodes: []status.Node{{ID: 0, Addr: s.Addr(), Role: "standalone", Self: true,
			Reactors: len(s.reactors), StartedMs: s.startedAt.Load(), Connections: s.connCount.Load()}},
		Groups: []status.Group{},
	}
	tt := s.topics.Load()
	for _, name := range tt.sortedNames() {
		snap.Topics = append(snap.Topics, topicStatus(tt.byName[name]))
	}
	if snap.Topics == nil {
		snap.Topics = []status.Topic{}
	}
	for _, g := range stats.Groups() {
		snap.Groups = append(snap.Groups, status.Group(g))
	}
	return snap
}

func topicStatus(ti *topicInfo) status.Topic {
	tot := ti.stats.Totals()
	t := status.Topic{Name: ti.name, ProducedMessages: tot.ProducedMessages, ProducedBytes: tot.ProducedBytes,
		FetchedMessages: tot.FetchedMessages, FetchedBytes: tot.FetchedBytes,
		Partitions: make([]status.Partition, ti.partitions)}
	for p := range t.Partitions {
		sh := ti.shared[p]
		start, end := sh.logStart.Load(), sh.logEnd.Load()
		part := status.Partition{ID: uint32(p), Shard: int(ti.shards[p]), LogStart: start, LogEnd: end,
			Bytes: sh.bytes.Load()}
		t.Partitions[p] = part
		t.Messages += end - min(start, end)
		t.Bytes += part.Bytes
	}
	return t
}
