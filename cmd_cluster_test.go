package main

import (
	"bytes"
	"encoding/json"
	"net"
	"syscall"
	"testing"

	"github.com/ringmq/ringmq/client"
)

func sampleStatus() *client.ClusterStatus {
	return &client.ClusterStatus{NodeID: 2, ControllerID: 1, Term: 3, CommitIndex: 42, AppliedIndex: 42,
		Nodes: []client.NodeStatus{
			{ID: 1, Addr: "127.0.0.1:9400", Alive: true, BrokerEpoch: 7},
			{ID: 2, Addr: "127.0.0.1:9410", Alive: true, BrokerEpoch: 9},
			{ID: 3, Addr: "127.0.0.1:9420", Alive: false, BrokerEpoch: 11},
		},
		Topics: 1, Partitions: 3,
		Offline: []client.PartitionStatus{{Topic: "orders", Partition: 2, LeaderEpoch: 4, Replicas: []uint32{3}}},
	}
}

func TestPrintClusterStatus(t *testing.T) {
	var b bytes.Buffer
	if err := printClusterStatus(&b, sampleStatus()); err != nil {
		t.Fatal(err)
	}
	want := `controller: node 1 (term 3, commit index 42); answered by node 2
NODE  ADDRESS         ALIVE  BROKER_EPOCH  CONTROLLER
1     127.0.0.1:9400  yes    7             leader
2     127.0.0.1:9410  yes    9             follower
3     127.0.0.1:9420  no     11            follower
topics 1, partitions 3: 1 offline, 0 under-replicated
offline (no leader):
TOPIC   PARTITION  LEADER  LEADER_EPOCH  REPLICAS  ISR
orders  2          none    4             3         -
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestPrintClusterJSON(t *testing.T) {
	var b bytes.Buffer
	if err := printClusterJSON(&b, sampleStatus()); err != nil {
		t.Fatal(err)
	}
	var got clusterJSON
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, b.String())
	}
	if got.Controller != 1 || got.Term != 3 || got.CommitIndex != 42 || len(got.Nodes) != 3 || got.Nodes[2].Alive ||
		len(got.Offline) != 1 || got.Offline[0].Leader != 0 || got.UnderReplicated == nil || got.Offline[0].ISR == nil {
		t.Errorf("json: %s", b.String())
	}
}

// TestReachabilityPerAddress: in a cluster, reaching another node does not
// mean that a node that was down is back.
func TestReachabilityPerAddress(t *testing.T) {
	var out bytes.Buffer
	r := &reachability{w: &out}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	r.onDial("h:1", refused)
	r.onDial("h:2", nil)
	r.onDial("h:2", refused)
	r.onDial("h:1", nil)
	want := "ringmq: cannot connect to h:1: connection refused (is ringmq serve running there?); retrying\n" +
		"ringmq: cannot connect to h:2: connection refused (is ringmq serve running there?); retrying\n" +
		"ringmq: connected to h:1 again\n"
	if out.String() != want {
		t.Fatalf("got %q\nwant %q", out.String(), want)
	}
}
