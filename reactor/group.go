package reactor

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	"github.com/ringmq/ringmq/group"
	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/stats"
)

// The group coordinator goroutine drives group.Coordinator, one per
// partition of the internal topic __consumer_offsets, off the reactors
// (its appends block on fdatasync). A reactor posts a group request here
// without waiting (a full queue answers REQUEST_TIMED_OUT at once) and
// gets the encoded answer back through its mailbox.
//
// One turn: take every queued request (up to groupTurnMax), feed them to
// their group's coordinator, Tick the coordinators whose deadline passed,
// then for each coordinator with records append them to its log with one
// write and one fdatasync (a group commit), Advance, and only then post
// the turn's answers. An append that fails answers its requests with
// COORDINATOR_NOT_AVAILABLE and rebuilds that coordinator from its log.
//
// Placement: group G lives on partition fnv32a(G) mod groups.partitions.
// On one node every partition is local; in a cluster the coordinator of a
// partition is the leader of that partition of the internal topic.

type groupJob struct {
	// deleted, if set, is a topic deletion to apply now (from the admin
	// goroutine, which waits on done); nothing else is set.
	deleted string
	done    chan struct{}

	origin *Reactor
	req    *request
	api    proto.APIKey
	body   []byte
	addr   string // the client's address (JoinGroup)
}

const (
	groupQueueLen = 4096
	groupTurnMax  = 1024
	// groupMetaEvery bounds how long a topic change may go unnoticed by an
	// idle coordinator, and how often the per-state gauges are refreshed.
	groupMetaEvery = 250 * time.Millisecond
)

type groupDriver struct {
	s     *Server
	ch    chan groupJob
	done  chan struct{}
	cfg   group.Config
	parts []*groupPartition
	epoch time.Time // origin of the coordinators' clock
	// topics is the topic table the coordinators were last fed.
	topics *topicTable
	lag    lagSeries
	// fence is the members' ownership published to the fetch path
	// (group_fence.go).
	fence *fenceTable

	replies  []groupReply
	lastMeta time.Time

	// Shared subscriptions: the records' Meta per partition, and the
	// goroutines that read them (group_share_meta.go).
	windows map[group.TopicPartition]*metaWindow
	meta    *metaReaders
	dlq     *dlqWorker // group_share_dlq.go
}

type groupPartition struct {
	id       int
	c        *group.Coordinator
	log      *groupLog
	counters group.Counters // last exported
	// broken is set when the coordinator could not be rebuilt: its
	// requests are answered COORDINATOR_NOT_AVAILABLE.
	broken error
	// fenced holds the ownership changes of the last append, published
	// once every partition's append is done.
	fenced []fenceUpdate
	// active: this node coordinates the partition (always on one node; in
	// a cluster while it leads the partition, group_cluster.go). An
	// inactive partition has an empty coordinator and no log.
	active bool
}

// groupReply is an answer waiting for its partition's records to be
// durable (part -1: touched no coordinator state).
type groupReply struct {
	job  groupJob
	part int
	code proto.ErrorCode
	resp proto.Message
}

// groupPartitionOf places a group on a partition of the internal topic.
// Persisted placement: never change the hash.
func groupPartitionOf(name string, partitions int) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32() % uint32(partitions))
}

func (s *Server) groupConfig() group.Config {
	g := s.cfg.Groups
	return group.Config{
		MinSessionTimeout: g.MinSessionTimeout, MaxSessionTimeout: g.MaxSessionTimeout,
		HeartbeatInterval: g.HeartbeatInterval, MaxGroups: g.MaxGroups, MaxMembers: g.MaxMembers,
		Share: s.shareConfig(),
	}
}

// openGroups opens every partition log of the internal topic and restores
// its coordinator. Called at start, before the reactors accept.
func (s *Server) openGroups() error {
	d := &groupDriver{s: s, ch: make(chan groupJob, groupQueueLen), done: make(chan struct{}),
		cfg: s.groupConfig(), epoch: time.Now(), lag: newLagSeries(s.cfg.Groups.MaxLagSeries),
		fence:   newFenceTable(s.cfg.Groups.Partitions),
		windows: map[group.TopicPartition]*metaWindow{}, meta: newMetaReaders()}
	d.dlq = newDLQWorker(d)
	d.topics = s.topics.Load()
	if s.clustered() {
		for p := 0; p < s.cfg.Groups.Partitions; p++ {
			d.parts = append(d.parts, &groupPartition{id: p, c: group.New(d.cfg)})
		}
		d.followLeadership(d.topics)
		s.groups = d
		return nil
	}
	fresh := true
	for p := 0; p < s.cfg.Groups.Partitions; p++ {
		gp, n, err := d.openPartition(p)
		if err != nil {
			d.close()
			return err
		}
		fresh = fresh && n == 0
		d.parts = append(d.parts, gp)
	}
	if fresh {
		if err := d.importMetaOffsets(); err != nil {
			d.close()
			return err
		}
	}
	for _, gp := range d.parts {
		d.exportCommits(gp)
		gp.fenced, gp.active = gp.fenced[:0], true
		d.fence.apply(fenceUpdates(nil, gp.c.Records()))
		d.fence.local[gp.id].Store(true)
	}
	s.groups = d
	return nil
}

func (d *groupDriver) openPartition(p int) (*groupPartition, int, error) {
	l, recs, err := openGroupLog(groupLogPath(d.s.cfg.Storage.DataDir, p))
	if err != nil {
		return nil, 0, fmt.Errorf("open consumer groups: %w", err)
	}
	c, err := group.Restore(d.cfg, d.topicCounts(), recs, d.now())
	if err != nil {
		l.close()
		return nil, 0, fmt.Errorf("restore consumer groups from %s: %w", l.path, err)
	}
	gp := &groupPartition{id: p, c: c, log: l}
	// Restore applied topic changes made while the log was not followed.
	if err := d.persist(gp); err != nil {
		l.close()
		return nil, 0, fmt.Errorf("consumer groups %s: %w", l.path, err)
	}
	return gp, len(recs), nil
}

// importMetaOffsets carries the commits of the metadata store (before the
// coordinator existed) into a fresh internal topic, once.
func (d *groupDriver) importMetaOffsets() error {
	meta := d.s.meta
	n := 0
	for _, g := range meta.ListGroups() {
		gp := d.parts[groupPartitionOf(g, len(d.parts))]
		for _, po := range meta.GroupOffsets(g) {
			if err := gp.c.Commit(g, "", 0, po.Topic, po.Partition, po.Offset, po.Metadata); err != nil {
				d.s.log.Warn("commit not imported into the group coordinator", "group", g, "topic", po.Topic,
					"partition", po.Partition, "err", err)
				continue
			}
			n++
		}
	}
	for _, gp := range d.parts {
		if err := d.persist(gp); err != nil {
			return fmt.Errorf("import commits: %w", err)
		}
	}
	if n > 0 {
		d.s.log.Info("commits imported into the group coordinator", "commits", n)
	}
	return nil
}

func (d *groupDriver) now() time.Duration { return time.Since(d.epoch) }

func (d *groupDriver) topicCounts() map[string]uint32 {
	m := make(map[string]uint32, len(d.topics.byName))
	for name, ti := range d.topics.byName {
		m[name] = ti.partitions
	}
	return m
}

// post hands a group request to the coordinator goroutine without
// blocking the reactor.
func (s *Server) postGroup(j groupJob) {
	select {
	case s.groups.ch <- j:
	default:
		frame := proto.AppendResponse(nil, proto.ResponseHeader{CorrelationID: j.req.hdr.CorrelationID, Error: proto.RequestTimedOut}, nil)
		s.metrics.responseErrors(j.req.hdr.API, proto.RequestTimedOut, nil)
		j.origin.respondRaw(j.req, frame)
	}
}

// topicDeleted removes a deleted topic's partitions from every group and
// its commits (durably) before it returns, so a topic created again under
// the same name starts with none. Called by the admin goroutine.
func (d *groupDriver) topicDeleted(name string) {
	done := make(chan struct{})
	d.ch <- groupJob{deleted: name, done: done}
	<-done
}

func (d *groupDriver) run() {
	defer close(d.done)
	defer d.close()
	defer d.meta.stop()
	timer := time.NewTimer(groupMetaEvery)
	defer timer.Stop()
	var jobs []groupJob
	for {
		jobs = jobs[:0]
		select {
		case j, ok := <-d.ch:
			if !ok {
				return
			}
			jobs = append(jobs, j)
		drain:
			for len(jobs) < groupTurnMax {
				select {
				case j, ok := <-d.ch:
					if !ok {
						break drain
					}
					jobs = append(jobs, j)
				default:
					break drain
				}
			}
		case <-timer.C:
		case r := <-d.meta.ch:
			d.addMetas(r)
		case dd := <-d.dlq.done:
			d.deadLettered(dd)
		}
		d.turn(jobs)
		timer.Reset(d.sleep())
	}
}

// sleep is how long the loop may wait for a request: until the next
// session deadline or metadata check.
func (d *groupDriver) sleep() time.Duration {
	wait := groupMetaEvery - time.Since(d.lastMeta)
	now := d.now()
	for _, gp := range d.parts {
		if at, ok := gp.c.NextDeadline(); ok && at-now < wait {
			wait = at - now
		}
	}
	return max(d.shareSleep(wait), time.Millisecond)
}

func (d *groupDriver) turn(jobs []groupJob) {
	now := d.now()
	if tt := d.s.topics.Load(); tt != d.topics {
		d.syncTopics(tt)
		d.followLeadership(tt)
	}
	for _, gp := range d.parts {
		if at, ok := gp.c.NextDeadline(); ok && at <= now {
			gp.c.Tick(now)
		}
	}
	d.expireShares()
	var deletions []chan struct{}
	for _, j := range jobs {
		if j.done != nil {
			for _, gp := range d.parts {
				gp.c.DeleteTopic(j.deleted)
			}
			deletions = append(deletions, j.done)
			continue
		}
		d.handle(j, now)
	}
	d.trimWindows()
	failed := d.persistAll()
	for _, gp := range d.parts {
		d.fence.apply(gp.fenced)
		clear(gp.fenced)
		gp.fenced = gp.fenced[:0]
	}
	for _, r := range d.replies {
		if r.part >= 0 && failed[r.part] {
			r.code, r.resp = proto.CoordinatorNotAvailable, nil
		}
		d.reply(r)
	}
	clear(d.replies)
	d.replies = d.replies[:0]
	for _, done := range deletions {
		close(done)
	}
	if time.Since(d.lastMeta) >= groupMetaEvery {
		d.lastMeta = time.Now()
		d.exportStats()
	}
}

var errInjected = errors.New("reactor: injected group append failure (test)")

// persistAll appends the records of every coordinator that has some, the
// partitions' logs in parallel (one write and one fdatasync each), and
// returns the partitions whose append failed (their coordinators are
// rebuilt from their logs).
func (d *groupDriver) persistAll() map[int]bool {
	var dirty []*groupPartition
	for _, gp := range d.parts {
		if gp.broken == nil && gp.log != nil && gp.c.HasReady() {
			dirty = append(dirty, gp)
		}
	}
	errs := make([]error, len(dirty))
	if len(dirty) == 1 {
		errs[0] = d.persist(dirty[0])
	} else {
		var wg sync.WaitGroup
		for i, gp := range dirty {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = d.persist(gp)
			}()
		}
		wg.Wait()
	}
	var failed map[int]bool
	for i, gp := range dirty {
		if errs[i] != nil {
			if failed == nil {
				failed = map[int]bool{}
			}
			failed[gp.id] = true
			d.fail(gp, errs[i])
		}
	}
	return failed
}

// persist appends a coordinator's Ready records as one group commit and
// compacts the log when it has grown enough. It touches only gp (so the
// partitions persist in parallel).
func (d *groupDriver) persist(gp *groupPartition) error {
	if !gp.c.HasReady() {
		return nil
	}
	rd := gp.c.Ready()
	start := time.Now()
	err := errInjected
	if !d.s.failGroupAppends.Load() {
		err = gp.log.append(rd.Records)
	}
	stats.ObserveGroupAppend(time.Since(start))
	if err != nil {
		return err
	}
	gp.fenced = fenceUpdates(gp.fenced, rd.Records)
	d.dlq.post(rd.DeadLetters) // copied: durable now, appended by the worker
	gp.c.Advance()
	if gp.log.needsCompaction(d.s.cfg.Groups.CompactBytes) {
		if err := gp.log.compact(gp.c.Records()); err != nil {
			d.s.log.Error("compact consumer-group log", "path", gp.log.path, "err", err)
		}
	}
	return nil
}

// fail drops a coordinator whose append failed and rebuilds it from its
// log (what is durable), as the group package's contract says.
func (d *groupDriver) fail(gp *groupPartition, err error) {
	d.s.log.Error("consumer-group append failed; rebuilding the coordinator from its log",
		"partition", gp.id, "err", err)
	path := gp.log.path
	gp.log.close()
	gp.log = nil
	l, recs, err := openGroupLog(path)
	if err == nil {
		var c *group.Coordinator
		if c, err = group.Restore(d.cfg, d.topicCounts(), recs, d.now()); err == nil {
			gp.c, gp.log, gp.broken, gp.counters = c, l, nil, group.Counters{}
			d.fence.drop(gp.id)
			d.fence.apply(fenceUpdates(nil, c.Records()))
			return
		}
		l.close()
	}
	d.s.log.Error("consumer-group coordinator not available", "partition", gp.id, "err", err)
	gp.broken = err
	gp.c = group.New(d.cfg)           // answers nothing: requests see broken first
	d.fence.local[gp.id].Store(false) // its fetches are served unfenced
	d.fence.drop(gp.id)
}

func (d *groupDriver) syncTopics(tt *topicTable) {
	for name, ti := range tt.byName {
		for _, gp := range d.parts {
			gp.c.SetTopic(name, ti.partitions)
		}
	}
	for name := range d.topics.byName {
		if tt.byName[name] == nil {
			for _, gp := range d.parts {
				gp.c.DeleteTopic(name)
			}
		}
	}
	d.topics = tt
}

func (d *groupDriver) reply(r groupReply) {
	frame := proto.AppendResponse(nil, proto.ResponseHeader{CorrelationID: r.job.req.hdr.CorrelationID, Error: r.code}, r.resp)
	d.s.metrics.responseErrors(r.job.api, r.code, r.resp)
	r.job.origin.mb.post(message{kind: msgReply, req: r.job.req, frame: frame})
}

func (d *groupDriver) exportStats() {
	var byState [3]int
	members := 0
	for _, gp := range d.parts {
		st := gp.c.Stats()
		for i, n := range st.Groups {
			byState[i] += n
		}
		members += st.Members
		c := st.Counters
		stats.GroupCounts(c.Rebalances-gp.counters.Rebalances, c.Commits-gp.counters.Commits,
			c.Fenced-gp.counters.Fenced, c.Expired-gp.counters.Expired)
		gp.counters = c
	}
	stats.SetGroups(byState, members)
}

// exportCommits sets the committed-offset series of a partition's groups
// (at start), within the lag series bound.
func (d *groupDriver) exportCommits(gp *groupPartition) {
	for _, sm := range gp.c.Groups() {
		desc, err := gp.c.Describe(sm.Name)
		if err != nil {
			continue
		}
		for _, cm := range desc.Commits {
			d.lag.set(sm.Name, cm.Topic, cm.Partition, cm.Offset)
		}
	}
}

func (d *groupDriver) close() {
	for _, gp := range d.parts {
		if gp.log == nil {
			continue
		}
		if err := gp.log.close(); err != nil {
			d.s.log.Error("close consumer-group log", "path", gp.log.path, "err", err)
		}
	}
}

// groupMessage is a refusal's text for the wire: its details, without the
// sentinel's words, which the code's own message says.
func groupMessage(err error) string {
	msg := err.Error()
	for e := err; e != nil; e = errors.Unwrap(e) {
		if _, sentinel := groupSentinels[e]; sentinel {
			msg = strings.TrimPrefix(msg, e.Error()+": ")
			if e == group.ErrUnknownGroup {
				msg = "group " + msg + " does not exist"
			}
			return msg
		}
	}
	return msg
}

var groupSentinels = map[error]struct{}{
	group.ErrInvalidGroupName: {}, group.ErrInvalidTopic: {}, group.ErrInvalidRequest: {}, group.ErrUnknownGroup: {},
	group.ErrUnknownMember: {}, group.ErrExclusiveHeld: {}, group.ErrTypeMismatch: {}, group.ErrFenced: {},
	group.ErrGroupActive: {}, group.ErrTooManyGroups: {}, group.ErrTooManyMembers: {},
}

// groupErrorCode maps a coordinator refusal to its wire code.
func groupErrorCode(err error) proto.ErrorCode {
	switch {
	case err == nil:
		return proto.None
	case errors.Is(err, group.ErrInvalidGroupName):
		return proto.InvalidGroupName
	case errors.Is(err, group.ErrInvalidTopic):
		return proto.InvalidTopicName
	case errors.Is(err, group.ErrUnknownGroup):
		return proto.GroupNotFound
	case errors.Is(err, group.ErrUnknownMember):
		return proto.UnknownMemberID
	case errors.Is(err, group.ErrExclusiveHeld):
		return proto.SubscriptionHeld
	case errors.Is(err, group.ErrTypeMismatch):
		return proto.SubscriptionTypeMismatch
	case errors.Is(err, group.ErrFenced):
		return proto.FencedMemberEpoch
	case errors.Is(err, group.ErrGroupActive):
		return proto.GroupNotEmpty
	case errors.Is(err, group.ErrTooManyGroups):
		return proto.TooManyGroups
	case errors.Is(err, group.ErrTooManyMembers):
		return proto.TooManyMembers
	case errors.Is(err, group.ErrInvalidRequest):
		return proto.InvalidRequest
	}
	return proto.Unknown
}

// lagSeries bounds the (group, topic, partition) series exported to
// /metrics: the first max keys get one; the rest are not exported.
type lagSeries struct {
	max  int
	keys map[lagKey]*stats.GroupPartition
}

type lagKey struct {
	group, topic string
	partition    uint32
}

func newLagSeries(max int) lagSeries {
	return lagSeries{max: max, keys: map[lagKey]*stats.GroupPartition{}}
}

func (l *lagSeries) set(g, topic string, partition uint32, offset uint64) {
	k := lagKey{g, topic, partition}
	s := l.keys[k]
	if s == nil {
		if len(l.keys) >= l.max {
			return
		}
		s = stats.ForGroup(g, topic, int32(partition))
		l.keys[k] = s
	}
	s.SetCommitted(int64(offset))
}
