package main

// ringmq groups [list] | describe G | delete G | reset G --topic T --to X [--dry-run].

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

const groupsUsage = "ringmq groups [list] | describe GROUP | delete GROUP | reset GROUP --topic T --to earliest|latest|OFFSET|@TIME [--dry-run] [--server HOST:PORT]"

var groupsSubcommands = []struct {
	name string
	run  func([]string) error
}{
	{"list", groupsList}, {"describe", groupsDescribe}, {"delete", groupsDelete}, {"reset", groupsReset},
}

func cmdGroups(args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") && args[0] != "-h" && args[0] != "--help" {
		return quietUsage(groupsList(args))
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Println("usage:", groupsUsage)
		return nil
	}
	for _, sub := range groupsSubcommands {
		if sub.name == args[0] {
			return quietUsage(sub.run(args[1:]))
		}
	}
	if proto.ValidName([]byte(args[0])) {
		// ringmq groups GROUP: the older spelling of describe.
		return quietUsage(groupsDescribe(args))
	}
	return fmt.Errorf("groups: unknown subcommand %q; usage: %s", args[0], groupsUsage)
}

// groupArg checks a GROUP argument the way the server does.
func groupArg(cmd string, pos []string) (string, error) {
	g := pos[0]
	if !proto.ValidName([]byte(g)) {
		return "", fmt.Errorf("groups %s: invalid group name %q (1-%d of [A-Za-z0-9._-])", cmd, g, proto.MaxNameLen)
	}
	return g, nil
}

func groupsList(args []string) error {
	fs := newFlagSet("groups list", "ringmq groups [list] [--server HOST:PORT]")
	server := fs.serverFlag()
	if _, err := fs.parse(args, 0, 0); err != nil {
		return err
	}
	return withAdmin(*server, func(ctx context.Context, a *client.Admin) error {
		groups, err := a.ListGroups(ctx, "")
		if err != nil {
			return describeErr("groups", err)
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "GROUP\tTYPE\tSTATE\tMEMBERS\tPARTITIONS\tLAG")
		for _, g := range groups {
			var lag uint64
			for _, p := range g.Partitions {
				lag += p.Lag
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\n", g.Name, g.Type, g.State, g.Members, len(g.Partitions), lag)
		}
		return tw.Flush()
	})
}

func groupsDescribe(args []string) error {
	fs := newFlagSet("groups describe", "ringmq groups describe GROUP [--server HOST:PORT]")
	server := fs.serverFlag()
	pos, err := fs.parse(args, 1, 1)
	if err != nil {
		return err
	}
	g, err := groupArg("describe", pos)
	if err != nil {
		return err
	}
	return withAdmin(*server, func(ctx context.Context, a *client.Admin) error {
		d, err := a.DescribeGroup(ctx, g)
		if err != nil {
			return describeErr(fmt.Sprintf("group %q", g), err)
		}
		printGroup(d)
		if d.Type.Shared() {
			ss, err := a.DescribeShares(ctx, g)
			if err != nil {
				return describeErr(fmt.Sprintf("group %q", g), err)
			}
			printShares(ss)
		}
		return nil
	})
}

// printShares prints a shared group's ack state per partition: the floor
// (every offset below is acked), records in flight (locked by a member),
// waiting for redelivery, redeliveries and dead letters.
func printShares(ss []client.ShareState) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nTOPIC\tPARTITION\tACK_FLOOR\tLOG_END\tIN_FLIGHT\tWAITING\tREDELIVERIES\tDEAD_LETTERS")
	for _, s := range ss {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", s.Topic, s.Partition, s.Floor, s.LogEnd, s.InFlight,
			s.Waiting, s.Redeliveries, s.DeadLetters)
	}
	tw.Flush()
}

func printGroup(d *client.GroupDescription) {
	fmt.Printf("group %s: type %s, state %s, epoch %d, %d members\n", d.Name, d.Type, d.State, d.Epoch, len(d.Members))
	owner := map[client.TopicPartition]string{}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	if len(d.Members) > 0 {
		fmt.Fprintln(tw, "\nMEMBER\tCLIENT\tADDRESS\tASSIGNED\tREVOKING\tPENDING")
		for _, m := range d.Members {
			for _, tp := range m.Assigned {
				owner[tp] = m.ID
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.ClientID, m.Addr,
				partList(m.Assigned), partList(m.Revoking), partList(m.Pending))
		}
		tw.Flush()
	}
	ps := slices.Clone(d.Partitions)
	slices.SortFunc(ps, func(x, y client.GroupPartition) int {
		return cmp.Or(strings.Compare(x.Topic, y.Topic), cmp.Compare(x.Partition, y.Partition))
	})
	if len(ps) == 0 && d.Type.Shared() {
		return // acked per record: the ack state follows
	}
	fmt.Fprintln(tw, "\nTOPIC\tPARTITION\tCOMMITTED\tLOG_END\tLAG\tMEMBER")
	for _, p := range ps {
		m := owner[client.TopicPartition{Topic: p.Topic, Partition: p.Partition}]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\n", p.Topic, p.Partition, p.Committed, p.LogEnd, p.Lag, cmp.Or(m, "-"))
	}
	tw.Flush()
}

// partList prints partitions as topic/0,1,2 per topic, "-" for none.
func partList(tps []client.TopicPartition) string {
	if len(tps) == 0 {
		return "-"
	}
	var b strings.Builder
	for i, tp := range tps {
		switch {
		case i == 0:
			fmt.Fprintf(&b, "%s/%d", tp.Topic, tp.Partition)
		case tps[i-1].Topic != tp.Topic:
			fmt.Fprintf(&b, " %s/%d", tp.Topic, tp.Partition)
		default:
			fmt.Fprintf(&b, ",%d", tp.Partition)
		}
	}
	return b.String()
}

func groupsDelete(args []string) error {
	fs := newFlagSet("groups delete", "ringmq groups delete GROUP [--server HOST:PORT]")
	server := fs.serverFlag()
	pos, err := fs.parse(args, 1, 1)
	if err != nil {
		return err
	}
	g, err := groupArg("delete", pos)
	if err != nil {
		return err
	}
	return withAdmin(*server, func(ctx context.Context, a *client.Admin) error {
		if err := a.DeleteGroup(ctx, g); err != nil {
			return describeErr(fmt.Sprintf("delete group %q", g), err)
		}
		fmt.Printf("deleted group %s\n", g)
		return nil
	})
}

func groupsReset(args []string) error {
	fs := newFlagSet("groups reset", "ringmq groups reset GROUP --topic T --to earliest|latest|OFFSET|@TIME [--dry-run] [--server HOST:PORT]")
	server := fs.serverFlag()
	topic := fs.String("topic", "", "`TOPIC` whose positions to reset (every partition)")
	to := fs.String("to", "", "new position `WHERE`: earliest, latest, an offset, or @TIME (RFC 3339 or Unix milliseconds: the first record at or after it); clamped to each log")
	dryRun := fs.Bool("dry-run", false, "print the plan without changing anything")
	pos, err := fs.parse(args, 1, 1)
	if err != nil {
		return err
	}
	g, err := groupArg("reset", pos)
	if err != nil {
		return err
	}
	if *topic == "" || *to == "" {
		return fmt.Errorf("groups reset: --topic and --to are required; usage: ringmq groups reset GROUP --topic T --to earliest|latest|OFFSET|@TIME [--dry-run]")
	}
	return withAdmin(*server, func(ctx context.Context, a *client.Admin) error {
		plan, err := a.ResetOffsets(ctx, g, *topic, *to, *dryRun)
		if err != nil {
			return describeErr(fmt.Sprintf("reset group %q", g), err)
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TOPIC\tPARTITION\tFROM\tTO")
		for _, ch := range plan {
			from := "-"
			if ch.Had {
				from = fmt.Sprint(ch.From)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", ch.Topic, ch.Partition, from, ch.To)
		}
		tw.Flush()
		if *dryRun {
			fmt.Println("dry run: nothing changed")
		}
		return nil
	})
}
