package main

// ringmq groups [GROUP]: committed offsets and lag per topic and partition.

import (
	"context"
	"fmt"
	"os"
	"sort"
	"text/tabwriter"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

func cmdGroups(args []string) error {
	fs := newFlagSet("groups", "ringmq groups [GROUP] [--server HOST:PORT]")
	server := fs.serverFlag()
	pos, err := fs.parse(args, 0, 1)
	if err != nil {
		return quietUsage(err)
	}
	var group string
	if len(pos) == 1 {
		group = pos[0]
	}
	return withConn(*server, func(ctx context.Context, c *client.Conn) error {
		resp, err := c.ListGroups(ctx, &proto.ListGroupsRequest{Group: group})
		if err != nil {
			what := "groups"
			if group != "" {
				what = fmt.Sprintf("groups %q", group)
			}
			return describeErr(what, err)
		}
		if group != "" && len(resp.Groups) == 0 {
			return fmt.Errorf("groups %q: no such group (it has no committed offsets)", group)
		}
		return printGroups(resp.Groups)
	})
}

func printGroups(groups []proto.GroupInfo) error {
	sort.Slice(groups, func(i, j int) bool { return groups[i].Name < groups[j].Name })
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tTOPIC\tPARTITION\tCOMMITTED\tLOG_END\tLAG")
	for _, g := range groups {
		sort.Slice(g.Topics, func(i, j int) bool { return g.Topics[i].Name < g.Topics[j].Name })
		for _, t := range g.Topics {
			for _, p := range t.Partitions {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\n", g.Name, t.Name, p.Partition, p.Committed, p.LogEnd, p.Lag)
			}
		}
	}
	return tw.Flush()
}
