package main

// ringmq groups [GROUP]: committed offsets and lag per topic and partition.

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/ringmq/ringmq/client"
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
	return withAdmin(*server, func(ctx context.Context, a *client.Admin) error {
		groups, err := a.ListGroups(ctx, group)
		if err != nil {
			what := "groups"
			if group != "" {
				what = fmt.Sprintf("groups %q", group)
			}
			return describeErr(what, err)
		}
		return printGroups(groups)
	})
}

func printGroups(groups []client.GroupInfo) error {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tTOPIC\tPARTITION\tCOMMITTED\tLOG_END\tLAG")
	for _, g := range groups {
		ps := slices.Clone(g.Partitions)
		slices.SortFunc(ps, func(x, y client.GroupPartition) int {
			return cmp.Or(strings.Compare(x.Topic, y.Topic), cmp.Compare(x.Partition, y.Partition))
		})
		for _, p := range ps {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\n", g.Name, p.Topic, p.Partition, p.Committed, p.LogEnd, p.Lag)
		}
	}
	return tw.Flush()
}
