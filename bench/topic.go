package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

const (
	setupTimeout = 30 * time.Second
	clientID     = "ringmq-bench"
)

// dial opens a connection, served by shard when shard >= 0, to the first
// of the comma-separated server addresses that answers. (The raw driver
// talks to that one node; a cluster whose partitions other nodes lead
// needs --driver client, which follows the leaders.)
func dial(ctx context.Context, cfg *Config, shard int) (*client.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	opts := client.Options{ClientID: clientID, SASL: cfg.SASL, TLS: cfg.TLS}
	if shard >= 0 {
		opts.RequestShard, opts.Shard = true, uint16(shard)
	}
	var errs []error
	for _, addr := range strings.Split(cfg.Server, ",") {
		c, err := client.Dial(ctx, strings.TrimSpace(addr), opts)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("bench: connect to %s: %w", cfg.Server, errors.Join(errs...))
}

// ensureTopic creates the topic when it is missing and returns its
// partitions. An existing topic keeps its partition count, which replaces
// cfg.Partitions.
func ensureTopic(ctx context.Context, c *client.Conn, cfg *Config) ([]proto.PartitionInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	parts, err := topicPartitions(ctx, c, cfg.Topic)
	if errors.Is(err, proto.UnknownTopic) {
		req := &proto.CreateTopicRequest{Name: cfg.Topic, Partitions: uint32(cfg.Partitions)}
		if _, err := c.CreateTopic(ctx, req); err != nil && !errors.Is(err, proto.TopicExists) {
			return nil, fmt.Errorf("bench: create topic %q: %w", cfg.Topic, err)
		}
		parts, err = topicPartitions(ctx, c, cfg.Topic)
	}
	if err != nil {
		return nil, err
	}
	if len(parts) != cfg.Partitions && cfg.Progress != nil {
		fmt.Fprintf(cfg.Progress, "bench: topic %q exists with %d partitions; using them\n", cfg.Topic, len(parts))
	}
	cfg.Partitions = len(parts)
	return parts, nil
}

func topicPartitions(ctx context.Context, c *client.Conn, topic string) ([]proto.PartitionInfo, error) {
	resp, err := c.Metadata(ctx, &proto.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("bench: metadata: %w", err)
	}
	if len(resp.Topics) != 1 {
		return nil, fmt.Errorf("bench: metadata: %d topics in the answer for one", len(resp.Topics))
	}
	if code := resp.Topics[0].Error; code != proto.None {
		return nil, fmt.Errorf("bench: topic %q: %w", topic, code)
	}
	return resp.Topics[0].Partitions, nil
}

// logOffsets returns each partition's offset for ts (proto.TimestampEarliest
// or TimestampLatest), by partition number.
func logOffsets(ctx context.Context, c *client.Conn, topic string, parts []proto.PartitionInfo, ts int64) (map[uint32]uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	lt := proto.ListOffsetsTopic{Name: []byte(topic)}
	for _, p := range parts {
		lt.Partitions = append(lt.Partitions, proto.ListOffsetsPartition{Partition: p.Partition, Timestamp: ts})
	}
	resp, err := c.ListOffsets(ctx, &proto.ListOffsetsRequest{Topics: []proto.ListOffsetsTopic{lt}})
	if err != nil {
		return nil, fmt.Errorf("bench: list offsets: %w", err)
	}
	out := make(map[uint32]uint64, len(parts))
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.Error != proto.None {
				return nil, fmt.Errorf("bench: list offsets of partition %d: %w", p.Partition, p.Error)
			}
			out[p.Partition] = p.Offset
		}
	}
	if len(out) != len(parts) {
		return nil, fmt.Errorf("bench: list offsets: %d partitions answered of %d", len(out), len(parts))
	}
	return out, nil
}

// assignment is one worker connection's partitions and the shard to ask
// for (-1: its partitions live on several shards).
type assignment struct {
	parts []uint32
	shard int
}

// assign spreads partitions over n workers so that each worker's
// partitions share one shard whenever n ≥ the number of shards. With
// share, a worker left without a partition gets one of its shard's anyway
// (producers may share partitions); without, such workers are dropped
// (two consumers must not read the same partition).
func assign(parts []proto.PartitionInfo, n int, share bool) []assignment {
	byShard := map[int][]uint32{}
	var shards []int
	for _, p := range parts {
		s := int(p.Shard)
		if _, ok := byShard[s]; !ok {
			shards = append(shards, s)
		}
		byShard[s] = append(byShard[s], p.Partition)
	}
	slices.Sort(shards)
	out := make([]assignment, n)
	if n < len(shards) {
		for i, s := range shards {
			out[i%n].parts = append(out[i%n].parts, byShard[s]...)
			out[i%n].shard = -1
		}
		return out
	}
	for _, s := range shards {
		var ws []int // the workers of shard s
		for i := range n {
			if shards[i%len(shards)] == s {
				ws = append(ws, i)
			}
		}
		for j, p := range byShard[s] {
			w := &out[ws[j%len(ws)]]
			w.parts, w.shard = append(w.parts, p), s
		}
		for k, wi := range ws {
			if w := &out[wi]; len(w.parts) == 0 && share {
				w.parts, w.shard = []uint32{byShard[s][k%len(byShard[s])]}, s
			}
		}
	}
	return slices.DeleteFunc(out, func(a assignment) bool { return len(a.parts) == 0 })
}
