package reactor

import (
	"strings"
	"time"

	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/replica"
	"github.com/ringmq/ringmq/stats"
)

// serverMetrics holds pre-created series so the hot path never formats a
// metric name.
type serverMetrics struct {
	api [proto.APIReplicaFetch + 1]*stats.APIStats
}

func newServerMetrics() serverMetrics {
	var m serverMetrics
	m.api[0] = stats.API("unknown") // API numbers the server does not know
	for k := proto.APIHello; k < proto.APIKey(len(m.api)); k++ {
		if !k.Supports(0) { // a gap in the numbers
			continue
		}
		m.api[k] = stats.API(strings.ToLower(k.String()))
	}
	return m
}

func (m *serverMetrics) connOpened()    { stats.ConnOpened() }
func (m *serverMetrics) connClosed()    { stats.ConnClosed() }
func (m *serverMetrics) connRejected()  { stats.ConnRejected() }
func (m *serverMetrics) badFrame()      { stats.BadFrame() }
func (m *serverMetrics) acceptError()   { stats.AcceptError() }
func (m *serverMetrics) backpressure()  { stats.BackpressurePause() }
func (m *serverMetrics) bytesOut(n int) { stats.BytesSent(n) }
func (m *serverMetrics) coldRead(n int) { stats.ColdReadBytes(n) }
func (m *serverMetrics) fetchWake()     { stats.FetchWakeup() }
func (m *serverMetrics) indexFault()    { stats.IndexFault() }
func (m *serverMetrics) timedOut()      { stats.ConnTimedOut() }
func (m *serverMetrics) duplicate()     { stats.ProduceDuplicate() }

// requestDone records the time the server worked on a request: d, less
// waited, the time it spent parked in a long poll (observed apart).
func (m *serverMetrics) requestDone(api proto.APIKey, d, waited time.Duration) {
	if waited > 0 {
		stats.ObserveFetchWait(waited)
	}
	if a := m.apiStats(api); a != nil {
		a.Observe(d - waited)
	}
}

// responseErrors counts the error codes of a response to api: its own
// code, and every partition's or topic's code in resp (nil: none). This is
// the one place that decides what counts as a request error; the fetch
// response, which is not a proto.Message, counts its partitions through
// requestError. Safe on any goroutine (the admin goroutine uses it too).
func (m *serverMetrics) responseErrors(api proto.APIKey, code proto.ErrorCode, resp proto.Message) {
	m.requestError(api, code)
	switch r := resp.(type) {
	case *proto.ProduceResponse:
		for i := range r.Topics {
			for _, p := range r.Topics[i].Partitions {
				m.requestError(api, p.Error)
			}
		}
	case *proto.ListOffsetsResponse:
		for i := range r.Topics {
			for _, p := range r.Topics[i].Partitions {
				m.requestError(api, p.Error)
			}
		}
	case *proto.MetadataResponse:
		for i := range r.Topics {
			m.requestError(api, r.Topics[i].Error)
		}
	case *proto.OffsetCommitResponse:
		for i := range r.Topics {
			for _, p := range r.Topics[i].Partitions {
				m.requestError(api, p.Error)
			}
		}
	case *proto.OffsetFetchResponse:
		for i := range r.Topics {
			for _, p := range r.Topics[i].Partitions {
				m.requestError(api, p.Error)
			}
		}
	case *proto.DescribeTopicResponse:
		m.requestError(api, r.Error)
	case *proto.CreateTopicResponse:
		m.requestError(api, r.Error)
	case *proto.DeleteTopicResponse:
		m.requestError(api, r.Error)
	case *proto.AlterTopicResponse:
		m.requestError(api, r.Error)
	case *proto.AddPartitionsResponse:
		m.requestError(api, r.Error)
	case *proto.InitProducerResponse:
		m.requestError(api, r.Error)
	}
}

// requestError counts one error code (None is not counted).
func (m *serverMetrics) requestError(api proto.APIKey, code proto.ErrorCode) {
	if code == proto.None {
		return
	}
	if a := m.apiStats(api); a != nil {
		a.Failed(uint16(code), code.String())
	}
}

// apiStats returns api's series; an API number the server does not know
// is counted under api="unknown".
func (m *serverMetrics) apiStats(api proto.APIKey) *stats.APIStats {
	if int(api) < len(m.api) && m.api[api] != nil {
		return m.api[api]
	}
	return m.api[0]
}

func (m *serverMetrics) fsync(d time.Duration) { stats.ObserveFsync(d) }

func (m *serverMetrics) produced(p *partition, records, bytes int) {
	p.topic.stats.Produced(records, bytes)
}

func (m *serverMetrics) dropTopic(name string) { stats.DropTopic(name) }

func (m *serverMetrics) committed(group string, info *topicInfo, p uint32, off uint64) {
	g := stats.ForGroup(group, info.name, int32(p))
	g.SetCommitted(int64(off))
}

// replicated counts a follower's append (its disk bytes are counted at
// the write completion, as a produce's are).
func (m *serverMetrics) replicated(n int) { stats.Replicated(n) }
func (m *serverMetrics) truncated()       { stats.FollowerTruncated() }
func (m *serverMetrics) isrChanged(op replica.ISROp) {
	if op == replica.ISRExpand {
		stats.ISRExpanded()
	} else {
		stats.ISRShrunk()
	}
}
