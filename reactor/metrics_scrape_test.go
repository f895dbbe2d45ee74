package reactor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/promtext"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/stats"
)

// serveMetrics starts the metrics HTTP server for srv on an ephemeral port
// and returns its base URL.
func serveMetrics(t *testing.T, srv *Server) string {
	t.Helper()
	m, err := stats.Serve("127.0.0.1:0", srv.Healthy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return "http://" + m.Addr()
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(body)
}

// The /metrics page of a server that served traffic follows the text
// format: # HELP and # TYPE for every family, le buckets with _sum and
// _count for every latency histogram; promtool agrees when installed.
func TestMetricsPageFollowsTheTextFormat(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	base := serveMetrics(t, srv)
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	topic := fmt.Sprintf("scraped-%d", time.Now().UnixNano())
	ringtest.CreateTopic(t, c, topic, 2)
	produceOne(t, c, topic, 0, []byte("v"))
	readAll(t, c, topic, 2)

	text := httpGet(t, base+"/metrics")
	fams, err := promtext.Parse(text)
	if err != nil {
		t.Fatalf("GET /metrics breaks the text format:\n%v", err)
	}
	h := fams["ringmq_request_duration_seconds"]
	if h == nil || h.Type != "histogram" {
		t.Fatalf("ringmq_request_duration_seconds = %+v", h)
	}
	buckets := map[string]bool{}
	for _, s := range h.Samples {
		if s.Name == h.Name+"_bucket" && s.Labels["api"] == "produce" {
			buckets[s.Labels["le"]] = true
		}
	}
	for _, le := range []string{"0.001", "0.01", "0.1", "1", "+Inf"} {
		if !buckets[le] {
			t.Errorf("produce latency has no bucket le=%q (has %v)", le, buckets)
		}
	}
	if strings.Contains(text, "vmrange") {
		t.Error("/metrics still has vmrange buckets")
	}
	if promtool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(text)
		if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	} else {
		t.Log("promtool not installed (Debian package prometheus): checked with promtext only")
	}
}

// Error codes are counted per API and code: a response's own code and the
// codes of its partitions and topics.
func TestRequestErrorsAreCounted(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	topic := fmt.Sprintf("errs-%d", time.Now().UnixNano())
	ringtest.CreateTopic(t, c, topic, 1)
	series := func(api, code string) string {
		return `ringmq_request_errors_total{api="` + api + `",code="` + code + `"}`
	}
	checks := []struct {
		series string
		do     func()
	}{
		{series("fetch", "UNKNOWN_TOPIC"), func() {
			_, err := c.Fetch(ringtest.Ctx(t), &proto.FetchRequest{MaxBytes: 1 << 20, Topics: []proto.FetchTopic{
				{Name: []byte("no-such-topic"), Partitions: []proto.FetchPartition{{Partition: 0, PartitionMaxBytes: 1 << 20}}}}})
			if err != nil {
				t.Fatal(err)
			}
		}},
		{series("fetch", "OFFSET_OUT_OF_RANGE"), func() {
			_, err := c.Fetch(ringtest.Ctx(t), &proto.FetchRequest{MaxBytes: 1 << 20, Topics: []proto.FetchTopic{
				{Name: []byte(topic), Partitions: []proto.FetchPartition{{Partition: 0, Offset: 99, PartitionMaxBytes: 1 << 20}}}}})
			if err != nil {
				t.Fatal(err)
			}
		}},
		{series("produce", "UNKNOWN_PARTITION"), func() {
			var b proto.BatchBuilder
			b.Reset(nil)
			b.Append(time.Now().UnixMilli(), nil, []byte("v"), nil)
			_, err := c.Produce(ringtest.Ctx(t), &proto.ProduceRequest{Acks: 1, Topics: []proto.ProduceTopic{{Name: []byte(topic),
				Partitions: []proto.ProducePartition{{Partition: 7, Records: b.Finish()}}}}})
			if err != nil {
				t.Fatal(err)
			}
		}},
		{series("createtopic", "TOPIC_EXISTS"), func() {
			if _, err := c.CreateTopic(ringtest.Ctx(t), &proto.CreateTopicRequest{Name: topic, Partitions: 1}); err == nil {
				t.Fatal("creating an existing topic succeeded")
			}
		}},
	}
	for _, ch := range checks {
		before := metricOrZero(t, ch.series)
		ch.do()
		if got := metricOrZero(t, ch.series) - before; got != 1 {
			t.Errorf("%s grew by %v, want 1", ch.series, got)
		}
	}
}

// A fetch parked in a long poll has its wait observed in
// ringmq_fetch_wait_seconds, and not in its request latency.
func TestFetchLatencyExcludesTheLongPollWait(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	topic := fmt.Sprintf("polled-%d", time.Now().UnixNano())
	ringtest.CreateTopic(t, c, topic, 1)
	const (
		waitCount = `ringmq_fetch_wait_seconds_count`
		waitSum   = `ringmq_fetch_wait_seconds_sum`
		count     = `ringmq_request_duration_seconds_count{api="fetch"}`
		fast      = `ringmq_request_duration_seconds_bucket{api="fetch",le="0.25"}`
	)
	wc0, ws0 := metricOrZero(t, waitCount), metricOrZero(t, waitSum)
	c0, f0 := metricOrZero(t, count), metricOrZero(t, fast)
	start := time.Now()
	_, err := c.Fetch(ringtest.Ctx(t), &proto.FetchRequest{MaxWaitMs: 600, MinBytes: 1, MaxBytes: 1 << 20,
		Topics: []proto.FetchTopic{{Name: []byte(topic), Partitions: []proto.FetchPartition{{Partition: 0, PartitionMaxBytes: 1 << 20}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 550*time.Millisecond {
		t.Fatalf("the fetch returned after %v, before its max_wait", el)
	}
	if got := metricOrZero(t, waitCount) - wc0; got != 1 {
		t.Errorf("fetch wait count grew by %v, want 1", got)
	}
	if got := metricOrZero(t, waitSum) - ws0; got < 0.55 {
		t.Errorf("fetch wait sum grew by %.3fs, want ≥ 0.55s", got)
	}
	if got := metricOrZero(t, count) - c0; got != 1 {
		t.Errorf("fetch latency count grew by %v, want 1", got)
	}
	if got := metricOrZero(t, fast) - f0; got != 1 {
		t.Errorf("the parked fetch's latency is above 250ms: it includes the long-poll wait")
	}
}

// Storage warnings go through the logger the server was given (log.format
// applies to them), not the process's default logger.
func TestStorageWarningsUseTheServerLogger(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	srv := startServer(t, cfg)
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "warned", 1)
	produceOne(t, c, "warned", 0, []byte("v"))
	c.Close()
	if err := srv.Shutdown(ringtest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(dir, "topics", "warned", "0", "recovery-point")
	if err := os.WriteFile(ckpt, []byte("not a checkpoint"), 0o644); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logged, nil)) // the handler serializes writes
	srv2, err := NewServer(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv2.Start(); err != nil {
		t.Fatal(err)
	}
	if err := srv2.Shutdown(ringtest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(logged.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if msg, _ := rec["msg"].(string); strings.Contains(msg, "unreadable checkpoint") && rec["level"] == "WARN" {
			found = true
		}
	}
	if !found {
		t.Fatalf("the storage warning about the bad checkpoint did not reach the server's logger; it logged:\n%s", logged.String())
	}
}
