package config

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestParseCluster(t *testing.T) {
	const file = `
[cluster]
node_id = 2
peers = ["1@127.0.0.1:9400", "2@127.0.0.1:9410", "3@[::1]:9420"]
replication_factor = 3
min_insync_replicas = 2
session_timeout = "6s"
election_timeout = "500ms"
auto_preferred_leader = false
`
	got, err := Parse([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	want := Default().Cluster
	want.NodeID = 2
	want.Peers = []Peer{{1, "127.0.0.1:9400"}, {2, "127.0.0.1:9410"}, {3, "[::1]:9420"}}
	want.ReplicationFactor, want.MinInsyncReplicas = 3, 2
	want.SessionTimeout, want.ElectionTimeout = 6*time.Second, 500*time.Millisecond
	want.AutoPreferredLeader = false
	if !reflect.DeepEqual(got.Cluster, want) {
		t.Fatalf("Parse:\n got %+v\nwant %+v", got.Cluster, want)
	}
	if got.Cluster.ElectionTicks() != 5 || got.Cluster.SessionTicks() != 60 {
		t.Errorf("ticks: election %d session %d, want 5 and 60",
			got.Cluster.ElectionTicks(), got.Cluster.SessionTicks())
	}
	if n := got.Cluster.Nodes("ignored:1"); !reflect.DeepEqual(n, want.Peers) {
		t.Errorf("Nodes = %v, want the peers", n)
	}
}

// Without [cluster] the node is a one-node cluster of itself at
// server.listen.
func TestDefaultIsOneNodeCluster(t *testing.T) {
	c := Default()
	nodes := c.Cluster.Nodes(c.Server.Listen)
	if want := []Peer{{1, "127.0.0.1:9400"}}; !reflect.DeepEqual(nodes, want) {
		t.Fatalf("Nodes = %v, want %v", nodes, want)
	}
}

func TestParseClusterErrors(t *testing.T) {
	three := `peers = ["1@h:1", "2@h:2", "3@h:3"]` + "\n"
	tests := []struct{ file, want string }{
		{"node_id = 0", `cluster.node_id = 0: must be at least 1`},
		{"node_id = -1", `cluster.node_id = -1: want an integer of at least 0`},
		{`peers = "1@h:1"`, `cluster.peers = "1@h:1": want an array of "ID@HOST:PORT" strings`},
		{`peers = [1]`, `cluster.peers = [...]: want an array of "ID@HOST:PORT" strings`},
		{`peers = ["h:1"]`, `cluster.peers = "h:1": want ID@HOST:PORT, such as "1@127.0.0.1:9400"`},
		{`peers = ["0@h:1"]`, `cluster.peers = "0@h:1": node id "0": want an integer of at least 1`},
		{`peers = ["x@h:1"]`, `cluster.peers = "x@h:1": node id "x": want an integer of at least 1`},
		{`peers = ["1@h"]`, `cluster.peers = "1@h": address "h": want HOST:PORT`},
		{`peers = ["1@:9400"]`, `cluster.peers = "1@:9400": address ":9400": want HOST:PORT`},
		{`peers = ["1@h:0"]`, `cluster.peers = "1@h:0": address "h:0": want a port from 1 to 65535`},
		{`peers = ["1@h:70000"]`, `cluster.peers = "1@h:70000": address "h:70000": want a port from 1 to 65535`},
		{`peers = ["1@h:1", "1@h:2"]`, `cluster.peers = "1@h:2": node id 1 appears twice`},
		{`peers = ["1@h:1", "2@h:1"]`, `cluster.peers = "2@h:1": address h:1 appears twice`},
		{"node_id = 4\n" + three, `cluster.node_id = 4: must be one of the ids in cluster.peers`},
		{"replication_factor = 2", `cluster.replication_factor = 2: must be from 1 to the number of nodes (1)`},
		{three + "replication_factor = 4", `cluster.replication_factor = 4: must be from 1 to the number of nodes (3)`},
		{"replication_factor = 0", `cluster.replication_factor = 0: must be from 1 to the number of nodes (1)`},
		{three + "replication_factor = 2\nmin_insync_replicas = 3", `cluster.min_insync_replicas = 3: must be from 1 to cluster.replication_factor (2)`},
		{"min_insync_replicas = 0", `cluster.min_insync_replicas = 0: must be from 1 to cluster.replication_factor (1)`},
		{`election_timeout = "200ms"`, `cluster.election_timeout = "200ms": must be a multiple of 100ms from 300ms to 1m0s`},
		{`election_timeout = "450ms"`, `cluster.election_timeout = "450ms": must be a multiple of 100ms from 300ms to 1m0s`},
		{`session_timeout = "1s"`, `cluster.session_timeout = "1s": must be a multiple of 100ms above cluster.election_timeout (1s), at most 10m0s`},
		{`session_timeout = "11m"`, `cluster.session_timeout = "11m0s": must be a multiple of 100ms above cluster.election_timeout (1s), at most 10m0s`},
		{"auto_preferred_leader = 1", `cluster.auto_preferred_leader = 1: want true or false`},
	}
	for _, tt := range tests {
		file := "[cluster]\n" + tt.file
		_, err := Parse([]byte(file))
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want %q", file, tt.want)
			continue
		}
		if err.Error() != tt.want || !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q):\n got %q\nwant %q (ErrInvalid)", file, err, tt.want)
		}
	}
}

func TestParsePeers(t *testing.T) {
	got, err := ParsePeers("1@127.0.0.1:9400, 2@127.0.0.1:9410")
	if want := []Peer{{1, "127.0.0.1:9400"}, {2, "127.0.0.1:9410"}}; err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ParsePeers = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"", "1@h:1,", "1@h:1,,2@h:2", "1@h"} {
		if p, err := ParsePeers(bad); err == nil {
			t.Errorf("ParsePeers(%q) = %v, want an error", bad, p)
		}
	}
}
