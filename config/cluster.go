package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// ClusterConfig is the [cluster] table: this node's id, the cluster's
// nodes and the controller's timeouts. With no peers the node is a
// one-node cluster: its only peer is itself at server.listen (see
// Nodes).
type ClusterConfig struct {
	NodeID              uint64        `toml:"node_id"`
	Peers               []Peer        `toml:"peers"` // "ID@HOST:PORT" each; empty: a one-node cluster
	ReplicationFactor   int           `toml:"replication_factor"`
	MinInsyncReplicas   int           `toml:"min_insync_replicas"`
	SessionTimeout      time.Duration `toml:"session_timeout"`
	ElectionTimeout     time.Duration `toml:"election_timeout"`
	ReplicaLagTime      time.Duration `toml:"replica_lag_time"`
	AutoPreferredLeader bool          `toml:"auto_preferred_leader"`
}

// Peer is one node of the cluster: its id (the broker id and Raft id) and
// its client address.
type Peer struct {
	ID   uint64
	Addr string // host:port
}

func (p Peer) String() string { return strconv.FormatUint(p.ID, 10) + "@" + p.Addr }

// ControllerTick is the controller driver's clock period; the timeouts
// of [cluster] are whole numbers of ticks.
const ControllerTick = 100 * time.Millisecond

// Limits on [cluster] settings.
const (
	minElectionTimeout = 3 * ControllerTick
	maxElectionTimeout = time.Minute
	maxSessionTimeout  = 10 * time.Minute
	maxReplication     = 16
	minReplicaLagTime  = 100 * time.Millisecond
	maxReplicaLagTime  = 10 * time.Minute
)

// ParsePeer parses "ID@HOST:PORT": ID at least 1, a host and a port from
// 1 to 65535.
func ParsePeer(s string) (Peer, error) {
	id, addr, ok := strings.Cut(s, "@")
	if !ok {
		return Peer{}, fmt.Errorf("want ID@HOST:PORT, such as \"1@127.0.0.1:9400\"")
	}
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil || n == 0 {
		return Peer{}, fmt.Errorf("node id %q: want an integer of at least 1", id)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return Peer{}, fmt.Errorf("address %q: want HOST:PORT", addr)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return Peer{}, fmt.Errorf("address %q: want a port from 1 to 65535", addr)
	}
	return Peer{ID: n, Addr: addr}, nil
}

// ParsePeers parses a comma-separated list of ID@HOST:PORT (the --peers
// flag). Duplicates are Validate's job.
func ParsePeers(s string) ([]Peer, error) {
	var peers []Peer
	for _, f := range strings.Split(s, ",") {
		p, err := ParsePeer(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%q: %w", f, err)
		}
		peers = append(peers, p)
	}
	return peers, nil
}

// setPeers stores a TOML array of "ID@HOST:PORT" strings.
func setPeers(key string, p *[]Peer, v any) error {
	const want = `want an array of "ID@HOST:PORT" strings`
	list, ok := v.([]any)
	if !ok {
		return invalid(key, v, want)
	}
	peers := make([]Peer, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			return invalid(key, v, want)
		}
		peer, err := ParsePeer(s)
		if err != nil {
			return invalid(key, s, err.Error())
		}
		peers = append(peers, peer)
	}
	if len(peers) == 0 {
		peers = nil // as in Default
	}
	*p = peers
	return nil
}

// Nodes returns the cluster's nodes: Peers, or this node alone at listen
// when Peers is empty (a one-node cluster).
func (c ClusterConfig) Nodes(listen string) []Peer {
	if len(c.Peers) == 0 {
		return []Peer{{ID: c.NodeID, Addr: listen}}
	}
	return c.Peers
}

// ElectionTicks and SessionTicks are the timeouts in ControllerTick units.
func (c ClusterConfig) ElectionTicks() int { return int(c.ElectionTimeout / ControllerTick) }

// SessionTicks is the broker session timeout in ControllerTick units.
func (c ClusterConfig) SessionTicks() uint64 { return uint64(c.SessionTimeout / ControllerTick) }

func (c ClusterConfig) validate(ck *checker) {
	ck.check(c.NodeID >= 1, "cluster.node_id", c.NodeID, "must be at least 1")
	ids := map[uint64]bool{}
	addrs := map[string]bool{}
	for _, p := range c.Peers {
		ck.check(!ids[p.ID], "cluster.peers", p.String(), fmt.Sprintf("node id %d appears twice", p.ID))
		ck.check(!addrs[p.Addr], "cluster.peers", p.String(), fmt.Sprintf("address %s appears twice", p.Addr))
		ids[p.ID], addrs[p.Addr] = true, true
	}
	ck.check(len(c.Peers) == 0 || ids[c.NodeID], "cluster.node_id", c.NodeID,
		"must be one of the ids in cluster.peers")
	nodes := max(len(c.Peers), 1)
	ck.check(between(int64(c.ReplicationFactor), 1, int64(min(nodes, maxReplication))),
		"cluster.replication_factor", c.ReplicationFactor,
		fmt.Sprintf("must be from 1 to the number of nodes (%d)", min(nodes, maxReplication)))
	ck.check(between(int64(c.MinInsyncReplicas), 1, int64(c.ReplicationFactor)),
		"cluster.min_insync_replicas", c.MinInsyncReplicas,
		fmt.Sprintf("must be from 1 to cluster.replication_factor (%d)", c.ReplicationFactor))
	ck.check(c.ElectionTimeout >= minElectionTimeout && c.ElectionTimeout <= maxElectionTimeout &&
		c.ElectionTimeout%ControllerTick == 0, "cluster.election_timeout", c.ElectionTimeout,
		fmt.Sprintf("must be a multiple of %v from %v to %v", ControllerTick, minElectionTimeout, maxElectionTimeout))
	ck.check(c.SessionTimeout > c.ElectionTimeout && c.SessionTimeout <= maxSessionTimeout &&
		c.SessionTimeout%ControllerTick == 0, "cluster.session_timeout", c.SessionTimeout,
		fmt.Sprintf("must be a multiple of %v above cluster.election_timeout (%v), at most %v",
			ControllerTick, c.ElectionTimeout, maxSessionTimeout))
	ck.check(c.ReplicaLagTime >= minReplicaLagTime && c.ReplicaLagTime <= maxReplicaLagTime,
		"cluster.replica_lag_time", c.ReplicaLagTime, fmt.Sprintf("must be from %v to %v", minReplicaLagTime, maxReplicaLagTime))
}
