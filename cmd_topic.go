package main

// ringmq topic create|list|describe|delete.

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

const topicUsage = "ringmq topic create|list|describe|delete ... (ringmq topic SUBCOMMAND -h for its flags)"

func cmdTopic(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("topic: missing subcommand; usage: %s", topicUsage)
	}
	sub := map[string]func([]string) error{
		"create": topicCreate, "list": topicList, "describe": topicDescribe, "delete": topicDelete,
	}[args[0]]
	switch {
	case args[0] == "-h" || args[0] == "--help" || args[0] == "help":
		fmt.Println("usage:", topicUsage)
		return nil
	case sub == nil:
		return fmt.Errorf("topic: unknown subcommand %q; usage: %s", args[0], topicUsage)
	}
	return quietUsage(sub(args[1:]))
}

// configFlags collects repeated --config key=value flags.
type configFlags []proto.Config

func (c *configFlags) String() string { return "" }

func (c *configFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	*c = append(*c, proto.Config{Key: k, Value: v})
	return nil
}

// withConn dials server, runs fn with a bounded context, and closes.
func withConn(server string, fn func(ctx context.Context, c *client.Conn) error) error {
	ctx, stop := signalContext()
	defer stop()
	c, err := dialServer(ctx, server, "ringmq-cli")
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := commandTimeout(ctx)
	defer cancel()
	return fn(ctx, c)
}

func topicCreate(args []string) error {
	fs := newFlagSet("topic create", "ringmq topic create NAME [--partitions N] [--config key=value ...] [--server HOST:PORT]")
	server := fs.serverFlag()
	partitions := fs.Uint("partitions", 1, "number of partitions")
	var configs configFlags
	fs.Var(&configs, "config", "topic configuration override `key=value` (retention_ms, retention_bytes, segment_bytes, flush); repeatable")
	pos, err := fs.parse(args, 1, 1)
	if err != nil {
		return err
	}
	name := pos[0]
	if *partitions == 0 || *partitions > 1<<20 {
		return fmt.Errorf("topic create: --partitions must be between 1 and %d", 1<<20)
	}
	return withConn(*server, func(ctx context.Context, c *client.Conn) error {
		req := &proto.CreateTopicRequest{Name: name, Partitions: uint32(*partitions), Configs: configs}
		if _, err := c.CreateTopic(ctx, req); err != nil {
			return describeErr(fmt.Sprintf("topic create %q", name), err)
		}
		fmt.Printf("created topic %q with %d partitions\n", name, *partitions)
		return nil
	})
}

func topicDelete(args []string) error {
	fs := newFlagSet("topic delete", "ringmq topic delete NAME [--server HOST:PORT]")
	server := fs.serverFlag()
	pos, err := fs.parse(args, 1, 1)
	if err != nil {
		return err
	}
	return withConn(*server, func(ctx context.Context, c *client.Conn) error {
		if _, err := c.DeleteTopic(ctx, &proto.DeleteTopicRequest{Name: pos[0]}); err != nil {
			return describeErr(fmt.Sprintf("topic delete %q", pos[0]), err)
		}
		fmt.Printf("deleted topic %q\n", pos[0])
		return nil
	})
}

func topicList(args []string) error {
	fs := newFlagSet("topic list", "ringmq topic list [--server HOST:PORT]")
	server := fs.serverFlag()
	if _, err := fs.parse(args, 0, 0); err != nil {
		return err
	}
	return withConn(*server, func(ctx context.Context, c *client.Conn) error {
		resp, err := c.Metadata(ctx, &proto.MetadataRequest{})
		if err != nil {
			return describeErr("topic list", err)
		}
		sort.Slice(resp.Topics, func(i, j int) bool { return resp.Topics[i].Name < resp.Topics[j].Name })
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tMESSAGES")
		for _, t := range resp.Topics {
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
	fs := newFlagSet("topic describe", "ringmq topic describe NAME [--server HOST:PORT]")
	server := fs.serverFlag()
	pos, err := fs.parse(args, 1, 1)
	if err != nil {
		return err
	}
	return withConn(*server, func(ctx context.Context, c *client.Conn) error {
		resp, err := c.DescribeTopic(ctx, &proto.DescribeTopicRequest{Name: pos[0]})
		if err != nil {
			return describeErr(fmt.Sprintf("topic describe %q", pos[0]), err)
		}
		printDescription(pos[0], resp)
		return nil
	})
}

func printDescription(name string, resp *proto.DescribeTopicResponse) {
	fmt.Printf("topic %s: %d partitions\n", name, len(resp.Partitions))
	if len(resp.Configs) > 0 {
		fmt.Println("config:")
		for _, c := range resp.Configs {
			fmt.Printf("  %s = %s\n", c.Key, c.Value)
		}
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tSHARD\tLOG_START\tLOG_END\tMESSAGES\tBYTES")
	for _, p := range resp.Partitions {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\n", p.Partition, p.Shard, p.LogStart, p.LogEnd, p.LogEnd-p.LogStart, p.Bytes)
	}
	tw.Flush()
}
