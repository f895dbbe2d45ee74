package reactor

import (
	"time"

	"github.com/ringmq/ringmq/proto"
)

// request is one received request frame and everything needed to answer
// it. It is owned by the reactor that received it (its origin); another
// reactor serving some of its partitions reads its decoded fields and posts
// results back through the origin's mailbox.
type request struct {
	r     *Reactor
	c     *conn
	hdr   proto.RequestHeader
	frame []byte
	body  []byte // frame past the request header
	start time.Time
	// waited is the time a fetch spent parked in a long poll; it is
	// observed apart from the request's own latency.
	waited time.Duration

	// pending counts partition operations (local I/O or forwarded parts)
	// still outstanding; the response is built when it reaches zero.
	pending int
	// autoTried is set once unknown topics were sent for auto-creation, so
	// a request is redispatched at most once.
	autoTried bool

	produce     proto.ProduceRequest
	produceResp proto.ProduceResponse
	fetch       fetchState
	listOffsets proto.ListOffsetsRequest
	listResp    proto.ListOffsetsResponse
	// respParts holds the parts of a one-buffer response (respond).
	respParts [1][]byte
}

func (r *Reactor) getRequest() *request {
	if n := len(r.reqFree); n > 0 {
		q := r.reqFree[n-1]
		r.reqFree = r.reqFree[:n-1]
		return q
	}
	return &request{r: r}
}

// startRequest copies one whole frame into a pooled buffer and dispatches it.
func (r *Reactor) startRequest(c *conn, frame []byte) {
	if r.stopping {
		return
	}
	b := r.pool.get(len(frame))
	copy(b, frame)
	r.takeRequest(c, b)
}

// takeRequest dispatches a whole frame held in a buffer that its request
// now owns (returned to the pool when the request ends). Once the server
// is stopping, frames are dropped unread: the connection closes when what
// it sent before has been answered.
func (r *Reactor) takeRequest(c *conn, frame []byte) {
	hdr, _, err := proto.ParseRequestHeader(frame)
	if r.stopping || err != nil {
		r.pool.put(frame)
		if err != nil && !r.stopping {
			r.protocolError(c)
		}
		return
	}
	q := r.getRequest()
	q.c, q.hdr, q.start = c, hdr, r.now
	q.frame = frame
	q.body = q.frame[proto.RequestHeaderSize:len(frame):len(frame)]
	q.pending, q.autoTried, q.waited = 0, false, 0
	c.requests++
	c.unanswered += len(frame)
	r.hold(c, int64(cap(q.frame)))
	r.checkBudget(c)
	r.dispatch(q)
}

func (r *Reactor) dispatch(q *request) {
	body := q.body
	if _, known := q.hdr.API.MaxVersion(); !known {
		r.respondError(q, proto.UnsupportedAPI)
		return
	}
	if !q.hdr.API.Supports(q.hdr.Version) {
		r.respondError(q, proto.UnsupportedVersion)
		return
	}
	switch q.hdr.API {
	case proto.APIProduce:
		r.handleProduce(q, body)
	case proto.APIFetch:
		r.handleFetch(q, body)
	case proto.APIReplicaFetch:
		r.handleReplicaFetch(q, body)
	case proto.APIHello:
		r.handleHello(q, body)
	case proto.APIMetadata:
		r.handleMetadata(q, body)
	case proto.APIDescribeTopic:
		r.handleDescribe(q, body)
	case proto.APIListOffsets:
		r.handleListOffsets(q, body)
	case proto.APICreateTopic, proto.APIDeleteTopic, proto.APIAlterTopic, proto.APIAddPartitions,
		proto.APIBrokerHeartbeat, proto.APIInitProducer:
		r.srv.postAdmin(adminJob{origin: r, req: q, api: q.hdr.API, body: body})
	case proto.APIClusterStatus:
		r.handleClusterStatus(q, body)
	case proto.APIRaftMessages:
		r.handleRaftMessages(q, body)
	case proto.APIOffsetCommit, proto.APIOffsetFetch, proto.APIListGroups, proto.APIJoinGroup,
		proto.APIHeartbeat, proto.APILeaveGroup, proto.APIDescribeGroup, proto.APIDeleteGroup,
		proto.APIResetOffsets:
		r.postGroup(q, body)
	default:
		r.respondError(q, proto.UnsupportedAPI)
	}
}

// respond queues resp as q's answer.
func (r *Reactor) respond(q *request, code proto.ErrorCode, resp proto.Message) {
	buf := r.pool.get(256)[:0]
	buf = proto.AppendResponse(buf, proto.ResponseHeader{CorrelationID: q.hdr.CorrelationID, Error: code}, resp)
	r.srv.metrics.responseErrors(q.hdr.API, code, resp)
	q.respParts[0] = buf // the frame's parts live in q, which outlives the send
	r.respondFrame(q, outFrame{parts: q.respParts[:], buf: buf})
}

func (r *Reactor) respondError(q *request, code proto.ErrorCode) {
	r.respond(q, code, nil)
}

// respondRaw queues an already encoded response frame (from the admin
// goroutine; not pooled).
func (r *Reactor) respondRaw(q *request, frame []byte) {
	r.respondFrame(q, outFrame{parts: [][]byte{frame}})
}

// respondFrame queues f on q's connection, or drops it if the connection is
// gone; either way q finishes once f is sent or dropped.
func (r *Reactor) respondFrame(q *request, f outFrame) {
	r.srv.metrics.requestDone(q.hdr.API, r.now.Sub(q.start), q.waited)
	f.req = q
	c := q.c
	if c.closing || c.fd < 0 {
		r.frameSent(&f)
		return
	}
	r.queueFrame(c, f)
}

// finishNoResponse ends a request that gets no answer (acks=0 produce).
func (r *Reactor) finishNoResponse(q *request) {
	r.srv.metrics.requestDone(q.hdr.API, r.now.Sub(q.start), q.waited)
	r.sentResponse(q)
}

// sentResponse releases q once its response left (or was dropped).
func (r *Reactor) sentResponse(q *request) {
	c := q.c
	c.requests--
	c.unanswered -= len(q.frame)
	r.releaseFetch(q)
	r.hold(c, -int64(cap(q.frame)))
	r.pool.put(q.frame)
	q.frame, q.body, q.c, q.respParts[0] = nil, nil, nil, nil
	r.reqFree = append(r.reqFree, q)
	r.maybeFinishConn(c)
}

// autoCreate sends q's unknown topics (name(0) .. name(n-1)) for creation
// when topics.auto_create is on; q is dispatched again once they exist. It
// reports whether it did. It allocates only when a topic is missing.
func (r *Reactor) autoCreate(q *request, n int, name func(i int) []byte) bool {
	if !r.srv.cfg.Topics.AutoCreate || q.autoTried {
		return false
	}
	tt := r.srv.topics.Load()
	var missing []string
	for i := 0; i < n; i++ {
		if t := name(i); tt.lookup(t) == nil && proto.ValidName(t) {
			missing = append(missing, string(t))
		}
	}
	if len(missing) == 0 {
		return false
	}
	q.autoTried = true
	r.srv.postAdmin(adminJob{origin: r, req: q, api: apiAutoCreate, topics: missing})
	return true
}

func (r *Reactor) handleHello(q *request, body []byte) {
	var req proto.HelloRequest
	if err := req.Decode(body); err != nil {
		r.respondError(q, proto.InvalidRequest)
		return
	}
	v, ok := proto.NegotiateVersion(req.MinVersion, req.MaxVersion)
	if !ok {
		r.respondError(q, proto.UnsupportedVersion)
		return
	}
	resp := proto.HelloResponse{Version: v, Reactors: uint16(len(r.srv.reactors)), Shard: uint16(r.id)}
	target := int(req.RequestedShard)
	if req.RequestedShard < 0 || target >= len(r.srv.reactors) || target == r.id {
		r.respond(q, proto.None, &resp)
		return
	}
	resp.Shard, resp.Moved = uint16(target), true
	r.handOff(q, target, &resp)
}

// handOff moves q's connection to reactor target, which answers the Hello.
// The connection must have nothing else in flight; otherwise it stays here.
func (r *Reactor) handOff(q *request, target int, resp *proto.HelloResponse) {
	c := q.c
	if c.requests != 1 || len(c.out) > 0 || c.sending || len(c.sends.pending) > 0 || len(c.in) > 0 || c.closing {
		resp.Shard, resp.Moved = uint16(r.id), false
		r.respond(q, proto.None, resp)
		return
	}
	frame := proto.AppendResponse(nil, proto.ResponseHeader{CorrelationID: q.hdr.CorrelationID}, resp)
	c.handoff = target
	r.srv.metrics.requestDone(q.hdr.API, r.now.Sub(q.start), q.waited)
	r.sentResponse(q)
	r.pendingHandoffs = append(r.pendingHandoffs, handoff{c: c, target: target, hello: frame})
	r.tryHandoffs()
}
