package stats

// Replication: bytes followers appended, truncations of followers' logs,
// and the ISR changes this node's partition leaders got committed.
var (
	replicatedBytes     = set.NewCounter("ringmq_replicated_bytes_total")
	followerTruncations = set.NewCounter("ringmq_follower_truncations_total")
	isrShrinks          = set.NewCounter("ringmq_isr_shrinks_total")
	isrExpands          = set.NewCounter("ringmq_isr_expands_total")
)

// Replicated counts n bytes of batches a follower appended.
func Replicated(n int) { replicatedBytes.Add(n) }

// FollowerTruncated counts a follower's truncation of its log.
func FollowerTruncated() { followerTruncations.Inc() }

// ISRShrunk counts an ISR shrink a leader here got committed.
func ISRShrunk() { isrShrinks.Inc() }

// ISRExpanded counts an ISR expand a leader here got committed.
func ISRExpanded() { isrExpands.Inc() }
