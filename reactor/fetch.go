package reactor

import (
	"hash/maphash"
	"slices"
	"sync/atomic"
	"time"

	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/replica"
	"github.com/ringmq/ringmq/storage"
)

// Fetch path: the origin gathers every partition (reading its own from the
// mmap'd segments, asking owners for the rest), then either answers with
// header bytes plus the segment slices (no copy), or, below min_bytes,
// releases what it read and parks until the high watermark of one of the
// partitions moves far enough or max_wait passes (a registration with each
// partition's replica: replica.Wait). A fetch returns only records below
// the high watermark and reports it. Views read by another reactor go back
// to it for release once the response is sent.

type fetchState struct {
	req      proto.FetchRequest
	replica  bool                      // a follower's ReplicaFetch (replica_fetch.go), decoded into req
	rreq     proto.ReplicaFetchRequest // when replica
	rparts   []replicaPart             // when replica: per part, like parts
	maxBytes int                       // records bytes of the whole response: req.MaxBytes capped by fetch_max_bytes
	parts    []fetchPart
	views    []storage.View // read here; released here
	bytes    int
	gen      uint32 // bumped on every park and unpark; stale wake-ups are ignored
	parked   bool
	parkedAt time.Time
	final    bool
	deadline time.Time
	out      [][]byte
	keys     []partKey // scratch for the duplicate check

	// Memory for cold reads: coldHeld bytes are counted against the
	// connection's and the reactor's budgets (by the origin); the owners
	// reading the parts take their buffers' sizes from coldLeft.
	coldHeld int64
	coldLeft atomic.Int64
}

type fetchPart struct {
	ti, pi   int32
	info     *topicInfo // nil for an unknown topic
	owner    int32
	code     proto.ErrorCode
	hw       uint64 // the high watermark reported: records are cut below it
	end      uint64 // the log end when read (records past hw may be in the read)
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
	fs.replica = false
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
	if fs.hasDuplicates() {
		r.respondError(q, proto.InvalidRequest)
		return
	}
	cfg := &r.srv.cfg.Server
	fs.maxBytes = int(min(int64(fs.req.MaxBytes), cfg.FetchMaxBytes))
	fs.final = fs.req.MaxWaitMs == 0 || fs.req.MinBytes == 0
	fs.deadline = r.now.Add(min(time.Duration(fs.req.MaxWaitMs)*time.Millisecond, cfg.FetchMaxWait))
	r.gatherFetch(q)
}

// partKey identifies a partition of a fetch for the duplicate check.
type partKey struct {
	hash uint64 // of the topic name
	part uint32
	ti   int32
}

var topicSeed = maphash.MakeSeed()

// hasDuplicates reports whether a partition is listed twice (under one
// topic or under a topic listed twice): that request is refused with
// INVALID_REQUEST rather than read twice into one response. It sorts
// (name hash, partition) keys in a reused slice, so it does not allocate
// once warm.
func (fs *fetchState) hasDuplicates() bool {
	keys := fs.keys[:0]
	for _, fp := range fs.parts {
		t := &fs.req.Topics[fp.ti]
		keys = append(keys, partKey{hash: maphash.Bytes(topicSeed, t.Name), part: t.Partitions[fp.pi].Partition, ti: fp.ti})
	}
	fs.keys = keys
	slices.SortFunc(keys, func(a, b partKey) int {
		if a.hash != b.hash {
			return cmpU64(a.hash, b.hash)
		}
		return cmpU64(uint64(a.part), uint64(b.part))
	})
	for i := 1; i < len(keys); i++ {
		a, b := keys[i-1], keys[i]
		if a.hash == b.hash && a.part == b.part &&
			string(fs.req.Topics[a.ti].Name) == string(fs.req.Topics[b.ti].Name) {
			return true
		}
	}
	return false
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
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
	grant := min(int64(fs.maxBytes), r.room(q.c))
	r.hold(q.c, grant)
	fs.coldHeld = grant
	fs.coldLeft.Store(grant)
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
// returns the partition, its offsets (log start, high watermark, log end),
// an error code for an unknown partition or an offset outside the log,
// and how many bytes to read (0: nothing yet, the offset is at or past the
// high watermark: only records below it are served).
func (r *Reactor) partRange(t *proto.FetchTopic, p *proto.FetchPartition, maxBytes int) (
	part *partition, code proto.ErrorCode, o replica.Offsets, limit int) {
	part = r.partition(t.Name, p.Partition)
	if part == nil {
		return nil, proto.UnknownPartition, o, 0
	}
	o = part.rep.Offsets()
	switch {
	case p.Offset > o.LogEnd || p.Offset < o.LogStart:
		return part, proto.OffsetOutOfRange, o, 0
	case p.Offset >= o.HighWatermark:
		return part, proto.None, o, 0
	}
	return part, proto.None, o, min(int(p.PartitionMaxBytes), maxBytes)
}

// readLocal reads a part this reactor owns for its own fetch: cold data
// through the ring (readCold), hot data as views of the mmap.
func (r *Reactor) readLocal(q *request, idx int) {
	fs := &q.fetch
	_, p := r.fetchReq(q, idx)
	part, code, o, limit := r.partRangeOf(q, idx)
	fp := &fs.parts[idx]
	fp.code, fp.hw, fp.end, fp.logStart = code, o.HighWatermark, o.LogEnd, o.LogStart
	if limit > 0 {
		switch v, cold := r.coldView(fs, part, p.Offset, limit); {
		case cold && v.Len() > 0:
			r.readCold(q, idx, v)
		case !cold:
			r.readViews(q, idx, part, p.Offset, limit)
		}
	}
	r.fetchStep(q)
}

// coldView asks whether the part's data is out of page cache and, if so,
// takes the buffer for its ring read from the fetch's cold budget: at most
// fetch_cold_read_bytes. cold with an empty view means the budget is
// spent: the part returns nothing this time (reading it from the mmap
// would fault inside the reactor).
func (r *Reactor) coldView(fs *fetchState, part *partition, off uint64, limit int) (storage.View, bool) {
	want := min(int64(limit), r.srv.cfg.Server.FetchColdReadBytes)
	v, cold := part.log.ColdView(off, int(want))
	if !cold {
		return v, false
	}
	take := fs.takeCold(int64(v.Len()))
	if take < int64(v.Len()) {
		v.Release()
		if take > 0 {
			fs.coldLeft.Add(take)
		}
		return storage.View{}, true
	}
	return v, true
}

// takeCold takes up to n bytes of the fetch's cold budget (called by the
// owners of its parts, on any reactor) and returns how many it got.
func (fs *fetchState) takeCold(n int64) int64 {
	for {
		left := fs.coldLeft.Load()
		take := min(n, left)
		if take <= 0 || fs.coldLeft.CompareAndSwap(left, left-take) {
			return max(take, 0)
		}
	}
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
	fs.setSize(fp, viewBytes(views[v0:]))
}

// setSize sets the records size of a part that read size bytes, cut below
// the high watermark it reports, and counts it in the fetch's total.
func (fs *fetchState) setSize(fp *fetchPart, size int) {
	if fp.end > fp.hw && !fs.replica { // a follower copies the log past the HW
		size = min(size, fs.belowHW(fp))
	}
	fp.size = size
	fs.bytes += size
}

// belowHW is the length of the whole batches of fp's records that start
// below fp.hw. A read returns whole batches from the one holding the
// offset on, and the HW lies between appends, so no batch straddles it.
func (fs *fetchState) belowHW(fp *fetchPart) int {
	n, done := 0, false
	fs.eachSlice(fp, func(b []byte) {
		for !done && len(b) >= proto.BatchHeaderSize {
			h, err := proto.ParseBatchHeader(b)
			if err != nil || h.BaseOffset >= fp.hw || h.Size() > len(b) {
				done = true
				return
			}
			n += h.Size()
			b = b[h.Size():]
		}
	})
	return n
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
	_, p := r.fetchReq(q, int(o.idx))
	if n := batchesFrom(fp.cold[:max(res, 0)], p.Offset); n > 0 {
		fp.cold = fp.cold[:n]
		fs.setSize(fp, n)
	} else {
		r.pool.put(fp.cold)
		fp.cold = nil
		part, code, off, limit := r.partRangeOf(q, int(o.idx))
		fp.end = max(fp.end, off.LogEnd) // the read may now reach further
		if limit > 0 {
			r.readViews(q, int(o.idx), part, p.Offset, limit)
		} else {
			fp.code = code
		}
	}
	r.fetchStep(q)
}

// batchesFrom keeps what a cold read got that a fetch of off may return:
// the whole, valid batches from the one containing off on, moved to the
// start of b. It returns their length, 0 when the read did not get the
// batch containing off (the range began at an index entry, which may be
// wrong or too far back: then the part is read with Log.Read, which checks
// the index).
func batchesFrom(b []byte, off uint64) int {
	from, n := -1, 0
	for rest := b; len(rest) > 0; {
		h, next, err := proto.ValidateBatch(rest)
		if err != nil {
			break
		}
		switch {
		case from < 0 && h.NextOffset() <= off: // wholly below off: skip
		case from < 0 && h.BaseOffset > off: // starts past off
			return 0
		case from < 0:
			from = len(b) - len(rest)
			n = h.Size()
		default:
			n += h.Size()
		}
		rest = next
	}
	if from < 0 {
		return 0
	}
	copy(b, b[from:from+n])
	return n
}

// fetchRemotePart runs on the owner of a forwarded fetch part and posts the
// result back: views of the mmap (released back here after the send), or,
// for cold data, the whole batches a ring read got into a buffer that then
// belongs to the origin.
func (r *Reactor) fetchRemotePart(m *message) {
	q, origin, idx := m.req, m.origin, m.idx
	_, p := r.fetchReq(q, int(idx))
	part, code, off, limit := r.partRangeOf(q, int(idx))
	reply := message{kind: msgFetchDone, origin: r, req: q, idx: idx, code: code, end: off.HighWatermark,
		start: off.LogStart, base: off.LogEnd}
	if limit > 0 {
		if v, cold := r.coldView(&q.fetch, part, p.Offset, limit); cold {
			if v.Len() == 0 { // no budget left: nothing this time
				origin.mb.post(reply)
				return
			}
			slot, o := r.ops.alloc()
			*o = ioOp{req: q, origin: origin, idx: idx, coldView: v, coldBuf: make([]byte, v.Len()),
				hw: off.HighWatermark, logEnd: off.LogEnd, logStart: off.LogStart}
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
	reply := message{kind: msgFetchDone, origin: r, req: o.req, idx: o.idx, end: o.hw, start: o.logStart, base: o.logEnd}
	_, p := r.fetchReq(o.req, int(o.idx))
	if n := batchesFrom(o.coldBuf[:max(res, 0)], p.Offset); n > 0 {
		reply.data = o.coldBuf[:n]
	} else {
		part, code, off, limit := r.partRangeOf(o.req, int(o.idx))
		reply.code, reply.end, reply.start, reply.base = code, off.HighWatermark, off.LogStart, off.LogEnd
		if limit > 0 {
			reply.views, reply.code = r.readRemote(part, p.Offset, limit)
		}
	}
	o.origin.mb.post(reply)
}

// fetchPartDone runs on the origin.
func (r *Reactor) fetchPartDone(q *request, idx int, code proto.ErrorCode, hw, start, end uint64, views []storage.View, cold []byte) {
	fp := &q.fetch.parts[idx]
	fp.code, fp.hw, fp.end, fp.logStart, fp.remote, fp.cold = code, hw, end, start, views, cold
	q.fetch.setSize(fp, viewBytes(views)+len(cold))
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
	r.settleCold(q)
	if fs.final || r.stopping || q.c.closing || fs.bytes >= int(fs.req.MinBytes) ||
		!r.now.Before(fs.deadline) || fetchFailed(fs) || fs.replicaAnswerNow() {
		if fs.replica {
			r.sendReplicaFetch(q)
		} else {
			r.sendFetch(q)
		}
		return
	}
	r.releaseFetch(q)
	r.parkFetch(q)
}

// settleCold counts against the budgets the cold read buffers the fetch
// got, instead of the grant it started with.
func (r *Reactor) settleCold(q *request) {
	fs := &q.fetch
	var held int64
	for i := range fs.parts {
		held += int64(cap(fs.parts[i].cold))
	}
	r.hold(q.c, held-fs.coldHeld)
	fs.coldHeld = held
}

// fetchFailed reports whether a part has an error: the fetch is answered at
// once (as Kafka does), since waiting would not change the answer.
func fetchFailed(fs *fetchState) bool {
	for i := range fs.parts {
		if fs.parts[i].code != proto.None {
			return true
		}
	}
	return false
}

// parkFetch registers q with the replica of every partition it reads
// (replica.Wait): woken once min_bytes less what it has more bytes are
// readable below the high watermark at its offset, at once if the HW
// already moved past the one this read reported, or at max_wait.
func (r *Reactor) parkFetch(q *request) {
	fs := &q.fetch
	fs.gen = (fs.gen + 1) & 0xffffff
	fs.parked, fs.parkedAt = true, r.now
	r.parked.add(q)
	r.srv.parkedFetches.Add(1)
	need := max(int64(fs.req.MinBytes)-int64(fs.bytes), 1)
	for i := range fs.parts {
		fp := &fs.parts[i]
		if fp.owner < 0 {
			continue
		}
		_, p := r.fetchReq(q, i)
		// The owner gets everything by value: the origin may answer, and
		// reuse, q before the owner reads this message.
		m := message{kind: msgWatch, origin: r, req: q, gen: fs.gen, topic: fp.info, idx: int32(p.Partition),
			base: p.Offset, end: fp.hw, start: uint64(need), at: fs.deadline}
		if fs.replica {
			m.kind = msgWatchFollower
		}
		switch {
		case int(fp.owner) == r.id && fs.replica:
			r.watchFollower(&m)
		case int(fp.owner) == r.id:
			r.watchPartition(&m)
		default:
			r.srv.reactors[fp.owner].mb.post(m)
		}
	}
}

// waiter is a parked fetch to wake: its origin, request and park
// generation; final says the wake is not for new data (a deadline, a
// deleted partition...): answer with what there is.
type waiter struct {
	origin *Reactor
	req    *request
	gen    uint32
	final  bool
}

// watchPartition runs on the partition's owner: it registers the parked
// fetch m.req (never read here: it belongs to m.origin) with the
// partition's replica, or wakes it now when the replica says waiting
// would not help.
func (r *Reactor) watchPartition(m *message) {
	var part *partition
	if ps := r.parts[m.topic.name]; int(m.idx) < len(ps) {
		part = ps[m.idx]
	}
	w := waiter{origin: m.origin, req: m.req, gen: m.gen}
	switch {
	case part == nil:
		r.notify(w, true)
		return
	case part.topic != m.topic: // altered meanwhile: read again
		r.notify(w, false)
		return
	}
	tok := r.waits.put(waitEntry{waiter: w, part: part})
	reason := part.rep.Wait(replica.Wait{Token: replica.Token(tok), Offset: m.base, Seen: m.end,
		MinBytes: int(min(m.start, 1<<31)), Deadline: m.at})
	if reason == replica.WakeNone {
		r.watched(part, m.at)
		return
	}
	r.waits.take(tok)
	r.notify(w, reason != replica.WakeData)
}

// notify wakes w's fetch: a local one after the current step (runWakes,
// in the loop turn: a wake never re-enters the fetch path it came from), a
// remote one through its origin's mailbox.
func (r *Reactor) notify(w waiter, final bool) {
	w.final = final
	if w.origin == r {
		r.wakes = append(r.wakes, w)
		return
	}
	w.origin.mb.post(message{kind: msgWakeFetch, req: w.req, gen: w.gen, final: final})
}

// runWakes re-gathers the local fetches woken since the last call. A
// fetch woken again meanwhile (its partition grew while it read) is run in
// the next round; each round needs new data, so the loop ends.
func (r *Reactor) runWakes() {
	for len(r.wakes) > 0 {
		ws := r.wakes
		r.wakes = r.wakesSpare[:0]
		for _, w := range ws {
			r.wakeFetch(w.req, w.gen, w.final)
		}
		clear(ws)
		r.wakesSpare = ws[:0]
	}
}

// wakeFetch runs on the origin: re-gather a parked fetch (final: and
// answer it with what the read gets, not park again).
func (r *Reactor) wakeFetch(q *request, gen uint32, final bool) {
	fs := &q.fetch
	if !fs.parked || fs.gen != gen {
		return
	}
	if final {
		fs.final = true
	} else {
		r.srv.metrics.fetchWake()
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
	r.srv.parkedFetches.Add(-1)
	q.waited += r.now.Sub(fs.parkedAt)
}

// sendFetch queues the response: header bytes interleaved with the
// records slices.
func (r *Reactor) sendFetch(q *request) {
	fs := &q.fetch
	fs.trim()
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
			out = append(out, hdr[mark:])
			mark = len(hdr)
			n := len(out)
			left := fp.size
			fs.eachSlice(fp, func(b []byte) {
				if left > 0 {
					b = b[:min(len(b), left)]
					left -= len(b)
					out = append(out, b)
				}
			})
			countFetched(fp, out[n:])
		}
	}
	if mark < len(hdr) {
		out = append(out, hdr[mark:])
	}
	fs.out = out
	r.respondFrame(q, outFrame{parts: out, buf: hdr})
}

// eachSlice calls fn with each slice of records a part read, in order:
// a cold read's buffer, views read here, views read by the owner.
func (fs *fetchState) eachSlice(fp *fetchPart, fn func([]byte)) {
	if len(fp.cold) > 0 {
		fn(fp.cold)
	}
	for i := fp.v0; i < fp.v0+fp.vn; i++ {
		fn(fs.views[i].Bytes())
	}
	for i := range fp.remote {
		fn(fp.remote[i].Bytes())
	}
}

// trim applies the response's records budget (maxBytes) to the parts in
// request order, cutting at batch boundaries; the first batch of the first
// part with data is kept even when larger (as Kafka does), so a consumer
// always makes progress.
func (fs *fetchState) trim() {
	budget, first := fs.maxBytes, true
	fs.bytes = 0
	for i := range fs.parts {
		fp := &fs.parts[i]
		if fp.size == 0 {
			continue
		}
		if fp.size > budget {
			fp.size = fs.cutPart(fp, budget, first)
		}
		budget -= fp.size
		fs.bytes += fp.size
		first = first && fp.size == 0
	}
}

// cutPart returns the length of the whole batches of fp that fit in budget
// (at least one when takeOne).
func (fs *fetchState) cutPart(fp *fetchPart, budget int, takeOne bool) int {
	used, full := 0, false
	fs.eachSlice(fp, func(b []byte) {
		for !full && len(b) >= proto.BatchHeaderSize {
			h, err := proto.ParseBatchHeader(b)
			n := h.Size()
			if err != nil || n > len(b) || (used+n > budget && !(takeOne && used == 0)) {
				full = true
				return
			}
			used += n
			b = b[n:]
		}
	})
	return used
}

// countFetched adds a partition's fetched records and bytes to its topic's
// counters (records of whole batches, as sent in sent).
func countFetched(fp *fetchPart, sent [][]byte) {
	n := 0
	for _, b := range sent {
		n += recordsIn(b)
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

// releaseFetch gives back every view q holds (local ones here, remote ones
// to their owner).
func (r *Reactor) releaseFetch(q *request) {
	if q.hdr.API != proto.APIFetch && q.hdr.API != proto.APIReplicaFetch {
		return
	}
	fs := &q.fetch
	releaseViews(fs.views)
	clear(fs.views)
	fs.views = fs.views[:0]

	r.hold(q.c, -fs.coldHeld)
	fs.coldHeld = 0
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
