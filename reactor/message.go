package reactor

import (
	"time"

	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/replica"
	"github.com/ringmq/ringmq/storage"
	"github.com/ringmq/ringmq/tlsengine"
)

// msgKind says what a mailbox message asks of its reactor.
type msgKind uint8

const (
	msgProduce       msgKind = iota + 1 // append q's part (ti, pi) here
	msgProduceDone                      // result of a forwarded produce part
	msgFetch                            // read q's fetch part idx here
	msgFetchDone                        // views of a forwarded fetch part (end: HW, start: log start, base: log end)
	msgRelease                          // views read here are no longer needed
	msgWatch                            // register origin's parked fetch with (topic, idx)'s replica (base: offset, end: HW seen, start: min bytes, at: deadline)
	msgWakeFetch                        // wake a parked fetch (final: answer it)
	msgListOffset                       // resolve q's list-offsets part here
	msgListDone                         // result of a forwarded list-offsets part
	msgAdopt                            // serve this socket (shard hand-off)
	msgReply                            // send this encoded response for q
	msgDrop                             // stop serving a topic's partitions; hand their logs back
	msgStop                             // shutdown, first phase: stop taking requests
	msgExit                             // shutdown, second phase: end the loop once idle
	msgRedispatch                       // topics were auto-created: dispatch req again
	msgListen                           // partitions are open: start accepting
	msgResumed                          // a fenced partition's resume job finished
	msgUpdateTopic                      // a topic was created, altered or grew: apply update
	msgLogReady                         // part's log finished background work its owner waits for
	msgWatchFollower                    // park origin's replica fetch on (topic, idx) (base: offset, end: HW seen, at: deadline)
	msgReplicaAnswer                    // a leader's answer for a partition followed here (answer)
	msgTruncated                        // part's follower truncation to base finished (err)
	msgISRRefused                       // the controller refused part's ISR proposal at partition epoch idx
	msgTLSReady                         // serve this socket: its TLS handshake finished (tls.go)
)

// message is one mailbox entry. Which fields are set depends on kind; a
// message is a plain value so a warm mailbox does not allocate.
type message struct {
	kind   msgKind
	origin *Reactor
	req    *request
	gen    uint32
	ti, pi int32
	idx    int32
	code   proto.ErrorCode
	base   uint64
	end    uint64
	start  uint64
	ts     int64
	at     time.Time
	final  bool
	fd     int
	data   []byte
	frame  []byte
	views  []storage.View
	topic  *topicInfo
	update *topicUpdate
	done   chan error
	part   *partition
	resume storage.ResumeResult
	auth   *connAuth // msgAdopt: the connection's authentication
	answer *fetchAnswer
	// prodSnap: msgTruncated's producer state rebuilt from the cut log.
	prodSnap *replica.ProducerSnapshot
	err      error
	// tls and principal travel with a socket (msgAdopt, msgTLSReady).
	tls       *tlsengine.Engine
	principal string
}

func (r *Reactor) onMessage(m *message) {
	switch m.kind {
	case msgProduce:
		r.appendPart(m.req, m.origin, int(m.ti), int(m.pi))
	case msgProduceDone:
		r.producePartDone(m.req, int(m.ti), int(m.pi), m.code, m.base, m.end)
	case msgFetch:
		r.fetchRemotePart(m)
	case msgFetchDone:
		r.fetchPartDone(m.req, int(m.idx), m.code, m.end, m.start, m.base, m.views, m.data)
	case msgRelease:
		releaseViews(m.views)
	case msgWatch:
		r.watchPartition(m)
	case msgWatchFollower:
		r.watchFollower(m)
	case msgReplicaAnswer:
		r.onReplicaAnswer(m.answer)
	case msgTruncated:
		r.onTruncated(m.part, m.base, m.err, m.prodSnap)
	case msgISRRefused:
		r.onISRRefused(m.part, m.idx)
	case msgWakeFetch:
		r.wakeFetch(m.req, m.gen, m.final)
	case msgListOffset:
		r.listOffsetPart(m.req, m.origin, int(m.ti), int(m.pi))
	case msgListDone:
		r.listOffsetDone(m.req, int(m.ti), int(m.pi), m.code, m.base, m.ts)
	case msgAdopt:
		r.adopt(m.fd, m.data, outFrame{parts: [][]byte{m.frame}}, m.auth, m.tls)
	case msgReply:
		r.respondRaw(m.req, m.frame)
	case msgDrop:
		r.dropTopic(m.update)
		m.done <- nil
	case msgStop:
		r.beginStop()
	case msgExit:
		r.beginExit()
	case msgRedispatch:
		r.dispatch(m.req)
	case msgListen:
		r.armAccept()
	case msgResumed:
		r.onResumed(m.part, m.resume)
	case msgUpdateTopic:
		m.done <- r.updateTopic(m.update)
	case msgLogReady:
		r.onLogReady(m.part)
	case msgTLSReady:
		r.onTLSReady(m.fd, m.tls)
	}
}

func releaseViews(vs []storage.View) {
	for i := range vs {
		vs[i].Release()
	}
}
