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
	req   proto.FetchRequest
	parts []fetchPart
	views []storage.View // read here; released here
	// cold[i] holds views[i]'s bytes read through the ring when they were
	// not in page cache (nil for hot views, sent straight from the mmap).
	cold     [][]byte
	bytes    int
	gen      uint32 // bumped on every park and unpark; stale wake-ups are ignored
	parked   bool
	final    bool
	deadline time.Time
	out      [][]byte
}

type fetchPart struct {
	ti, pi   int32
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
		*fp = fetchPart{ti: fp.ti, pi: fp.pi, owner: -1}
		info := tt.lookup(t.Name)
		switch {
		case info == nil:
			fp.code = proto.UnknownTopic
		case p.Partition >= info.partitions:
			fp.code = proto.UnknownPartition
		default:
			fp.owner = int32(info.shards[p.Partition])
			q.pending++
			if int(fp.owner) == r.id {
				r.readLocal(q, i)
			} else {
				r.srv.reactors[fp.owner].mb.post(message{kind: msgFetch, origin: r, req: q, idx: int32(i)})
			}
		}
	}
	r.fetchStep(q)
}

// readPart reads one partition this reactor owns, appending views to dst.
func (r *Reactor) readPart(t *proto.FetchTopic, p *proto.FetchPartition, maxBytes uint32, dst []storage.View, cold func(*partition, uint64, int) bool) (
	views []storage.View, code proto.ErrorCode, hw, start uint64) {
	part := r.partition(t.Name, p.Partition)
	if part == nil {
		return dst, proto.UnknownPartition, 0, 0
	}
	hw, start = part.log.LogEnd(), part.log.LogStart()
	if p.Offset > hw || p.Offset < start {
		return dst, proto.OffsetOutOfRange, hw, start
	}
	if p.Offset == hw {
		return dst, proto.None, hw, start
	}
	limit := int(min(p.PartitionMaxBytes, maxBytes))
	if cold != nil && cold(part, p.Offset, limit) {
		return dst, proto.None, hw, start
	}
	views, err := part.log.Read(p.Offset, limit, dst)
	if err != nil {
		return dst, storageErrorCode(err), hw, start
	}
	return views, proto.None, hw, start
}

func (r *Reactor) readLocal(q *request, idx int) {
	fs := &q.fetch
	t, p := r.fetchReq(q, idx)
	v0 := len(fs.views)
	coldStarted := false
	views, code, hw, start := r.readPart(t, p, fs.req.MaxBytes, fs.views, func(part *partition, off uint64, limit int) bool {
		coldStarted = r.readCold(q, idx, part, off, limit)
		return coldStarted
	})
	fs.views = views
	fp := &fs.parts[idx]
	fp.code, fp.hw, fp.logStart = code, hw, start
	fp.v0, fp.vn = int32(v0), int32(len(views)-v0)
	if !coldStarted {
		fp.size = viewBytes(views[v0:])
		fs.bytes += fp.size
	}
	r.fetchStep(q)
}

// readCold starts a ring read of a partition's range that is not in page
// cache, so a consumer catching up on old data never faults inside the
// reactor (and never stalls its producers). It returns false when the data
// is resident: read it from the mmap.
func (r *Reactor) readCold(q *request, idx int, part *partition, off uint64, limit int) bool {
	v, ok := part.log.ColdView(off, limit)
	if !ok {
		return false
	}
	fp := &q.fetch.parts[idx]
	fp.coldView = v
	fp.cold = r.pool.get(v.Len())
	slot, o := r.ops.alloc()
	*o = ioOp{kind: udRead, req: q, idx: int32(idx)}
	q.pending++
	r.srv.metrics.coldRead(v.Len())
	r.ring.PrepareRead(v.Fd(), fp.cold, uint64(v.Pos()), makeUD(udRead, o.gen, slot))
	return true
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
	n := 0
	if res > 0 {
		n = wholeBatches(fp.cold[:res])
	}
	if n == 0 {
		r.pool.put(fp.cold)
		fp.cold = nil
		t, p := r.fetchReq(q, int(o.idx))
		v0 := len(fs.views)
		views, code, _, _ := r.readPart(t, p, fs.req.MaxBytes, fs.views, nil)
		fs.views = views
		fp.code, fp.v0, fp.vn = code, int32(v0), int32(len(views)-v0)
		fp.size = viewBytes(views[v0:])
	} else {
		fp.cold = fp.cold[:n]
		fp.size = n
	}
	fs.bytes += fp.size
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

// fetchRemotePart runs on the owner of a forwarded fetch part.
// Cold data is read through this reactor's ring into a buffer that then
// belongs to the origin.
func (r *Reactor) fetchRemotePart(m *message) {
	q, origin, idx := m.req, m.origin, m.idx
	t, p := r.fetchReq(q, int(idx))
	var o *ioOp
	views, code, hw, start := r.readPart(t, p, q.fetch.req.MaxBytes, nil, func(part *partition, off uint64, limit int) bool {
		v, ok := part.log.ColdView(off, limit)
		if !ok {
			return false
		}
		var slot uint32
		slot, o = r.ops.alloc()
		*o = ioOp{kind: udRead, req: q, origin: origin, idx: idx, coldView: v, coldBuf: make([]byte, v.Len())}
		r.srv.metrics.coldRead(v.Len())
		r.ring.PrepareRead(v.Fd(), o.coldBuf, uint64(v.Pos()), makeUD(udRead, o.gen, slot))
		return true
	})
	if o != nil {
		o.hw, o.logStart = hw, start
		return
	}
	origin.mb.post(message{kind: msgFetchDone, origin: r, req: q, idx: idx, code: code, end: hw, start: start, views: views})
}

// onRemoteColdRead completes a cold read made for another reactor's fetch.
func (r *Reactor) onRemoteColdRead(o *ioOp, res int32) {
	o.coldView.Release()
	n := 0
	if res > 0 {
		n = wholeBatches(o.coldBuf[:res])
	}
	m := message{kind: msgFetchDone, origin: r, req: o.req, idx: o.idx, end: o.hw, start: o.logStart}
	if n > 0 {
		m.data = o.coldBuf[:n]
	} else {
		t, p := r.fetchReq(o.req, int(o.idx))
		m.views, m.code, m.end, m.start = r.readPart(t, p, o.req.fetch.req.MaxBytes, nil, nil)
	}
	o.origin.mb.post(m)
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
	fs.parked = true
	r.parked.add(q)
	tt := r.srv.topics.Load()
	for i := range fs.parts {
		fp := &fs.parts[i]
		if fp.owner < 0 {
			continue
		}
		t, p := r.fetchReq(q, i)
		info := tt.lookup(t.Name)
		if info == nil {
			continue
		}
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
			if fp.size == 0 {
				continue
			}
			r.countFetched(t.Name, fs, fp)
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
func (r *Reactor) countFetched(topic []byte, fs *fetchState, fp *fetchPart) {
	info := r.srv.topics.Load().lookup(topic)
	if info == nil {
		return
	}
	n := recordsIn(fp.cold)
	for i := fp.v0; i < fp.v0+fp.vn; i++ {
		n += recordsIn(fs.views[i].Bytes())
	}
	for i := range fp.remote {
		n += recordsIn(fp.remote[i].Bytes())
	}
	info.stats.Fetched(n, fp.size)
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
