package stats

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
)

// registry caches the labelled handles, so that one set of labels has one
// handle and its series are registered once.
var registry = struct {
	mu         sync.Mutex
	apis       map[string]*APIStats
	topics     map[string]*Topic
	partitions map[partitionKey]*Partition
	groups     map[groupKey]*GroupPartition
}{
	apis:       map[string]*APIStats{},
	topics:     map[string]*Topic{},
	partitions: map[partitionKey]*Partition{},
	groups:     map[groupKey]*GroupPartition{},
}

type partitionKey struct {
	topic     string
	partition int32
}

type groupKey struct {
	group string
	partitionKey
}

// series remembers the names a handle registered, to unregister them.
type series []string

func (s *series) counter(name string) *metrics.Counter {
	*s = append(*s, name)
	return set.NewCounter(name)
}

func (s *series) gauge(name string, f func() float64) {
	*s = append(*s, name)
	set.NewGauge(name, f)
}

func (s series) unregister() {
	for _, name := range s {
		set.UnregisterMetric(name)
	}
}

// API returns the series of the request type name ("produce", "fetch", ...),
// creating them on first use. Request types are never dropped.
func API(name string) *APIStats {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if a, ok := registry.apis[name]; ok {
		return a
	}
	labels := `{api="` + escapeLabel(name) + `"}`
	a := &APIStats{
		name:     name,
		duration: set.NewPrometheusHistogramExt("ringmq_request_duration_seconds"+labels, LatencyBuckets),
	}
	registry.apis[name] = a
	return a
}

// Topic holds a topic's series. Get it once from ForTopic.
type Topic struct {
	produceMsgs, produceBytes *metrics.Counter
	fetchMsgs, fetchBytes     *metrics.Counter
	diskBytes                 atomic.Int64
	names                     series
}

// ForTopic returns the series of topic, creating them on first use.
func ForTopic(topic string) *Topic {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	return topicLocked(topic)
}

func topicLocked(topic string) *Topic {
	if t, ok := registry.topics[topic]; ok {
		return t
	}
	labels := `{topic="` + escapeLabel(topic) + `"}`
	t := &Topic{}
	t.produceMsgs = t.names.counter("ringmq_produce_messages_total" + labels)
	t.produceBytes = t.names.counter("ringmq_produce_bytes_total" + labels)
	t.fetchMsgs = t.names.counter("ringmq_fetch_messages_total" + labels)
	t.fetchBytes = t.names.counter("ringmq_fetch_bytes_total" + labels)
	t.names.gauge("ringmq_disk_bytes"+labels, func() float64 { return float64(t.diskBytes.Load()) })
	registry.topics[topic] = t
	return t
}

// Produced counts messages and bytes (record batch bytes) appended.
func (t *Topic) Produced(messages, bytes int) {
	t.produceMsgs.Add(messages)
	t.produceBytes.Add(bytes)
}

// Fetched counts messages and bytes sent to consumers.
func (t *Topic) Fetched(messages, bytes int) {
	t.fetchMsgs.Add(messages)
	t.fetchBytes.Add(bytes)
}

// AddDiskBytes adds delta (negative when segments are deleted) to the
// topic's bytes on disk.
func (t *Topic) AddDiskBytes(delta int64) { t.diskBytes.Add(delta) }

// Partition holds a partition's series. Get it once from ForPartition.
type Partition struct {
	logEnd atomic.Int64
	hw     atomic.Int64
	lag    atomic.Int64
	names  series
}

// ForPartition returns the series of a partition, creating them on first
// use; each live handle counts in ringmq_partitions.
func ForPartition(topic string, partition int32) *Partition {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	return partitionLocked(partitionKey{topic, partition})
}

func partitionLocked(k partitionKey) *Partition {
	if p, ok := registry.partitions[k]; ok {
		return p
	}
	p := &Partition{}
	p.names.gauge("ringmq_log_end_offset"+k.labels(), func() float64 { return float64(p.logEnd.Load()) })
	p.names.gauge("ringmq_high_watermark"+k.labels(), func() float64 { return float64(p.hw.Load()) })
	p.names.gauge("ringmq_follower_max_lag"+k.labels(), func() float64 { return float64(p.lag.Load()) })
	registry.partitions[k] = p
	partitionsAlive.Add(1)
	return p
}

// SetLogEnd records the partition's log end offset (the next offset to be
// assigned).
func (p *Partition) SetLogEnd(offset int64) { p.logEnd.Store(offset) }

// SetHighWatermark records the partition's high watermark.
func (p *Partition) SetHighWatermark(offset int64) { p.hw.Store(offset) }

// SetFollowerLag records, on the partition's leader, the largest lag of
// its followers (its log end less a follower's match offset); 0 elsewhere.
func (p *Partition) SetFollowerLag(n int64) { p.lag.Store(n) }

// GroupPartition holds a consumer group's series for one partition. Get it
// once from ForGroup.
type GroupPartition struct {
	committed atomic.Int64 // -1 until the first commit
	partition *Partition
	names     series
}

// ForGroup returns a group's series for one partition, creating them (and
// the partition's, if needed) on first use.
func ForGroup(group, topic string, partition int32) *GroupPartition {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	k := groupKey{group, partitionKey{topic, partition}}
	if g, ok := registry.groups[k]; ok {
		return g
	}
	g := &GroupPartition{partition: partitionLocked(k.partitionKey)}
	g.committed.Store(-1)
	labels := `{group="` + escapeLabel(group) + `",` + k.labels()[1:]
	g.names.gauge("ringmq_group_committed_offset"+labels, func() float64 { return float64(g.committed.Load()) })
	g.names.gauge("ringmq_group_lag"+labels, func() float64 { return float64(g.Lag()) })
	registry.groups[k] = g
	return g
}

// SetCommitted records the group's committed offset (the next offset it
// will consume).
func (g *GroupPartition) SetCommitted(offset int64) { g.committed.Store(offset) }

// Lag is the partition's log end minus the committed offset, never below 0;
// before the first commit it is the whole log end.
func (g *GroupPartition) Lag() int64 {
	lag := g.partition.logEnd.Load() - max(g.committed.Load(), 0)
	return max(lag, 0)
}

// DropTopic unregisters the series of topic, of its partitions, and of the
// groups' positions in it (a deleted topic). Handles already given out stay
// usable but are no longer exported; ForTopic creates fresh ones.
func DropTopic(topic string) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if t, ok := registry.topics[topic]; ok {
		t.names.unregister()
		delete(registry.topics, topic)
	}
	for k, g := range registry.groups {
		if k.topic == topic {
			g.names.unregister()
			delete(registry.groups, k)
		}
	}
	for k, p := range registry.partitions {
		if k.topic == topic {
			p.names.unregister()
			delete(registry.partitions, k)
			partitionsAlive.Add(-1)
		}
	}
}

// DropGroup unregisters every series of group (a deleted group).
func DropGroup(group string) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	for k, g := range registry.groups {
		if k.group == group {
			g.names.unregister()
			delete(registry.groups, k)
		}
	}
}

// labels formats {topic="...",partition="..."}.
func (k partitionKey) labels() string {
	return `{topic="` + escapeLabel(k.topic) + `",partition="` +
		strconv.FormatInt(int64(k.partition), 10) + `"}`
}

// escapeLabel escapes a Prometheus label value: backslash, double quote and
// line feed.
func escapeLabel(v string) string {
	if !strings.ContainsAny(v, "\\\"\n") {
		return v
	}
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}

// TopicTotals are a topic's counters since the server started.
type TopicTotals struct {
	ProducedMessages, ProducedBytes uint64
	FetchedMessages, FetchedBytes   uint64
}

// Totals reads the topic's counters.
func (t *Topic) Totals() TopicTotals {
	return TopicTotals{
		ProducedMessages: t.produceMsgs.Get(), ProducedBytes: t.produceBytes.Get(),
		FetchedMessages: t.fetchMsgs.Get(), FetchedBytes: t.fetchBytes.Get(),
	}
}

// GroupPosition is a consumer group's position in one partition.
type GroupPosition struct {
	Group     string
	Topic     string
	Partition int32
	Committed int64 // -1 before the first commit
	LogEnd    int64
	Lag       int64
}

// Groups lists every group's position, sorted by group, topic and
// partition. It locks the registry and allocates: for scrapes and the
// status page, not the hot path.
func Groups() []GroupPosition {
	registry.mu.Lock()
	out := make([]GroupPosition, 0, len(registry.groups))
	for k, g := range registry.groups {
		out = append(out, GroupPosition{Group: k.group, Topic: k.topic, Partition: k.partition,
			Committed: g.committed.Load(), LogEnd: g.partition.logEnd.Load(), Lag: g.Lag()})
	}
	registry.mu.Unlock()
	slices.SortFunc(out, func(a, b GroupPosition) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out
}
