package main

// ringmq topic create|list|describe|delete.

import (
	"context"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/proto"
)

const topicUsage = "ringmq topic create|list|describe|alter|add-partitions|delete ... (ringmq topic SUBCOMMAND -h for its flags)"

// topicSubcommands in the order help and completion list them.
var topicSubcommands = []struct {
	name string
	run  func([]string) error
}{
	{"create", topicCreate}, {"list", topicList}, {"describe", topicDescribe},
	{"alter", topicAlter}, {"add-partitions", topicAddPartitions}, {"delete", topicDelete},
}

func topicSubcommandNames() []string {
	names := make([]string, len(topicSubcommands))
	for i, s := range topicSubcommands {
		names[i] = s.name
	}
	return names
}

func cmdTopic(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("topic: missing subcommand; usage: %s", topicUsage)
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Println("usage:", topicUsage)
		return nil
	}
	for _, sub := range topicSubcommands {
		if sub.name == args[0] {
			return quietUsage(sub.run(args[1:]))
		}
	}
	if m := closest(args[0], topicSubcommandNames()); m != "" {
		return fmt.Errorf("topic: unknown subcommand %q; did you mean %q? usage: %s", args[0], m, topicUsage)
	}
	return fmt.Errorf("topic: unknown subcommand %q; usage: %s", args[0], topicUsage)
}

// configFlags collects repeated --config key=value flags (the last value
// of a key wins).
type configFlags map[string]string

func (c configFlags) String() string { return "" }

func (c configFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	c[k] = v
	return nil
}

// withAdmin runs fn with an Admin for server and a bounded context. A
// server that cannot be reached is reported as such, whatever fn was
// doing.
func withAdmin(server serverFlags, fn func(ctx context.Context, a *client.Admin) error) error {
	ctx, stop := signalContext()
	defer stop()
	opts, err := server.options("ringmq-cli")
	if err != nil {
		return err
	}
	a, err := client.NewAdmin(server.addr, opts)
	if err != nil {
		return err
	}
	defer a.Close()
	ctx, cancel := commandTimeout(ctx)
	defer cancel()
	err = fn(ctx, a)
	if isConnectErr(err) {
		return connectErr(server.addr, err)
	}
	return err
}

func topicCreate(args []string) error {
	fs := newFlagSet("topic create", "ringmq topic create NAME [-p N] [-r R] [-c key=value ...] [--server HOST:PORT,...]")
	server := fs.serverFlag()
	partitions := fs.Uint("partitions", 1, "number of partitions")
	fs.alias("p", "partitions")
	replicas := fs.Uint("replicas", 0, "replicas of each partition (`R`; default: the cluster's cluster.replication_factor)")
	fs.alias("r", "replicas")
	configs := configFlags{}
	fs.Var(configs, "config", "topic configuration override `key=value` ("+topicKeysHelp+"); repeatable")
	fs.alias("c", "config")
	pos, err := fs.parse(args, 1, 1)
	if err != nil {
		return err
	}
	name := pos[0]
	switch { // the server enforces its own maximum and names it
	case *partitions == 0:
		return fmt.Errorf("topic create: --partitions must be at least 1")
	case *partitions > math.MaxUint32:
		return fmt.Errorf("topic create: --partitions %d does not fit in 32 bits", *partitions)
	case *replicas > math.MaxUint16:
		return fmt.Errorf("topic create: --replicas %d: at most %d", *replicas, math.MaxUint16)
	}
	return withAdmin(*server, func(ctx context.Context, a *client.Admin) error {
		if err := a.CreateTopicReplicated(ctx, name, uint32(*partitions), uint16(*replicas), configs); err != nil {
			return describeErr(fmt.Sprintf("topic create %q", name), err)
		}
		fmt.Printf("created topic %q with %d partitions\n", name, *partitions)
		return nil
	})
}

// topicKeysHelp lists the topic configuration keys for flag help.
const topicKeysHelp = "retention_ms, retention_bytes, segment_bytes, flush; or Kafka's retention.ms, retention.bytes, segment.bytes"

func topicAlter(args []string) error {
	fs := newFlagSet("topic alter", "ringmq topic alter NAME -c key=value [-c key= ...] [--server HOST:PORT,...]")
	server := fs.serverFlag()
	configs := configFlags{}
	fs.Var(configs, "config", "set `key=value` ("+topicKeysHelp+"); key= (empty) restores the server default; repeatable")
	fs.alias("c", "config")
	pos, err := fs.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if len(configs) == 0 {
		return fmt.Errorf("topic alter: nothing to change; give --config key=value")
	}
	name := pos[0]
	return withAdmin(*server, func(ctx context.Context, a *client.Admin) error {
		if err := a.AlterTopic(ctx, name, configs); err != nil {
			return describeErr(fmt.Sprintf("topic alter %q", name), err)
		}
		t, err := a.DescribeTopic(ctx, name)
		if err != nil {
			return describeErr(fmt.Sprintf("topic describe %q", name), err)
		}
		fmt.Printf("altered topic %q:", name)
		for _, k := range slices.Sorted(maps.Keys(configs)) {
			canon, _ := config.TopicKey(k)
			fmt.Printf(" %s=%s", canon, t.Configs[canon])
		}
		fmt.Println()
		return nil
	})
}

func topicAddPartitions(args []string) error {
	fs := newFlagSet("topic add-partitions", "ringmq topic add-partitions NAME -n N [--server HOST:PORT,...]")
	server := fs.serverFlag()
	count := fs.Uint("count", 0, "number of partitions to add (`N`)")
	fs.alias("n", "count")
	pos, err := fs.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if *count == 0 || *count > math.MaxUint32 {
		return fmt.Errorf("topic add-partitions: --count must be from 1 to %d", uint32(math.MaxUint32))
	}
	name := pos[0]
	return withAdmin(*server, func(ctx context.Context, a *client.Admin) error {
		t, err := a.DescribeTopic(ctx, name)
		if err != nil {
			return describeErr(fmt.Sprintf("topic add-partitions %q", name), err)
		}
		was := uint64(len(t.Partitions))
		total := was + uint64(*count)
		if total > math.MaxUint32 {
			return fmt.Errorf("topic add-partitions %q: %d + %d partitions do not fit in 32 bits", name, was, *count)
		}
		if err := a.AddPartitions(ctx, name, uint32(total)); err != nil {
			return describeErr(fmt.Sprintf("topic add-partitions %q", name), err)
		}
		fmt.Printf("topic %q: %d partitions (was %d)\n", name, total, was)
		return nil
	})
}

func topicDelete(args []string) error {
	fs := newFlagSet("topic delete", "ringmq topic delete NAME [--server HOST:PORT,...]")
	server := fs.serverFlag()
	pos, err := fs.parse(args, 1, 1)
	if err != nil {
		return err
	}
	return withAdmin(*server, func(ctx context.Context, a *client.Admin) error {
		if err := a.DeleteTopic(ctx, pos[0]); err != nil {
			return describeErr(fmt.Sprintf("topic delete %q", pos[0]), err)
		}
		fmt.Printf("deleted topic %q\n", pos[0])
		return nil
	})
}

func topicList(args []string) error {
	fs := newFlagSet("topic list", "ringmq topic list [--internal] [--server HOST:PORT,...]")
	server := fs.serverFlag()
	internal := fs.Bool("internal", false, "list the broker's internal topics (__consumer_offsets) too")
	if _, err := fs.parse(args, 0, 0); err != nil {
		return err
	}
	return withAdmin(*server, func(ctx context.Context, a *client.Admin) error {
		list := a.ListTopics
		if *internal {
			list = a.ListAllTopics
		}
		topics, err := list(ctx)
		if err != nil {
			return describeErr("topic list", err)
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tMESSAGES")
		for _, t := range topics {
			var n uint64
			for _, p := range t.Partitions {
				n += p.LogEnd - p.LogStart
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\n", t.Name, len(t.Partitions), n)
		}
		return tw.Flush()
	})
}

func topicDescribe(args []string) error {
	fs := newFlagSet("topic describe", "ringmq topic describe NAME [--server HOST:PORT,...]")
	server := fs.serverFlag()
	pos, err := fs.parse(args, 1, 1)
	if err != nil {
		return err
	}
	return withAdmin(*server, func(ctx context.Context, a *client.Admin) error {
		t, err := a.DescribeTopic(ctx, pos[0])
		if err != nil {
			return describeErr(fmt.Sprintf("topic describe %q", pos[0]), err)
		}
		printDescription(t)
		return nil
	})
}

func printDescription(t *client.TopicInfo) {
	fmt.Printf("topic %s: %d partitions\n", t.Name, len(t.Partitions))
	if len(t.Configs) > 0 {
		fmt.Println("config:")
		for _, k := range slices.Sorted(maps.Keys(t.Configs)) {
			fmt.Printf("  %s = %s\n", k, t.Configs[k])
		}
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tLEADER\tLEADER_EPOCH\tREPLICAS\tISR\tSHARD\tLOG_START\tLOG_END\tMESSAGES\tBYTES\tSTATUS")
	for _, p := range t.Partitions {
		status, leader := p.Status, "none"
		if p.Leader != proto.NoNode {
			leader = strconv.FormatUint(uint64(p.Leader), 10)
		}
		switch {
		case status != "":
		case p.Leader == proto.NoNode && len(p.Replicas) > 0:
			status = "offline (no leader)"
		case len(p.ISR) < len(p.Replicas):
			status = "under-replicated"
		default:
			status = "ok"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", p.Partition, leader, p.LeaderEpoch,
			nodeList(p.Replicas), nodeList(p.ISR), p.Shard, p.LogStart, p.LogEnd, p.LogEnd-p.LogStart, p.Bytes, status)
	}
	tw.Flush()
}
