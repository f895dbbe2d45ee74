package e2e

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

// acked records, per partition, the (producer, seq) pairs the server
// acknowledged, in the order they were produced.
type acked struct {
	mu   sync.Mutex
	recs map[uint32][]uint64 // partition → producer<<32 | seq
}

func (a *acked) add(p uint32, producer, seq uint32, n uint32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := uint32(0); i < n; i++ {
		a.recs[p] = append(a.recs[p], uint64(producer)<<32|uint64(seq+i))
	}
}

// produceUntilError sends batches of 10 records with the given acks until
// the server fails; it records what was acknowledged. seq continues across
// calls (the returned value).
func produceUntilError(c *client.Conn, topic string, partitions, producer, seq uint32, acks int8, a *acked, limit int) uint32 {
	var b proto.BatchBuilder
	for i := 0; limit <= 0 || i < limit; i++ {
		p := (producer + uint32(i)) % partitions
		b.Reset(nil)
		for j := uint32(0); j < 10; j++ {
			v := binary.LittleEndian.AppendUint32(nil, producer)
			v = binary.LittleEndian.AppendUint32(v, seq+j)
			b.Append(time.Now().UnixMilli(), nil, append(v, "crash-test-payload"...), nil)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		resp, err := c.Produce(ctx, &proto.ProduceRequest{Acks: acks, TimeoutMs: 30000, Topics: []proto.ProduceTopic{{
			Name: []byte(topic), Partitions: []proto.ProducePartition{{Partition: p, Records: b.Finish()}}}}})
		cancel()
		if err != nil || resp.Topics[0].Partitions[0].Error != proto.None {
			return seq + 10 // the batch may or may not have landed: never reuse its numbers
		}
		a.add(p, producer, seq, 10)
		seq += 10
	}
	return seq
}

// verify checks every acknowledged record is present exactly once and in
// order per producer, and that every record read is well formed.
func verify(t *testing.T, c *client.Conn, topic string, partitions uint32, a *acked) int {
	t.Helper()
	total := 0
	for p := uint32(0); p < partitions; p++ {
		vals := ringtest.ReadPartition(t, c, topic, p)
		pos := map[uint64]int{}
		for i, v := range vals {
			if len(v) < 8 {
				t.Fatalf("partition %d offset %d: short value %q", p, i, v)
			}
			key := uint64(binary.LittleEndian.Uint32(v))<<32 | uint64(binary.LittleEndian.Uint32(v[4:]))
			if _, dup := pos[key]; dup {
				t.Fatalf("partition %d: record %x appears twice", p, key)
			}
			pos[key] = i
		}
		last := map[uint32]int{}
		for _, key := range a.recs[p] {
			i, ok := pos[key]
			if !ok {
				t.Fatalf("partition %d: acknowledged record producer %d seq %d is missing", p, key>>32, uint32(key))
			}
			prod := uint32(key >> 32)
			if prev, seen := last[prod]; seen && i < prev {
				t.Fatalf("partition %d: producer %d seq %d reordered", p, prod, uint32(key))
			}
			last[prod] = i
			total++
		}
	}
	return total
}

func TestKillNineLosesNoAckedRecord(t *testing.T) {
	dataDir := t.TempDir()
	cfgPath := writeConfig(t, dataDir)
	const topic, partitions, producers, rounds = "crash", 4, 4, 6
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	a := &acked{recs: map[uint32][]uint64{}}
	seqs := make([]uint32, producers)
	for round := 0; round < rounds; round++ {
		srv := startServer(t, cfgPath)
		c := ringtest.Dial(t, srv.addr, client.Options{})
		if round == 0 {
			ringtest.CreateTopic(t, c, topic, partitions, "flush", "sync")
		}
		var wg sync.WaitGroup
		for i := uint32(0); i < producers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pc, err := client.Dial(context.Background(), srv.addr, client.Options{})
				if err != nil {
					return
				}
				defer pc.Close()
				seqs[i] = produceUntilError(pc, topic, partitions, i, seqs[i], proto.AcksAll, a, 0)
			}()
		}
		// The kill moment is random; the producers run until it.
		<-time.After(time.Duration(200+rng.IntN(800)) * time.Millisecond)
		srv.stop(t, syscall.SIGKILL)
		wg.Wait()
	}
	srv := startServer(t, cfgPath)
	c := ringtest.Dial(t, srv.addr, client.Options{})
	n := verify(t, c, topic, partitions, a)
	if n == 0 {
		t.Fatal("no record was acknowledged across the rounds")
	}
	t.Logf("%d acknowledged records verified after %d kills", n, rounds)
}

func TestSigtermLosesNoAcksOneRecord(t *testing.T) {
	dataDir := t.TempDir()
	cfgPath := writeConfig(t, dataDir)
	const topic, partitions = "term", 3
	a := &acked{recs: map[uint32][]uint64{}}
	srv := startServer(t, cfgPath)
	c := ringtest.Dial(t, srv.addr, client.Options{})
	ringtest.CreateTopic(t, c, topic, partitions)
	produceUntilError(c, topic, partitions, 0, 0, proto.AcksLeader, a, 2000)
	if err := srv.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM exit: %v\n%s", err, srv.logs.String())
	}
	srv = startServer(t, cfgPath)
	c = ringtest.Dial(t, srv.addr, client.Options{})
	if n := verify(t, c, topic, partitions, a); n != 20000 {
		t.Fatalf("verified %d records, want 20000", n)
	}
}
