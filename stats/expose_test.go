package stats

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/internal/promtext"
)

// exposition is the whole /metrics text with one series of every kind.
func exposition(t *testing.T) string {
	t.Helper()
	ForTopic("exposed").Produced(1, 10)
	ForGroup("g", "exposed", 0).SetCommitted(1)
	a := API("exposed_api")
	a.Observe(3 * time.Millisecond)
	a.Failed(4, "UNKNOWN_PARTITION")
	ObserveFsync(time.Millisecond)
	t.Cleanup(func() { DropTopic("exposed"); DropGroup("g") })
	var b bytes.Buffer
	if err := WritePrometheus(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestExpositionFollowsTheTextFormat(t *testing.T) {
	text := exposition(t)
	fams, err := promtext.Parse(text)
	if err != nil {
		t.Fatalf("exposition breaks the text format:\n%v", err)
	}
	for name, typ := range map[string]string{
		"ringmq_request_duration_seconds":   "histogram",
		"ringmq_fsync_duration_seconds":     "histogram",
		"ringmq_fetch_wait_seconds":         "histogram",
		"ringmq_request_errors_total":       "counter",
		"ringmq_produce_messages_total":     "counter",
		"ringmq_group_lag":                  "gauge",
		"go_goroutines":                     "gauge",
		"process_cpu_seconds_total":         "counter",
		"go_gc_forced_total":                "counter", // renamed from go_gc_forced_count
		"process_io_read_bytes_total":       "counter", // declared a gauge by the library
		"ringmq_connections_accepted_total": "counter",
	} {
		f := fams[name]
		if f == nil {
			if strings.HasPrefix(name, "process_io_") {
				continue // absent where /proc/self/io is not readable
			}
			t.Errorf("family %s missing", name)
			continue
		}
		if f.Type != typ {
			t.Errorf("%s has # TYPE %s, want %s", name, f.Type, typ)
		}
	}
	if strings.Contains(text, "vmrange") {
		t.Error("exposition still has vmrange buckets")
	}
}

// Every ringmq family has its own help text, not the fallback.
func TestEveryFamilyHasHelp(t *testing.T) {
	fams, _ := promtext.Parse(exposition(t))
	for name := range fams {
		if strings.HasPrefix(name, "ringmq_") && help[name] == "" {
			t.Errorf("family %s has no entry in help", name)
		}
	}
}

// promtool (Debian package prometheus) checks the exposition, lint
// included, when it is installed.
func TestPromtoolCheckMetrics(t *testing.T) {
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus); skipping")
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(exposition(t))
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
