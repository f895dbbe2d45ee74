package stats

import (
	"sync/atomic"
	"time"
)

// Consumer-group series: per state, never per group (bounded cardinality);
// the per-partition committed offset and lag are ForGroup's, and the
// coordinator exports those for a bounded number of (group, partition).
var (
	groupsByState      [3]atomic.Int64 // empty, reconciling, stable
	groupMembers       atomic.Int64
	groupRebalances    = set.NewCounter("ringmq_group_rebalances_total")
	groupCommits       = set.NewCounter("ringmq_group_commits_total")
	groupFenced        = set.NewCounter("ringmq_group_fenced_total")
	groupExpired       = set.NewCounter("ringmq_group_sessions_expired_total")
	groupAppendSeconds = set.NewPrometheusHistogramExt("ringmq_group_append_duration_seconds", LatencyBuckets)
)

var groupStateNames = [3]string{"empty", "reconciling", "stable"}

func init() {
	for i, name := range groupStateNames {
		set.NewGauge(`ringmq_groups{state="`+name+`"}`, func() float64 { return float64(groupsByState[i].Load()) })
	}
	set.NewGauge("ringmq_group_members", func() float64 { return float64(groupMembers.Load()) })
}

// SetGroups publishes the number of groups per state (empty, reconciling,
// stable) and of members.
func SetGroups(byState [3]int, members int) {
	for i, n := range byState {
		groupsByState[i].Store(int64(n))
	}
	groupMembers.Store(int64(members))
}

// GroupCounts adds to the coordinator's counters.
func GroupCounts(rebalances, commits, fenced, expired uint64) {
	groupRebalances.AddInt64(int64(rebalances))
	groupCommits.AddInt64(int64(commits))
	groupFenced.AddInt64(int64(fenced))
	groupExpired.AddInt64(int64(expired))
}

// ObserveGroupAppend records one group-commit append (write + fdatasync)
// of the internal topic.
func ObserveGroupAppend(d time.Duration) { groupAppendSeconds.Update(d.Seconds()) }
