package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ringmq/ringmq/config"
)

// TestClusterExampleConfigs: the three configs make cluster starts are
// valid, list the same peers, and each node listens where the peers say,
// on ports of its own.
func TestClusterExampleConfigs(t *testing.T) {
	var peers []config.Peer
	seen := map[string]int{}
	for id := 1; id <= 3; id++ {
		path := filepath.Join("..", "examples", "cluster", fmt.Sprintf("node%d.toml", id))
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if cfg.Cluster.NodeID != uint64(id) {
			t.Errorf("%s: node_id %d, want %d", path, cfg.Cluster.NodeID, id)
		}
		if peers == nil {
			peers = cfg.Cluster.Peers
		} else if !slices.Equal(peers, cfg.Cluster.Peers) {
			t.Errorf("%s: peers %v, node1.toml has %v", path, cfg.Cluster.Peers, peers)
		}
		i := slices.IndexFunc(cfg.Cluster.Peers, func(p config.Peer) bool { return p.ID == uint64(id) })
		if i < 0 || cfg.Cluster.Peers[i].Addr != cfg.Server.Listen {
			t.Errorf("%s: listens on %s, but peers say %v", path, cfg.Server.Listen, cfg.Cluster.Peers)
		}
		if want := fmt.Sprintf("./data/node%d", id); cfg.Storage.DataDir != want {
			t.Errorf("%s: data_dir %q, want %q", path, cfg.Storage.DataDir, want)
		}
		for _, a := range []string{cfg.Server.Listen, cfg.Server.MetricsListen} {
			if other, ok := seen[a]; ok {
				t.Errorf("%s: %s is node %d's too", path, a, other)
			}
			seen[a] = id
		}
	}
	if len(peers) != 3 {
		t.Errorf("peers %v: want 3 nodes", peers)
	}
}

// TestMakeCluster: make cluster starts one server per example config.
func TestMakeCluster(t *testing.T) {
	mk, err := exec.LookPath("make")
	if err != nil {
		t.Skip("no make")
	}
	out, err := exec.Command(mk, "-n", "--no-print-directory", "-C", "..", "cluster").Output()
	if err != nil {
		t.Fatalf("make -n cluster: %v", err)
	}
	s := string(out)
	for _, want := range []string{"for n in 1 2 3", "bin/ringmq serve --config examples/cluster/node$n.toml &", "mkdir -p data/node1 data/node2 data/node3"} {
		if !strings.Contains(s, want) {
			t.Errorf("make -n cluster lacks %q:\n%s", want, s)
		}
	}
}
