package stats

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringmq/ringmq/storage"
)

// scrape returns the text of every ringmq series.
func scrape(t *testing.T) string {
	t.Helper()
	var b bytes.Buffer
	set.WritePrometheus(&b)
	return b.String()
}

// sample returns the value of one series in a scrape, and whether it is
// there.
func sample(text, series string) (string, bool) {
	for line := range strings.Lines(text) {
		if v, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), series+" "); ok {
			return v, true
		}
	}
	return "", false
}

func wantSample(t *testing.T, text, series, want string) {
	t.Helper()
	got, ok := sample(text, series)
	if !ok {
		t.Errorf("series %s missing", series)
	} else if got != want {
		t.Errorf("%s = %s, want %s", series, got, want)
	}
}

func TestTopicSeries(t *testing.T) {
	DropTopic("orders") // fresh series when the test runs more than once
	tp := ForTopic("orders")
	tp.Produced(3, 300)
	tp.Produced(2, 200)
	tp.Fetched(1, 100)
	tp.AddDiskBytes(4096)
	tp.AddDiskBytes(-96)
	text := scrape(t)
	wantSample(t, text, `ringmq_produce_messages_total{topic="orders"}`, "5")
	wantSample(t, text, `ringmq_produce_bytes_total{topic="orders"}`, "500")
	wantSample(t, text, `ringmq_fetch_messages_total{topic="orders"}`, "1")
	wantSample(t, text, `ringmq_fetch_bytes_total{topic="orders"}`, "100")
	wantSample(t, text, `ringmq_disk_bytes{topic="orders"}`, "4000")
}

func TestLookupsAreCached(t *testing.T) {
	const n = 8
	var wg sync.WaitGroup
	topics := make([]*Topic, n)
	parts := make([]*Partition, n)
	groups := make([]*GroupPartition, n)
	apis := make([]*APIStats, n)
	for i := range n {
		wg.Go(func() {
			topics[i] = ForTopic("cached")
			parts[i] = ForPartition("cached", 3)
			groups[i] = ForGroup("g", "cached", 3)
			apis[i] = API("cached_api")
		})
	}
	wg.Wait()
	for i := range n {
		if topics[i] != topics[0] || parts[i] != parts[0] || groups[i] != groups[0] || apis[i] != apis[0] {
			t.Fatalf("lookup %d returned a different handle", i)
		}
	}
	if groups[0].partition != parts[0] {
		t.Fatal("ForGroup is not linked to the partition's handle")
	}
	if ForPartition("cached", 4) == parts[0] {
		t.Fatal("two partitions share a handle")
	}
}

func TestGroupLag(t *testing.T) {
	DropTopic("lagged") // fresh series when the test runs more than once
	DropGroup("billing")
	p := ForPartition("lagged", 0)
	g := ForGroup("billing", "lagged", 0)
	p.SetLogEnd(100)
	const committed = `ringmq_group_committed_offset{group="billing",topic="lagged",partition="0"}`
	const lag = `ringmq_group_lag{group="billing",topic="lagged",partition="0"}`
	text := scrape(t)
	wantSample(t, text, `ringmq_log_end_offset{topic="lagged",partition="0"}`, "100")
	wantSample(t, text, committed, "-1")
	wantSample(t, text, lag, "100")

	g.SetCommitted(40)
	text = scrape(t)
	wantSample(t, text, committed, "40")
	wantSample(t, text, lag, "60")

	p.SetLogEnd(130) // lag follows the log end without a new commit
	wantSample(t, scrape(t), lag, "90")

	g.SetCommitted(150) // a commit past a log end not yet seen
	wantSample(t, scrape(t), lag, "0")
}

func TestDropTopicAndGroup(t *testing.T) {
	before := partitionsAlive.Load()
	tp := ForTopic("doomed")
	tp.Produced(7, 70)
	ForPartition("doomed", 0)
	ForPartition("doomed", 1)
	ForGroup("readers", "doomed", 1)
	ForGroup("readers", "kept", 0)
	if got := partitionsAlive.Load() - before; got != 3 {
		t.Fatalf("ringmq_partitions grew by %d, want 3", got)
	}
	DropTopic("doomed")
	if got := partitionsAlive.Load() - before; got != 1 {
		t.Fatalf("after DropTopic ringmq_partitions is %d over the start, want 1", got)
	}
	text := scrape(t)
	if strings.Contains(text, `"doomed"`) {
		t.Fatalf("series of a dropped topic still exported:\n%s", text)
	}
	wantSample(t, text, `ringmq_group_lag{group="readers",topic="kept",partition="0"}`, "0")
	if again := ForTopic("doomed"); again == tp {
		t.Fatal("ForTopic after DropTopic returned the old handle")
	}
	wantSample(t, scrape(t), `ringmq_produce_messages_total{topic="doomed"}`, "0")

	DropGroup("readers")
	if strings.Contains(scrape(t), `group="readers"`) {
		t.Fatal("series of a dropped group still exported")
	}
	DropTopic("doomed")
	DropTopic("kept")
	if got := partitionsAlive.Load(); got != before {
		t.Fatalf("ringmq_partitions = %d after dropping everything, want %d", got, before)
	}
}

// apiRuns makes TestAPISeries's request type unique per run (request types
// are never dropped).
var apiRuns atomic.Int32

func TestAPISeries(t *testing.T) {
	name := fmt.Sprintf("produce_test_%d", apiRuns.Add(1))
	a := API(name)
	a.Observe(1500 * time.Microsecond)
	a.Observe(2500 * time.Microsecond)
	a.Failed(3, "UNKNOWN_TOPIC")
	a.Failed(3, "UNKNOWN_TOPIC")
	a.Failed(0, "NONE") // not an error
	a.Failed(15, "STORAGE_ERROR")
	a.Failed(9999, "ERROR_CODE_9999")
	text := scrape(t)
	wantSample(t, text, `ringmq_request_duration_seconds_count{api="`+name+`"}`, "2")
	wantSample(t, text, `ringmq_request_duration_seconds_sum{api="`+name+`"}`, "0.004")
	wantSample(t, text, `ringmq_request_duration_seconds_bucket{api="`+name+`",le="0.001"}`, "0")
	wantSample(t, text, `ringmq_request_duration_seconds_bucket{api="`+name+`",le="0.0025"}`, "2")
	wantSample(t, text, `ringmq_request_duration_seconds_bucket{api="`+name+`",le="+Inf"}`, "2")
	wantSample(t, text, `ringmq_request_errors_total{api="`+name+`",code="UNKNOWN_TOPIC"}`, "2")
	wantSample(t, text, `ringmq_request_errors_total{api="`+name+`",code="STORAGE_ERROR"}`, "1")
	wantSample(t, text, `ringmq_request_errors_total{api="`+name+`",code="OTHER"}`, "1")
	if strings.Contains(text, `code="NONE"`) {
		t.Error("code 0 was counted as an error")
	}
}

func TestServerSeries(t *testing.T) {
	text := scrape(t)
	// A series that is missing counts as 0 (a histogram appears with its
	// first observation); the deltas below then fail if it stays missing.
	count := func(text, series string) int {
		v, _ := sample(text, series)
		var n int
		fmt.Sscan(v, &n)
		return n
	}
	open0 := count(text, "ringmq_connections_open")
	acc0 := count(text, "ringmq_connections_accepted_total")
	rej0 := count(text, "ringmq_connections_rejected_total")
	fsync0 := count(text, "ringmq_fsync_duration_seconds_count")
	wait0 := count(text, "ringmq_fetch_wait_seconds_count")
	bad0 := count(text, "ringmq_bad_frames_total")
	ObserveFetchWait(time.Second)
	BadFrame()
	ConnOpened()
	ConnOpened()
	ConnClosed()
	ConnRejected()
	ObserveFsync(200 * time.Microsecond)
	text = scrape(t)
	if got := count(text, "ringmq_connections_open") - open0; got != 1 {
		t.Errorf("connections_open grew by %d, want 1", got)
	}
	if got := count(text, "ringmq_connections_accepted_total") - acc0; got != 2 {
		t.Errorf("connections_accepted grew by %d, want 2", got)
	}
	if got := count(text, "ringmq_connections_rejected_total") - rej0; got != 1 {
		t.Errorf("connections_rejected grew by %d, want 1", got)
	}
	if got := count(text, "ringmq_fsync_duration_seconds_count") - fsync0; got != 1 {
		t.Errorf("fsync count grew by %d, want 1", got)
	}
	if got := count(text, "ringmq_fetch_wait_seconds_count") - wait0; got != 1 {
		t.Errorf("fetch wait count grew by %d, want 1", got)
	}
	if got := count(text, "ringmq_bad_frames_total") - bad0; got != 1 {
		t.Errorf("bad frames grew by %d, want 1", got)
	}
	ConnClosed()
}

func TestSegmentStates(t *testing.T) {
	var before [storage.NumSegmentStates]int64
	for s := range before {
		before[s] = segmentCounts[s].Load()
	}
	SegmentEntered(storage.SegmentActive)
	SegmentEntered(storage.SegmentActive)
	SegmentMoved(storage.SegmentActive, storage.SegmentSealed)
	SegmentMoved(storage.SegmentSealed, storage.SegmentFlushed)
	SegmentMoved(storage.SegmentFlushed, storage.SegmentArchived)
	SegmentEntered(storage.SegmentFlushed)
	SegmentLeft(storage.SegmentFlushed)
	text := scrape(t)
	want := [storage.NumSegmentStates]int64{1, 0, 0, 1}
	for s := range storage.SegmentState(storage.NumSegmentStates) {
		series := `ringmq_segments{state="` + s.String() + `"}`
		wantSample(t, text, series, fmt.Sprint(before[s]+want[s]))
	}
	SegmentLeft(storage.SegmentActive)
	SegmentLeft(storage.SegmentArchived)
	defer func() {
		if r := recover(); r == nil || !strings.HasPrefix(fmt.Sprint(r), "BUG:") {
			t.Errorf("SegmentEntered(bad state) recovered %v, want a BUG panic", r)
		}
	}()
	SegmentEntered(storage.SegmentState(storage.NumSegmentStates))
}

func TestLabelEscaping(t *testing.T) {
	for in, want := range map[string]string{
		"plain.topic-1": "plain.topic-1",
		`a"b`:           `a\"b`,
		`back\slash`:    `back\\slash`,
		"two\nlines":    `two\nlines`,
	} {
		if got := escapeLabel(in); got != want {
			t.Errorf("escapeLabel(%q) = %q, want %q", in, got, want)
		}
	}
	ForTopic(`we"ird\`+"\n").Produced(1, 1)
	wantSample(t, scrape(t), `ringmq_produce_messages_total{topic="we\"ird\\\n"}`, "1")
	DropTopic(`we"ird\` + "\n")
}

// The updates the reactors make per request never allocate.
func TestHotPathDoesNotAllocate(t *testing.T) {
	tp := ForTopic("allocs")
	p := ForPartition("allocs", 0)
	g := ForGroup("allocs", "allocs", 0)
	a := API("allocs_api")
	a.Failed(3, "UNKNOWN_TOPIC") // a code's first use registers its series
	allocs := testing.AllocsPerRun(100, func() {
		tp.Produced(10, 1000)
		tp.Fetched(10, 1000)
		tp.AddDiskBytes(1000)
		p.SetLogEnd(42)
		g.SetCommitted(40)
		a.Observe(time.Millisecond)
		a.Failed(3, "UNKNOWN_TOPIC")
		a.Failed(0, "NONE")
		ObserveFetchWait(time.Millisecond)
		BytesSent(100)
		Sent(SendZeroCopy)
		ObserveFsync(300 * time.Microsecond)
		ConnOpened()
		ConnClosed()
		SegmentMoved(storage.SegmentSealed, storage.SegmentFlushed)
		SegmentMoved(storage.SegmentFlushed, storage.SegmentSealed)
	})
	if allocs != 0 {
		t.Fatalf("hot-path updates allocate %.1f times per run", allocs)
	}
	DropTopic("allocs")
}

func TestGroupsAndTotals(t *testing.T) {
	DropTopic("listed")
	DropGroup("b-readers")
	DropGroup("a-readers")
	ForPartition("listed", 1).SetLogEnd(50)
	ForPartition("listed", 0).SetLogEnd(10)
	ForGroup("b-readers", "listed", 0).SetCommitted(4)
	ForGroup("a-readers", "listed", 1).SetCommitted(20)
	ForGroup("a-readers", "listed", 0)
	defer DropTopic("listed")
	var got []GroupPosition
	for _, g := range Groups() {
		if g.Topic == "listed" {
			got = append(got, g)
		}
	}
	want := []GroupPosition{
		{"a-readers", "listed", 0, -1, 10, 10},
		{"a-readers", "listed", 1, 20, 50, 30},
		{"b-readers", "listed", 0, 4, 10, 6},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Groups() = %v, want %v", got, want)
	}
	tp := ForTopic("listed")
	tp.Produced(3, 30)
	tp.Fetched(2, 20)
	if tot := tp.Totals(); tot != (TopicTotals{3, 30, 2, 20}) {
		t.Fatalf("Totals() = %+v", tot)
	}
}

// Each send path has its own series, present from the start (a server that
// never sends zero-copy still shows 0), and Sent counts only its own
// (TestEveryFamilyHasHelp checks the family's HELP text).
func TestSendPaths(t *testing.T) {
	before := map[SendPath]int{}
	text := scrape(t)
	for p := range SendPath(numSendPaths) {
		v, ok := sample(text, `ringmq_sends_total{path="`+p.String()+`"}`)
		if !ok {
			t.Fatalf("series for path %s missing before any send", p)
		}
		before[p], _ = strconv.Atoi(v)
	}
	Sent(SendPlain)
	Sent(SendZeroCopyCopied)
	Sent(SendZeroCopyCopied)
	text = scrape(t)
	for p, add := range map[SendPath]int{SendPlain: 1, SendZeroCopy: 0, SendZeroCopyCopied: 2} {
		wantSample(t, text, `ringmq_sends_total{path="`+p.String()+`"}`, strconv.Itoa(before[p]+add))
	}
}
