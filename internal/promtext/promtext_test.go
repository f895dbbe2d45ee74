package promtext

import (
	"strings"
	"testing"
)

const good = `# HELP req_seconds Request latency.
# TYPE req_seconds histogram
req_seconds_bucket{api="a",le="0.1"} 1
req_seconds_bucket{api="a",le="1"} 3
req_seconds_bucket{api="a",le="+Inf"} 4
req_seconds_sum{api="a"} 7.5
req_seconds_count{api="a"} 4
# HELP errs_total Errors.
# TYPE errs_total counter
errs_total{api="a",code="X"} 2
# HELP up Whether it runs.
# TYPE up gauge
up{name="we\"ird\\\n"} 1
# HELP gc_seconds Pauses.
# TYPE gc_seconds summary
gc_seconds{quantile="0.5"} 0.001
gc_seconds_sum 0.2
gc_seconds_count 9
`

func TestParseGood(t *testing.T) {
	fams, err := Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	if f := fams["req_seconds"]; f == nil || f.Type != "histogram" || len(f.Samples) != 5 {
		t.Fatalf("req_seconds = %+v", f)
	}
	if got := fams["up"].Samples[0].Labels["name"]; got != "we\"ird\\\n" {
		t.Fatalf("unescaped label = %q", got)
	}
}

func TestParseBad(t *testing.T) {
	for name, c := range map[string]struct{ text, want string }{
		"no help text":   {"# HELP x\n# TYPE x gauge\nx 1\n", "has no text"},
		"no metadata":    {"x 1\n", "no # TYPE or # HELP"},
		"untyped":        {"# HELP x X.\n# TYPE x untyped\nx 1\n", `"untyped"`},
		"vmrange":        {"# HELP h H.\n# TYPE h histogram\nh_bucket{vmrange=\"1...2\"} 1\nh_sum 1\nh_count 1\n", "without le"},
		"no +Inf":        {"# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", `le="+Inf"`},
		"inf != count":   {"# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n", "!= _count"},
		"not cumulative": {"# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n", "cumulative"},
		"no _sum":        {"# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 2\n", "lacks _sum"},
		"counter name":   {"# HELP c C.\n# TYPE c counter\nc 1\n", "_total"},
		"split family":   {"# HELP a A.\n# TYPE a gauge\na{x=\"1\"} 1\n# HELP b B.\n# TYPE b gauge\nb 1\na{x=\"2\"} 1\n", "not together"},
		"duplicate":      {"# HELP a A.\n# TYPE a gauge\na 1\na 2\n", "duplicate"},
		"bad escape":     {"# HELP a A.\n# TYPE a gauge\na{x=\"\\t\"} 1\n", "bad escape"},
		"bad value":      {"# HELP a A.\n# TYPE a gauge\na one\n", "bad value"},
	} {
		if _, err := Parse(c.text); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Parse = %v, want an error containing %q", name, err, c.want)
		}
	}
}
