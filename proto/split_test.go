package proto

import (
	"bytes"
	"flag"
	"math/rand/v2"
	"testing"
	"time"
)

var splitSeed = flag.Uint64("split-seed", 0, "seed of TestProduceRequestSplit (0: from the clock)")

// TestProduceRequestSplit checks that a split frame with its gaps put back
// is byte for byte the frame AppendRequest writes, for random requests
// and thresholds, and that only Records of at least minGap bytes are left
// out. Replay a failure with -split-seed.
func TestProduceRequestSplit(t *testing.T) {
	seed := *splitSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for i := range 500 {
		req := randomProduceRequest(rng)
		minGap := rng.IntN(300)
		prefix := []byte("prefix")
		want := AppendRequest(bytes.Clone(prefix), uint32(i), req)
		got, gaps := AppendProduceRequestSplit(bytes.Clone(prefix), uint32(i), req, minGap, nil)
		var whole []byte
		at := 0
		for _, g := range gaps {
			if g.At < at || len(g.Bytes) < minGap || len(g.Bytes) == 0 {
				t.Fatalf("request %d, minGap %d: gap at %d of %d bytes after %d", i, minGap, g.At, len(g.Bytes), at)
			}
			whole = append(append(whole, got[at:g.At]...), g.Bytes...)
			at = g.At
		}
		whole = append(whole, got[at:]...)
		if !bytes.Equal(whole, want) {
			t.Fatalf("request %d, minGap %d: reassembled frame differs\n got %x\nwant %x", i, minGap, whole, want)
		}
		var kept int
		for _, tp := range req.Topics {
			for _, p := range tp.Partitions {
				if len(p.Records) >= minGap && len(p.Records) > 0 {
					kept++
				}
			}
		}
		if len(gaps) != kept {
			t.Fatalf("request %d, minGap %d: %d gaps, want %d", i, minGap, len(gaps), kept)
		}
	}
}

func randomProduceRequest(rng *rand.Rand) *ProduceRequest {
	req := &ProduceRequest{Acks: AcksLeader, TimeoutMs: rng.Uint32()}
	for range rng.IntN(3) {
		tp := ProduceTopic{Name: []byte{byte('a' + rng.IntN(26))}}
		for range rng.IntN(4) {
			rec := make([]byte, rng.IntN(400))
			for j := range rec {
				rec[j] = byte(rng.Uint32())
			}
			tp.Partitions = append(tp.Partitions, ProducePartition{Partition: rng.Uint32N(8), Records: rec})
		}
		req.Topics = append(req.Topics, tp)
	}
	return req
}
