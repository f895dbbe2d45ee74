package stats

import "sync/atomic"

// The controller as this node sees it: its leader, Raft term and commit
// index, the alive brokers, and the partitions without a leader or with
// fewer in-sync replicas than replicas.
var (
	controllerLeader    atomic.Uint64
	controllerTerm      atomic.Uint64
	controllerCommit    atomic.Uint64
	brokersAlive        atomic.Int64
	partitionsOffline   atomic.Int64
	partitionsUnderRepl atomic.Int64
	controllerElections = set.NewCounter("ringmq_controller_leader_elections_total")
)

func init() {
	set.NewGauge("ringmq_controller_leader", func() float64 { return float64(controllerLeader.Load()) })
	set.NewGauge("ringmq_controller_term", func() float64 { return float64(controllerTerm.Load()) })
	set.NewGauge("ringmq_controller_commit_index", func() float64 { return float64(controllerCommit.Load()) })
	set.NewGauge("ringmq_brokers_alive", func() float64 { return float64(brokersAlive.Load()) })
	set.NewGauge("ringmq_partitions_offline", func() float64 { return float64(partitionsOffline.Load()) })
	set.NewGauge("ringmq_partitions_under_replicated", func() float64 { return float64(partitionsUnderRepl.Load()) })
}

// SetController publishes the controller's state as this node sees it.
func SetController(leader, term, commit uint64, alive, offline, underReplicated int) {
	controllerLeader.Store(leader)
	controllerTerm.Store(term)
	controllerCommit.Store(commit)
	brokersAlive.Store(int64(alive))
	partitionsOffline.Store(int64(offline))
	partitionsUnderRepl.Store(int64(underReplicated))
}

// ControllerElection counts a controller leader this node had not seen
// lead before.
func ControllerElection() { controllerElections.Inc() }
