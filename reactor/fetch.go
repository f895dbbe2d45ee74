package reactor

import (
	"time"

	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/storage"
)

// Fetch path: the origin gathers every partition (reading its own from the
// mmap'd segments, asking owners for the rest), then either answers with
// header bytes plus the segment slices (no copy), or, below min_bytes,
// releases what it read and parks until an append on one of the
// partitions or max_wait. Views read by another reactor go back to it for
// release once the response is sent.

type fetchState struct {
	req      proto.FetchRequest
	parts    []fetchPart
	views    []storage.View // read here; released here
	bytes    int
	gen      uint32 // bumped on every park and unpark; stale wake-ups are ignored
	parked   bool
	parkedAt time.Time
	final    bool
	deadline time.Time
	out      [][]byte
}

type fetchPart struct {
	ti, pi   int32
	info     *topicInfo // nil for an unknown topic
	owner    int32
	code     proto.ErrorCode
	hw       uint64
	logStart uint64
	v0, vn   int32          // range of local views in fetchState.views
	remote   []storage.View // read by owner; released there
	size     int
	// cold holds the records read through the ring (pooled) when they were
	// not in page cache; coldView pins the file until that read completes.
	cold     []byte
	coldView storage.View
}

func (r *Reactor) handleFetch(q *request, body []byte) {
	fs := &q.fetch
	if err := fs.req.Decode(body); err != nil {
		r.respondError(q, proto.InvalidRequest)
		return
	}
	fs.parts = fs.parts[:0]
	for ti := range fs.req.Topics {
		for pi := range fs.req.Topics[ti].Partitions {
			fs.parts = append(fs.parts, fetchPart{ti: int32(ti), pi: int32(pi), owner: -1})
		}
	}
	fs.final = fs.req.MaxWaitMs == 0 || fs.req.MinBytes == 0
	fs.deadline = r.now.Add(time.Duration(fs.req.MaxWaitMs) * time.Millisecond)
	r.gatherFetch(q)
}

func (r *Reactor) fetchReq(q *request, idx int) (*proto.FetchTopic, *proto.FetchPartition) {
	fp := &q.fetch.parts[idx]
	t := &q.fetch.req.Topics[fp.ti]
	return t, &t.Partitions[fp.pi]
}

func (r *Reactor) gatherFetch(q *request) {
	fs := &q.fetch
	fs.bytes = 0
	fs.views = fs.views[:0]
	tt := r.srv.topics.Load()
	q.pending = 1
	for i := range fs.parts {
		fp := &fs.parts[i]
		t, p := r.fetchReq(q, i)
		*fp = fetchPart{ti: fp.ti, pi: fp.pi, owner: -1, info: tt.lookup(t.Name)}
		owner, code := partOwner(fp.info, p.Partition)
		if code != proto.None {
			fp.code = code
			continue
		}
		fp.owner = int32(owner)
		q.pending++
		if owner == r.id {
			r.readLocal(q, i)
		} else {
			r.srv.reactors[owner].mb.post(message{kind: msgFetch, origin: r, req: q, idx: int32(i)})
		}
	}
	r.fetchStep(q)
}

// partRange checks a fetch part against the partition this reactor owns. It
// returns the partition, its log end and start, an error code for an
// unknown partition or an offset outside the log, and how many bytes to
// read (0: nothing yet, the offset is the log end).
func (r *Reactor) partRange(t *proto.FetchTopic, p *proto.FetchPartition, maxBytes uint32) (
	part *partition, code proto.ErrorCode, hw, start uint64, limit int) {
	part = r.partition(t.Name, p.Partition)
	if part == nil {
		return nil, proto.UnknownPartition, 0, 0, 0
	}
	hw, start = part.log.LogEnd(), part.log.LogStart()
	switch {
	case p.Offset > hw || p.Offset < start:
		return part, proto.OffsetOutOfRange, hw, start, 0
	case p.Offset == hw:
		return part, proto.None, hw, start, 0
	}
	return part, proto.None, hw, start, int(min(p.PartitionMaxBytes, maxBytes))
}

// readLocal reads a part this reactor owns for its own fetch: cold data
// through the ring (readCold), hot data as views of the mmap.
func (r *Reactor) readLocal(q *request, idx int) {
	fs := &q.fetch
	t, p := r.fetchReq(q, idx)
	part, code, hw, start, limit := r.partRange(t, p, fs.req.MaxBytes)
	fp := &fs.parts[idx]
	fp.code, fp.hw, fp.logStart = code, hw, start
	if limit > 0 {
		if v, ok := part.log.ColdView(p.Offset, limit); ok {
			r.readCold(q, idx, v)
		} else {
			r.readViews(q, idx, part, p.Offset, limit)
		}
	}
	r.fetchStep(q)
}

// readViews appends the views of [off, off+limit) to the fetch's views.
func (r *Reactor) readViews(q *request, idx int, part *partition, off uint64, limit int) {
	fs := &q.fetch
	fp := &fs.parts[idx]
	v0 := len(fs.views)
	views, err := part.log.Read(off, limit, fs.views)
	if err != nil {
		fp.code = storageErrorCode(err)
		return
	}
	fs.views = views
	fp.v0, fp.vn = int32(v0), int32(len(views)-v0)
	fp.size = viewBytes(views[v0:])
	fs.bytes += fp.size
}

// readCold starts a ring read of a range that is not in page cache (v, from
// Log.ColdView), so a consumer catching up on old data never faults inside
// the reactor and never stalls its producers.
func (r *Reactor) readCold(q *request, idx int, v storage.View) {
	fp := &q.fetch.parts[idx]
	fp.coldView = v
	fp.cold = r.pool.get(v.Len())
	slot, o := r.ops.alloc()
	*o = ioOp{req: q, idx: int32(idx)}
	q.pending++
	r.srv.metrics.coldRead(v.Len())
	r.ring.PrepareRead(v.Fd(), fp.cold, uint64(v.Pos()), makeUD(udRead, 0, slot))
}

// onColdRead keeps the whole batches a cold read got; when it failed or got
// less than one batch, the part is read from the mmap after all.
func (r *Reactor) onColdRead(o *ioOp, res int32) {
	if o.origin != nil {
		r.onRemoteColdRead(o, res)
		return
	}
	q := o.req
	fs := &q.fetch
	fp := &fs.parts[o.idx]
	fp.coldView.Release()
	if n := wholeBatches(fp.cold[:max(res, 0)]); n > 0 {
		fp.cold = fp.cold[:n]
		fp.size = n
		fs.bytes += n
	} else {
		r.pool.put(fp.cold)
		fp.cold = nil
		t, p := r.fetchReq(q, int(o.idx))
		if part, code, _, _, limit := r.partRange(t, p, fs.req.MaxBytes); limit > 0 {
			r.readViews(q, int(o.idx), part, p.Offset, limit)
		} else {
			fp.code = code
		}
	}
	r.fetchStep(q)
}

// wholeBatches is the length of the whole, valid batches at the start of b.
func wholeBatches(b []byte) int {
	n := 0
	for len(b) > 0 {
		h, rest, err := proto.ValidateBatch(b)
		if err != nil {
			break
		}
		n += h.Size()
		b = rest
	}
	return n
}

// fetchRemotePart runs on the owner of a forwarded fetch part and posts the
// result back: views of the mmap (released back here after the send), or,
// for cold data, the whole batches a ring read got into a buffer that then
// belongs to the origin.
func (r *Reactor) fetchRemotePart(m *message) {
	q, origin, idx := m.req, m.origin, m.idx
	t, p := r.fetchReq(q, int(idx))
	part, code, hw, start, limit := r.partRange(t, p, q.fetch.req.MaxBytes)
	reply := message{kind: msgFetchDone, origin: r, req: q, idx: idx, code: code, end: hw, start: start}
	if limit > 0 {
		if v, ok := part.log.ColdView(p.Offset, limit); ok {
			slot, o := r.ops.alloc()
			*o = ioOp{req: q, origin: origin, idx: idx, coldView: v, coldBuf: make([]byte, v.Len()),
				hw: hw, logStart: start}
			r.srv.metrics.coldRead(v.Len())
			r.ring.PrepareRead(v.Fd(), o.coldBuf, uint64(v.Pos()), makeUD(udRead, 0, slot))
			return
		}
		reply.views, reply.code = r.readRemote(part, p.Offset, limit)
	}
	origin.mb.post(reply)
}

func (r *Reactor) readRemote(part *partition, off uint64, limit int) ([]storage.View, proto.ErrorCode) {
	views, err := part.log.Read(off, limit, nil)
	if err != nil {
		return nil, storageErrorCode(err)
	}
	return views, proto.None
}

// onRemoteColdRead completes a cold read made for another reactor's fetch.
func (r *Reactor) onRemoteColdRead(o *ioOp, res int32) {
	o.coldView.Release()
	reply := message{kind: msgFetchDone, origin: r, req: o.req, idx: o.idx, end: o.hw, start: o.logStart}
	if n := wholeBatches(o.coldBuf[:max(res, 0)]); n > 0 {
		reply.data = o.coldBuf[:n]
	} else {
		t, p := r.fetchReq(o.req, int(o.idx))
		part, code, hw, start, limit := r.partRange(t, p, o.req.fetch.req.MaxBytes)
		reply.code, reply.end, reply.start = code, hw, start
		if limit > 0 {
			reply.views, reply.code = r.readRemote(part, p.Offset, limit)
		}
	}
	o.origin.mb.post(reply)
}

// fetchPartDone runs on the origin.
func (r *Reactor) fetchPartDone(q *request, idx int, code proto.ErrorCode, hw, start uint64, views []storage.View, cold []byte) {
	fp := &q.fetch.parts[idx]
	fp.code, fp.hw, fp.logStart, fp.remote, fp.cold = code, hw, start, views, cold
	fp.size = viewBytes(views) + len(cold)
	q.fetch.bytes += fp.size
	r.fetchStep(q)
}

func viewBytes(vs []storage.View) int {
	n := 0
	for i := range vs {
		n += len(vs[i].Bytes())
	}
	return n
}

func (r *Reactor) fetchStep(q *request) {
	q.pending--
	if q.pending > 0 {
		return
	}
	fs := &q.fetch
	if fs.final || r.stopping || fs.bytes >= int(fs.req.MinBytes) || !r.now.Before(fs.deadline) {
		r.sendFetch(q)
		return
	}
	r.releaseFetch(q)
	r.parkFetch(q)
}

// parkFetch registers q with every partition it reads.
func (r *Reactor) parkFetch(q *request) {
	fs := &q.fetch
	fs.gen = (fs.gen + 1) & 0xffffff
	fs.parked, fs.parkedAt = true, r.now
	r.parked.add(q)
	for i := range fs.parts {
		fp := &fs.parts[i]
		if fp.owner < 0 {
			continue
		}
		_, p := r.fetchReq(q, i)
		info := fp.info
		// The owner gets everything by value: the origin may answer, and
		// reuse, q before the owner reads this message.
		if int(fp.owner) == r.id {
			r.watchLocal(q, r, info, p.Partition, p.Offset, fs.gen)
		} else {
			r.srv.reactors[fp.owner].mb.post(message{kind: msgWatch, origin: r, req: q, gen: fs.gen,
				topic: info, idx: int32(p.Partition), base: p.Offset})
		}
	}
}

type waiter struct {
	origin *Reactor
	req    *request
	gen    uint32
}

func (r *Reactor) watchPartition(m *message) {
	r.watchLocal(m.req, m.origin, m.topic, uint32(m.idx), m.base, m.gen)
}

// watchLocal runs on the partition's owner: q (never read here: it belongs
// to origin) is woken on the next append to the partition, or at once if
// the partition already grew past offset.
func (r *Reactor) watchLocal(q *request, origin *Reactor, topic *topicInfo, id uint32, offset uint64, gen uint32) {
	var part *partition
	if ps := r.parts[topic.name]; int(id) < len(ps) {
		part = ps[id]
	}
	w := waiter{origin: origin, req: q, gen: gen}
	if part == nil || part.topic != topic || part.log.LogEnd() > offset {
		r.notify(w)
		return
	}
	part.waiters = append(part.waiters, w)
}

func (r *Reactor) notify(w waiter) {
	if w.origin == r {
		r.wakeFetch(w.req, w.gen)
		return
	}
	w.origin.mb.post(message{kind: msgWakeFetch, req: w.req, gen: w.gen})
}

// wakeWaiters wakes every fetch parked on p.
func (r *Reactor) wakeWaiters(p *partition) {
	if len(p.waiters) == 0 {
		return
	}
	ws := p.waiters
	p.waiters = nil
	for _, w := range ws {
		r.notify(w)
	}
	clear(ws)
	if p.waiters == nil {
		p.waiters = ws[:0]
	}
}

// wakeFetch runs on the origin: re-gather a parked fetch.
func (r *Reactor) wakeFetch(q *request, gen uint32) {
	fs := &q.fetch
	if !fs.parked || fs.gen != gen {
		return
	}
	r.unpark(q)
	r.gatherFetch(q)
}

// fetchDeadline answers a parked fetch whose max_wait passed.
func (r *Reactor) fetchDeadline(q *request) {
	r.unpark(q)
	q.fetch.final = true
	r.gatherFetch(q)
}

func (r *Reactor) unpark(q *request) {
	fs := &q.fetch
	fs.parked = false
	fs.gen = (fs.gen + 1) & 0xffffff
	r.parked.remove(q)
	q.waited += r.now.Sub(fs.parkedAt)
}

// sendFetch queues the response: header bytes interleaved with the
// records slices.
func (r *Reactor) sendFetch(q *request) {
	fs := &q.fetch
	var size proto.FetchResponseSize
	pi := 0
	for ti := range fs.req.Topics {
		size.AddTopic(fs.req.Topics[ti].Name)
		for range fs.req.Topics[ti].Partitions {
			size.AddPartition(fs.parts[pi].size)
			pi++
		}
	}
	hdr := r.pool.get(size.FrameLen() - fs.bytes)[:0]
	hdr = proto.AppendResponseHeader(hdr, proto.ResponseHeader{CorrelationID: q.hdr.CorrelationID}, size.BodyLen())
	hdr = proto.AppendFetchResponseStart(hdr, len(fs.req.Topics))
	out := fs.out[:0]
	mark, pi := 0, 0
	for ti := range fs.req.Topics {
		t := &fs.req.Topics[ti]
		hdr = proto.AppendFetchResponseTopicHeader(hdr, t.Name, len(t.Partitions))
		for range t.Partitions {
			fp := &fs.parts[pi]
			pi++
			ph := proto.FetchPartitionHeader{Partition: t.Partitions[fp.pi].Partition, Error: fp.code,
				HighWatermark: fp.hw, LogStart: fp.logStart, RecordsLen: uint32(fp.size)}
			hdr = proto.AppendFetchPartitionHeader(hdr, &ph)
			r.srv.metrics.requestError(proto.APIFetch, fp.code)
			if fp.size == 0 {
				continue
			}
			countFetched(fs, fp)
			out = append(out, hdr[mark:])
			mark = len(hdr)
			if fp.cold != nil {
				out = append(out, fp.cold)
			}
			out = appendViews(out, fs.views[fp.v0:fp.v0+fp.vn])
			out = appendViews(out, fp.remote)
		}
	}
	if mark < len(hdr) {
		out = append(out, hdr[mark:])
	}
	fs.out = out
	r.respondFrame(q, outFrame{parts: out, buf: hdr})
}

// countFetched adds a partition's fetched records and bytes to its topic's
// counters (records of whole batches, as sent).
func countFetched(fs *fetchState, fp *fetchPart) {
	n := recordsIn(fp.cold)
	for i := fp.v0; i < fp.v0+fp.vn; i++ {
		n += recordsIn(fs.views[i].Bytes())
	}
	for i := range fp.remote {
		n += recordsIn(fp.remote[i].Bytes())
	}
	fp.info.stats.Fetched(n, fp.size)
}

// recordsIn counts the records of the whole batches in b.
func recordsIn(b []byte) int {
	n := 0
	for len(b) >= proto.BatchHeaderSize {
		h, err := proto.ParseBatchHeader(b)
		if err != nil || h.Size() > len(b) {
			break
		}
		n += int(h.RecordCount)
		b = b[h.Size():]
	}
	return n
}

func appendViews(out [][]byte, vs []storage.View) [][]byte {
	for i := range vs {
		out = append(out, vs[i].Bytes())
	}
	return out
}

// releaseFetch gives back every view q holds (local ones here, remote ones
// to their owner).
func (r *Reactor) releaseFetch(q *request) {
	if q.hdr.API != proto.APIFetch {
		return
	}
	fs := &q.fetch
	releaseViews(fs.views)
	clear(fs.views)
	fs.views = fs.views[:0]

	for i := range fs.parts {
		fp := &fs.parts[i]
		if fp.cold != nil {
			r.pool.put(fp.cold)
			fp.cold = nil
		}
		if len(fp.remote) > 0 {
			r.srv.reactors[fp.owner].mb.post(message{kind: msgRelease, views: fp.remote})
			fp.remote = nil
		}
		fp.vn = 0
	}
	clear(fs.out)
}

// parkedFetches is the set of fetches waiting for data or max_wait.
type parkedFetches struct {
	reqs []*request
}

func (p *parkedFetches) len() int { return len(p.reqs) }

func (p *parkedFetches) add(q *request) { p.reqs = append(p.reqs, q) }

func (p *parkedFetches) remove(q *request) {
	for i, x := range p.reqs {
		if x == q {
			last := len(p.reqs) - 1
			p.reqs[i] = p.reqs[last]
			p.reqs[last] = nil
			p.reqs = p.reqs[:last]
			return
		}
	}
}

func (p *parkedFetches) nextDeadline() (time.Time, bool) {
	var next time.Time
	for i, q := range p.reqs {
		if i == 0 || q.fetch.deadline.Before(next) {
			next = q.fetch.deadline
		}
	}
	return next, len(p.reqs) > 0
}

// expire calls fn for every fetch whose deadline has passed.
func (p *parkedFetches) expire(now time.Time, fn func(*request)) {
	for i := 0; i < len(p.reqs); {
		q := p.reqs[i]
		if q.fetch.deadline.After(now) {
			i++
			continue
		}
		fn(q) // removes q from p.reqs
	}
}

// expireConn ends the parked fetches of a closing connection at once.
func (p *parkedFetches) expireConn(c *conn, fn func(*request)) {
	for i := 0; i < len(p.reqs); {
		if p.reqs[i].c != c {
			i++
			continue
		}
		fn(p.reqs[i]) // removes it from p.reqs
	}
}

func (p *parkedFetches) expireAll(fn func(*request)) {
	for len(p.reqs) > 0 {
		fn(p.reqs[0])
	}
}
