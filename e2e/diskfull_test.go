package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

// httpGet returns the status and body of GET url.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var fencedGaugeRE = regexp.MustCompile(`(?m)^ringmq_partitions_fenced (\d+)$`)

func fencedGauge(t *testing.T, metricsAddr string) string {
	_, body := httpGet(t, "http://"+metricsAddr+"/metrics")
	m := fencedGaugeRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics has no ringmq_partitions_fenced")
	}
	return m[1]
}

// diskFullProducer sends batches of 4 records of 4 KiB to one partition
// and remembers which were acknowledged.
type diskFullProducer struct {
	c     *client.Conn
	topic string
	seq   uint32
	acked map[uint32][]uint32 // partition → acknowledged record numbers
}

func (p *diskFullProducer) produce(part uint32) proto.ErrorCode {
	var b proto.BatchBuilder
	b.Reset(nil)
	for j := uint32(0); j < 4; j++ {
		v := binary.LittleEndian.AppendUint32(make([]byte, 0, 4096), p.seq+j)
		v = append(v, make([]byte, 4092)...)
		b.Append(time.Now().UnixMilli(), nil, v, nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := p.c.Produce(ctx, &proto.ProduceRequest{Acks: proto.AcksAll, TimeoutMs: 30000, Topics: []proto.ProduceTopic{{
		Name: []byte(p.topic), Partitions: []proto.ProducePartition{{Partition: part, Records: b.Finish()}}}}})
	first := p.seq
	p.seq += 4 // never reuse the numbers of a batch that may have landed
	if err != nil {
		return proto.StorageError
	}
	code := resp.Topics[0].Partitions[0].Error
	if code == proto.None {
		for j := uint32(0); j < 4; j++ {
			p.acked[part] = append(p.acked[part], first+j)
		}
	}
	return code
}

// TestDiskFullNoCrashNoRestart fills the file system under a running
// server until produce fails, frees space, and produces again: the server
// never exits, reports the fenced partitions on /readyz and the metrics
// while the disk is full, resumes by itself, and every acknowledged record
// reads back in order.
func TestDiskFullNoCrashNoRestart(t *testing.T) {
	mnt := ringtest.MountTmpfs(t, 48<<20)
	dataDir := filepath.Join(mnt, "data")
	cfgPath := filepath.Join(t.TempDir(), "config.toml")
	cfg := fmt.Sprintf(`[server]
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"

[reactor]
cores = 2
recv_buffers = 64
pin_threads = false

[storage]
data_dir = %q
segment_bytes = 1048576
flush_interval = "100ms"
`, dataDir)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, cfgPath)
	c := ringtest.Dial(t, srv.addr, client.Options{})
	const topic, partitions = "full", 2
	ringtest.CreateTopic(t, c, topic, partitions, "flush", "sync")
	p := &diskFullProducer{c: c, topic: topic, acked: map[uint32][]uint32{}}
	for part := uint32(0); part < partitions; part++ {
		if code := p.produce(part); code != proto.None {
			t.Fatalf("produce before the disk is full: %v", code)
		}
	}
	filler := filepath.Join(mnt, "filler")
	fillUntilFenced(t, p, filler, partitions)
	if code, body := httpGet(t, "http://"+srv.metrics+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "fenced") {
		t.Errorf("/readyz with fenced partitions: %d %q", code, body)
	}
	if code, _ := httpGet(t, "http://"+srv.metrics+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz with fenced partitions: %d, want 200 (alive)", code)
	}
	if n := fencedGauge(t, srv.metrics); n != "2" {
		t.Errorf("ringmq_partitions_fenced = %s with both partitions fenced", n)
	}
	t.Logf("acknowledged before the disk filled: %d + %d records", len(p.acked[0]), len(p.acked[1]))

	freeAndResume(t, p, filler, partitions)
	if code, body := httpGet(t, "http://"+srv.metrics+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz after resume: %d %q", code, body)
	}
	if n := fencedGauge(t, srv.metrics); n != "0" {
		t.Errorf("ringmq_partitions_fenced = %s after resume", n)
	}
	select {
	case err := <-srv.exited:
		t.Fatalf("server exited: %v\n%s", err, srv.logs.String())
	default:
	}
	checkAcked(t, c, p, partitions)

	// Fill the disk again, kill the server and start it on the full disk:
	// it starts, serves every acknowledged record, refuses writes, and
	// resumes once space is freed.
	fillUntilFenced(t, p, filler, partitions)
	srv.kill()
	<-srv.exited
	srv = startServer(t, cfgPath)
	c = ringtest.Dial(t, srv.addr, client.Options{})
	p.c = c
	checkAcked(t, c, p, partitions)
	for part := uint32(0); part < partitions; part++ {
		// Whatever the restart freed (preallocated files) fills up first.
		for i := 0; ; i++ {
			code := p.produce(part)
			if code == proto.PartitionFenced || code == proto.StorageError {
				break
			}
			if code != proto.None || i > 1000 {
				t.Fatalf("produce after a start on a full disk: %v after %d batches, want PARTITION_FENCED", code, i)
			}
		}
	}
	if code, body := httpGet(t, "http://"+srv.metrics+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz after a start on a full disk: %d %q", code, body)
	}
	freeAndResume(t, p, filler, partitions)
	checkAcked(t, c, p, partitions)
}

// fillUntilFenced fills the disk, leaving 2 MiB, and produces to every
// partition until each has failed.
func fillUntilFenced(t *testing.T, p *diskFullProducer, filler string, partitions uint32) {
	t.Helper()
	ringtest.FillDisk(t, filler, 2<<20)
	fenced := map[uint32]bool{}
	for i := 0; uint32(len(fenced)) < partitions; i++ {
		if i > 10000 {
			t.Fatalf("produce never failed on a full disk")
		}
		part := uint32(i) % partitions
		if code := p.produce(part); code == proto.StorageError || code == proto.PartitionFenced {
			fenced[part] = true
		} else if code != proto.None {
			t.Fatalf("produce on a full disk: %v", code)
		}
	}
}

// freeAndResume removes the filler and produces until every partition
// takes writes again, then 20 batches more to each.
func freeAndResume(t *testing.T, p *diskFullProducer, filler string, partitions uint32) {
	t.Helper()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for part := uint32(0); part < partitions; part++ {
		for p.produce(part) != proto.None {
			if time.Now().After(deadline) {
				t.Fatalf("partition %d did not resume after space was freed", part)
			}
			time.Sleep(50 * time.Millisecond) // the retry period, not synchronization
		}
		for range 20 {
			if code := p.produce(part); code != proto.None {
				t.Fatalf("produce after resume: %v", code)
			}
		}
	}
}

// checkAcked reads every partition back: each acknowledged record must be
// there, in order.
func checkAcked(t *testing.T, c *client.Conn, p *diskFullProducer, partitions uint32) {
	t.Helper()
	for part := uint32(0); part < partitions; part++ {
		vals := ringtest.ReadPartition(t, c, p.topic, part)
		i := 0
		for _, v := range vals {
			if i < len(p.acked[part]) && binary.LittleEndian.Uint32(v) == p.acked[part][i] {
				i++
			}
		}
		if i != len(p.acked[part]) {
			t.Fatalf("partition %d: acknowledged record %d of %d (number %d) missing or out of order",
				part, i, len(p.acked[part]), p.acked[part][i])
		}
		t.Logf("partition %d: %d acknowledged records read back (%d stored)", part, i, len(vals))
	}
}
