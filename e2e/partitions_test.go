package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"golang.org/x/sys/unix"
)

// procUsage reads a process's open descriptors, memory mappings and
// resident set size (KiB) from /proc.
func procUsage(t *testing.T, pid int) (fds, maps, rssKiB int) {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			rssKiB, _ = strconv.Atoi(f[1])
		}
	}
	return len(ents), strings.Count(string(b), "\n"), rssKiB
}

// settledUsage polls procUsage until the descriptor count stops changing
// (the background worker preallocates next segments after a create).
func settledUsage(t *testing.T, pid int) (fds, maps, rssKiB int) {
	t.Helper()
	fds, maps, rssKiB = procUsage(t, pid)
	deadline := time.Now().Add(2 * time.Minute)
	for stable := 0; stable < 10 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond) // a polling period, not synchronization
		f, m, r := procUsage(t, pid)
		if f == fds && m == maps {
			stable++
		} else {
			stable = 0
		}
		fds, maps, rssKiB = f, m, r
	}
	return fds, maps, rssKiB
}

// TestManyPartitions creates RINGMQ_PARTITION_TOPICS topics of 4
// partitions on one server with the default segment size, under the
// process's descriptor limit, and reports create time, descriptors,
// mappings, RSS and restart time. It is skipped unless the variable is
// set: `make partitions-10k` runs it with 2,500 topics (10,000 partitions).
func TestManyPartitions(t *testing.T) {
	topics, _ := strconv.Atoi(os.Getenv("RINGMQ_PARTITION_TOPICS"))
	if topics <= 0 {
		t.Skip("set RINGMQ_PARTITION_TOPICS (make partitions-10k) to run")
	}
	const perTopic = 4
	partitions := topics * perTopic
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(t.TempDir(), "config.toml")
	cfg := fmt.Sprintf(`[server]
listen = "127.0.0.1:0"
metrics_listen = ""
shutdown_timeout = "120s"

[reactor]
cores = 2
pin_threads = false

[storage]
data_dir = %q
`, dir)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, cfgPath)
	pid := srv.cmd.Process.Pid
	fds0, maps0, rss0 := settledUsage(t, pid)
	c := ringtest.Dial(t, srv.addr, client.Options{})
	start := time.Now()
	for i := range topics {
		ringtest.CreateTopic(t, c, fmt.Sprintf("many-%05d", i), perTopic)
	}
	created := time.Since(start)
	fds, maps, rss := settledUsage(t, pid)
	t.Logf("descriptor limit %d; empty server: %d descriptors, %d mappings, RSS %d MiB", lim.Cur, fds0, maps0, rss0>>10)
	t.Logf("%d partitions (%d topics × %d) created in %v (%.2f ms per partition)", partitions, topics, perTopic,
		created.Round(time.Millisecond), float64(created.Microseconds())/1000/float64(partitions))
	t.Logf("after create: %d descriptors (%.2f per partition), %d mappings (%.2f per partition), RSS %d MiB",
		fds, float64(fds-fds0)/float64(partitions), maps, float64(maps-maps0)/float64(partitions), rss>>10)
	if per := float64(fds-fds0) / float64(partitions); per >= 2 {
		t.Errorf("%.2f descriptors per partition, want < 2", per)
	}
	c.Close()
	if err := srv.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, srv.logs.String())
	}
	start = time.Now()
	srv = startServerWithin(t, cfgPath, 20*time.Minute)
	restarted := time.Since(start)
	fds, maps, rss = settledUsage(t, srv.cmd.Process.Pid)
	t.Logf("restart (clean) serving after %v: %d descriptors, %d mappings, RSS %d MiB",
		restarted.Round(time.Millisecond), fds, maps, rss>>10)
	srv.kill()
	<-srv.exited
	start = time.Now()
	srv = startServerWithin(t, cfgPath, 20*time.Minute)
	restarted = time.Since(start)
	fds, maps, rss = settledUsage(t, srv.cmd.Process.Pid)
	t.Logf("restart after SIGKILL serving after %v: %d descriptors, %d mappings, RSS %d MiB",
		restarted.Round(time.Millisecond), fds, maps, rss>>10)
	c = ringtest.Dial(t, srv.addr, client.Options{})
	if got := len(ringtest.ReadPartition(t, c, "many-00000", 0)); got != 0 {
		t.Fatalf("a new partition holds %d records", got)
	}
}
