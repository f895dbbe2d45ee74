package driver

import (
	"path/filepath"

	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/controller"
)

// FromConfig sets up a driver from the [cluster] table: the node's id and
// timeouts, the voters (every node; this node alone without peers), and
// <dataDir>/controller. The caller adds the transport. listen is this
// node's client address (a one-node cluster's only peer).
func FromConfig(cc config.ClusterConfig, listen, dataDir string) Config {
	var voters []uint64
	for _, p := range cc.Nodes(listen) {
		voters = append(voters, p.ID)
	}
	return Config{
		Node: controller.Config{
			ID:                  cc.NodeID,
			ElectionTicks:       cc.ElectionTicks(),
			HeartbeatTicks:      1,
			SessionTicks:        cc.SessionTicks(),
			AutoPreferredLeader: cc.AutoPreferredLeader,
		},
		Voters: voters,
		Dir:    filepath.Join(dataDir, "controller"),
		Tick:   config.ControllerTick,
	}
}
