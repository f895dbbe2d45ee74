package main

// ringmq cluster status: the cluster's nodes, controller leader and the
// partitions that are offline or under-replicated.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

const clusterUsage = "ringmq cluster status [--json] [--server HOST:PORT,...] (ringmq cluster status -h for its flags)"

// clusterSubcommands in the order help and completion list them.
var clusterSubcommands = []struct {
	name string
	run  func([]string) error
}{
	{"status", clusterStatus},
}

func clusterSubcommandNames() []string {
	names := make([]string, len(clusterSubcommands))
	for i, s := range clusterSubcommands {
		names[i] = s.name
	}
	return names
}

func cmdCluster(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("cluster: missing subcommand; usage: %s", clusterUsage)
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Println("usage:", clusterUsage)
		return nil
	}
	for _, sub := range clusterSubcommands {
		if sub.name == args[0] {
			return quietUsage(sub.run(args[1:]))
		}
	}
	if m := closest(args[0], clusterSubcommandNames()); m != "" {
		return fmt.Errorf("cluster: unknown subcommand %q; did you mean %q? usage: %s", args[0], m, clusterUsage)
	}
	return fmt.Errorf("cluster: unknown subcommand %q; usage: %s", args[0], clusterUsage)
}

func clusterStatus(args []string) error {
	fs := newFlagSet("cluster status", "ringmq cluster status [--json] [--server HOST:PORT,...]")
	server := fs.serverFlag()
	asJSON := fs.Bool("json", false, "print one JSON object instead of tables")
	if _, err := fs.parse(args, 0, 0); err != nil {
		return err
	}
	return withAdmin(*server, func(ctx context.Context, a *client.Admin) error {
		st, err := a.ClusterStatus(ctx)
		if err != nil {
			return describeErr("cluster status", err)
		}
		if *asJSON {
			return printClusterJSON(os.Stdout, st)
		}
		return printClusterStatus(os.Stdout, st)
	})
}

// nodeName is "node N", or "none" for proto.NoNode.
func nodeName(id uint32) string {
	if id == proto.NoNode {
		return "none"
	}
	return "node " + strconv.FormatUint(uint64(id), 10)
}

// nodeList is "1,2,3" ("-" for none).
func nodeList(ids []uint32) string {
	if len(ids) == 0 {
		return "-"
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatUint(uint64(id), 10)
	}
	return strings.Join(s, ",")
}

func printClusterStatus(w io.Writer, st *client.ClusterStatus) error {
	fmt.Fprintf(w, "controller: %s (term %d, commit index %d); answered by %s\n",
		nodeName(st.ControllerID), st.Term, st.CommitIndex, nodeName(st.NodeID))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDRESS\tALIVE\tBROKER_EPOCH\tCONTROLLER")
	for _, n := range st.Nodes {
		alive, role := "no", "-"
		if n.Alive {
			alive = "yes"
		}
		switch {
		case n.ID == st.ControllerID:
			role = "leader"
		case st.ControllerID != 0:
			role = "follower"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\n", n.ID, n.Addr, alive, n.BrokerEpoch, role)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "topics %d, partitions %d: %d offline, %d under-replicated\n",
		st.Topics, st.Partitions, len(st.Offline), len(st.UnderReplicated))
	for _, group := range []struct {
		name  string
		parts []client.PartitionStatus
	}{{"offline (no leader)", st.Offline}, {"under-replicated", st.UnderReplicated}} {
		if len(group.parts) == 0 {
			continue
		}
		fmt.Fprintf(w, "%s:\n", group.name)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TOPIC\tPARTITION\tLEADER\tLEADER_EPOCH\tREPLICAS\tISR")
		for _, p := range group.parts {
			leader := "none"
			if p.Leader != proto.NoNode {
				leader = strconv.FormatUint(uint64(p.Leader), 10)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\n", p.Topic, p.Partition, leader, p.LeaderEpoch, nodeList(p.Replicas), nodeList(p.ISR))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// clusterJSON is the --json output; node ids are numbers (0: none).
type clusterJSON struct {
	AnsweredBy      uint32          `json:"answered_by"`
	Controller      uint32          `json:"controller"`
	Term            uint64          `json:"term"`
	CommitIndex     uint64          `json:"commit_index"`
	AppliedIndex    uint64          `json:"applied_index"`
	Nodes           []nodeJSON      `json:"nodes"`
	Topics          uint32          `json:"topics"`
	Partitions      uint32          `json:"partitions"`
	Offline         []partitionJSON `json:"offline"`
	UnderReplicated []partitionJSON `json:"under_replicated"`
}

type nodeJSON struct {
	ID          uint32 `json:"id"`
	Addr        string `json:"address"`
	Alive       bool   `json:"alive"`
	BrokerEpoch uint64 `json:"broker_epoch"`
}

type partitionJSON struct {
	Topic       string   `json:"topic"`
	Partition   uint32   `json:"partition"`
	Leader      uint32   `json:"leader"`
	LeaderEpoch uint32   `json:"leader_epoch"`
	Replicas    []uint32 `json:"replicas"`
	ISR         []uint32 `json:"isr"`
}

func printClusterJSON(w io.Writer, st *client.ClusterStatus) error {
	out := clusterJSON{AnsweredBy: st.NodeID, Controller: st.ControllerID, Term: st.Term, CommitIndex: st.CommitIndex,
		AppliedIndex: st.AppliedIndex, Topics: st.Topics, Partitions: st.Partitions,
		Nodes: []nodeJSON{}, Offline: partitionsJSON(st.Offline), UnderReplicated: partitionsJSON(st.UnderReplicated)}
	for _, n := range st.Nodes {
		out.Nodes = append(out.Nodes, nodeJSON(n))
	}
	enc := json.NewEncoder(w)
	return enc.Encode(out)
}

func partitionsJSON(ps []client.PartitionStatus) []partitionJSON {
	out := []partitionJSON{}
	for _, p := range ps {
		j := partitionJSON(p)
		if j.Replicas == nil {
			j.Replicas = []uint32{}
		}
		if j.ISR == nil {
			j.ISR = []uint32{}
		}
		out = append(out, j)
	}
	return out
}
