package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/promtext"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

// startMetricsServer runs a server whose metrics listener is on an
// ephemeral port.
func startMetricsServer(t *testing.T) *server {
	t.Helper()
	path := writeConfig(t, t.TempDir())
	cfg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), `metrics_listen = ""`, `metrics_listen = "127.0.0.1:0"`, 1))
	if err := os.WriteFile(path, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, path)
	if s.metrics == "off" || s.metrics == "" {
		t.Fatalf("the server reported no metrics address (%q)", s.metrics)
	}
	return s
}

// fillTopics creates two topics, writes to them, reads one back and
// commits a group position, so every metric family has a series.
func fillTopics(t *testing.T, addr string, topics []string) {
	t.Helper()
	c := ringtest.Dial(t, addr, client.Options{})
	for i, topic := range topics {
		ringtest.CreateTopic(t, c, topic, uint32(2+i))
		var b proto.BatchBuilder
		b.Reset(nil)
		for j := range 10 * (i + 1) {
			b.Append(time.Now().UnixMilli(), nil, fmt.Appendf(nil, "record %d", j), nil)
		}
		resp, err := c.Produce(ringtest.Ctx(t), &proto.ProduceRequest{Acks: 1, Topics: []proto.ProduceTopic{{Name: []byte(topic),
			Partitions: []proto.ProducePartition{{Partition: 0, Records: b.Finish()}}}}})
		if err != nil || resp.Topics[0].Partitions[0].Error != proto.None {
			t.Fatalf("produce to %s: %v %+v", topic, err, resp)
		}
	}
	ringtest.ReadPartition(t, c, topics[0], 0)
	_, err := c.OffsetCommit(ringtest.Ctx(t), &proto.OffsetCommitRequest{Group: []byte("billing"),
		Topics: []proto.OffsetCommitTopic{{Name: []byte(topics[0]), Partitions: []proto.OffsetCommitPartition{{Partition: 0, Offset: 4}}}}})
	if err != nil {
		t.Fatal(err)
	}
	// One error, so that ringmq_request_errors_total has a series.
	if _, err := c.DescribeTopic(ringtest.Ctx(t), &proto.DescribeTopicRequest{Name: "no-such-topic"}); err == nil {
		t.Fatal("describing a missing topic succeeded")
	}
	// One parked fetch, so that ringmq_fetch_wait_seconds has observations.
	_, err = c.Fetch(ringtest.Ctx(t), &proto.FetchRequest{MaxWaitMs: 20, MinBytes: 1, MaxBytes: 1 << 20,
		Topics: []proto.FetchTopic{{Name: []byte(topics[0]), Partitions: []proto.FetchPartition{{Partition: 1, PartitionMaxBytes: 1 << 20}}}}})
	if err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, url string) string {
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

var seriesRE = regexp.MustCompile(`\b(?:ringmq|process|go)_[a-z0-9_]+`)

// Every series the Grafana dashboard queries exists on a running server,
// and the exposition follows the text format.
func TestDashboardMetricsExist(t *testing.T) {
	srv := startMetricsServer(t)
	fillTopics(t, srv.addr, []string{"orders", "payments"})

	raw, err := os.ReadFile("../deploy/grafana/ringmq.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("deploy/grafana/ringmq.json: %v", err)
	}
	used := map[string]string{} // series name → where
	var exprs []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
			for _, name := range seriesRE.FindAllString(tg.Expr, -1) {
				used[name] = "panel " + p.Title
			}
		}
	}
	for _, v := range dash.Templating.List {
		for _, name := range seriesRE.FindAllString(v.Definition, -1) {
			used[name] = "variable"
		}
	}
	if len(used) < 10 {
		t.Fatalf("found only %d series in the dashboard: %v", len(used), used)
	}

	fams, err := promtext.Parse(get(t, "http://"+srv.metrics+"/metrics"))
	if err != nil {
		t.Fatalf("GET /metrics breaks the text format:\n%v", err)
	}
	exported := map[string]bool{}
	for _, f := range fams {
		for _, s := range f.Samples {
			exported[s.Name] = true
		}
	}
	var names []string
	for name := range used {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !exported[name] {
			t.Errorf("the dashboard's %s uses %s, which the server does not export", used[name], name)
		}
	}
	t.Logf("%d series used by the dashboard, all exported: %s", len(names), strings.Join(names, " "))
	checkPromQL(t, exprs)
}

// checkPromQL has promtool parse every expression (as recording rules,
// with Grafana's variables filled in), when promtool is installed.
func checkPromQL(t *testing.T, exprs []string) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed (Debian package prometheus): PromQL syntax not checked")
		return
	}
	vars := strings.NewReplacer("$__rate_interval", "1m", "$instance", ".*", "$topic", ".*")
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range exprs {
		q, _ := json.Marshal(vars.Replace(e)) // a JSON string is a YAML string
		fmt.Fprintf(&rules, "      - record: dashboard:expr_%d\n        expr: %s\n", i, q)
	}
	path := t.TempDir() + "/rules.yml"
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Errorf("the dashboard's PromQL does not parse: %v\n%s", err, out)
	}
}

// chromium returns the path of a headless-capable Chromium, or skips.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	t.Skip("no chromium installed (Debian package chromium): the status page is not rendered in a browser")
	return ""
}

var (
	tagRE   = regexp.MustCompile(`(?s)<(script|style)\b.*?</(script|style)>|<[^>]+>`)
	blankRE = regexp.MustCompile(`[ \t]*\n[\s]*`)
)

// pageText is the visible text of a rendered page, roughly: markup and
// scripts removed, one table cell per tab.
func pageText(dom string) string {
	dom = strings.NewReplacer("</td>", "\t", "</th>", "\t", "</tr>", "\n", "</h1>", "\n", "</h2>", "\n", "</div>", "\n").Replace(dom)
	text := tagRE.ReplaceAllString(dom, "")
	text = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&nbsp;", " ").Replace(text)
	return strings.TrimSpace(blankRE.ReplaceAllString(text, "\n"))
}

// The status page at / renders, in headless Chromium, the topics, the
// partitions and the group lag of a running server.
func TestStatusPageInChromium(t *testing.T) {
	browser := chromium(t)
	srv := startMetricsServer(t)
	topics := []string{"orders", "payments"}
	fillTopics(t, srv.addr, topics)

	url := "http://" + srv.metrics + "/"
	var text string
	deadline := time.Now().Add(90 * time.Second)
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu",
			"--disable-dev-shm-usage", "--no-first-run", "--user-data-dir="+t.TempDir(),
			"--virtual-time-budget=5000", "--dump-dom", url)
		out, err := cmd.Output()
		cancel()
		if err != nil {
			t.Fatalf("chromium --dump-dom %s: %v", url, err)
		}
		text = pageText(string(out))
		if strings.Contains(text, "payments") || time.Now().After(deadline) {
			break
		}
		t.Logf("attempt %d: the page has no topics yet:\n%s", attempt, text)
	}
	t.Logf("the status page as headless Chromium rendered it:\n%s", text)
	if dump := os.Getenv("RINGMQ_STATUS_DUMP"); dump != "" {
		os.WriteFile(dump, []byte(text+"\n"), 0o644)
	}
	for _, want := range []string{
		"orders\t", "payments\t", // topic rows
		"0\t",                          // a partition row
		"billing\torders\t0\t4\t10\t6", // group, topic, partition, committed, log end, lag
		srv.addr,                       // the node
		"(this node)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the rendered page lacks %q", want)
		}
	}
	if strings.Contains(text, "cannot reach the server") || strings.Contains(text, "loading…") {
		t.Errorf("the page did not load its data")
	}
}
