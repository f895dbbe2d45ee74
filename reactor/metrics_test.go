package reactor

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/stats"
)

// metricValue scrapes the Prometheus text and returns the value of the
// series whose line starts with name (labels included).
func metricValue(t *testing.T, series string) float64 {
	t.Helper()
	v, ok := lookupMetric(t, series)
	if !ok {
		t.Fatalf("series %s not exported", series)
	}
	return v
}

// metricOrZero is metricValue with a missing series read as 0 (a labelled
// counter appears with its first increment).
func metricOrZero(t *testing.T, series string) float64 {
	t.Helper()
	v, _ := lookupMetric(t, series)
	return v
}

func lookupMetric(t *testing.T, series string) (float64, bool) {
	t.Helper()
	var buf bytes.Buffer
	if err := stats.WritePrometheus(&buf); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindSubmatch(buf.Bytes())
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v, true
}

func TestMetricsFollowTheData(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir()))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	// A fresh topic name per run: the series are process-wide.
	topic := fmt.Sprintf("metered-%d", time.Now().UnixNano())
	ringtest.CreateTopic(t, c, topic, 2)
	for i := 0; i < 3; i++ {
		produceOne(t, c, topic, 1, []byte("0123456789"))
	}
	readAll(t, c, topic, 2)
	_, err := c.OffsetCommit(context.Background(), &proto.OffsetCommitRequest{Group: []byte("g1"),
		Topics: []proto.OffsetCommitTopic{{Name: []byte(topic), Partitions: []proto.OffsetCommitPartition{{Partition: 1, Offset: 1}}}}})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		series string
		want   float64
	}{
		{`ringmq_log_end_offset{topic="` + topic + `",partition="1"}`, 3},
		{`ringmq_log_end_offset{topic="` + topic + `",partition="0"}`, 0},
		{`ringmq_produce_messages_total{topic="` + topic + `"}`, 3},
		{`ringmq_fetch_messages_total{topic="` + topic + `"}`, 3},
		{`ringmq_group_committed_offset{group="g1",topic="` + topic + `",partition="1"}`, 1},
		{`ringmq_group_lag{group="g1",topic="` + topic + `",partition="1"}`, 2},
	}
	for _, ch := range checks {
		if got := metricValue(t, ch.series); got != ch.want {
			t.Errorf("%s = %v, want %v", ch.series, got, ch.want)
		}
	}
	if v := metricValue(t, `ringmq_segments{state="active"}`); v < 2 {
		t.Errorf("active segments = %v, want ≥ 2", v)
	}
	if v := metricValue(t, `ringmq_connections_open`); v < 1 {
		t.Errorf("open connections = %v", v)
	}
}
