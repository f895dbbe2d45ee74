package e2e

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// sharedAckTimeout is short so that a test's lock expiries come fast.
const sharedAckTimeout = 3 * time.Second

// writeSharedConfig is writeGroupConfig with a short ack_timeout.
func writeSharedConfig(t testing.TB, dataDir string) string {
	path := writeConfig(t, dataDir)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "\n[groups]\nmin_session_timeout = \"500ms\"\nheartbeat_interval = %q\npartitions = 4\nack_timeout = %q\n",
		groupHeartbeat.String(), sharedAckTimeout.String())
	return path
}

// Three `ringmq consume --type shared` processes on a one-partition topic
// each print a share of its records; after kill -9 of one while it holds
// records it has not acked, the other two print those within the session
// timeout (the coordinator releases a dead member's records when its
// session ends; ack_timeout bounds it too); no record is lost, and only
// records the killed one printed are printed twice.
func TestSharedThreeConsumersKillOne(t *testing.T) {
	srv := startServer(t, writeSharedConfig(t, t.TempDir()))
	s := "--server=" + srv.addr
	const n = 30_000
	mustCLI(t, "", "topic", "create", "W", "--partitions", "1", s)
	mustCLI(t, seqLines(n), "produce", "W", "--acks", "all", s)
	var cs []*consumer
	for range 3 {
		cs = append(cs, startConsumer(t, "consume", "W", "--group", "sh", "--type", "shared",
			"--session-timeout", groupSession.String(), s))
	}
	waitFor(t, 60*time.Second, "a third of the records printed", func() bool { return len(lineSet(cs)) >= n/3 })
	victim := cs[0]
	victim.cmd.Process.Signal(syscall.SIGKILL)
	<-victim.exited
	killedAt := time.Now()
	waitFor(t, 120*time.Second, "every record printed", func() bool { return len(lineSet(cs)) >= n })
	t.Logf("all %d records printed %v after the kill -9", n, time.Since(killedAt).Round(time.Millisecond))
	counts := map[string]int{}
	for _, c := range cs {
		for _, l := range c.output() {
			counts[l]++
		}
	}
	printedByVictim := map[string]bool{}
	for _, l := range victim.output() {
		printedByVictim[l] = true
	}
	twice := 0
	for i := 1; i <= n; i++ {
		v := strconv.Itoa(i)
		switch k := counts[v]; {
		case k == 0:
			t.Fatalf("record %s never printed", v)
		case k > 1 && !printedByVictim[v]:
			t.Fatalf("record %s printed %d times, not by the killed consumer", v, k)
		case k > 1:
			twice++
		}
	}
	per := []int{len(cs[0].output()), len(cs[1].output()), len(cs[2].output())}
	t.Logf("lines per consumer %v; %d records printed twice (the killed consumer's unacked tail)", per, twice)
	if per[1] == 0 || per[2] == 0 {
		t.Fatalf("a surviving consumer printed nothing: %v", per)
	}
}

// A broker kill -9 loses no confirmed ack: records a shared consumer
// printed (and acked) before the kill are never delivered again, and the
// rest are, each once.
func TestSharedAcksSurviveBrokerKill(t *testing.T) {
	cfgPath := writeSharedConfig(t, t.TempDir())
	srv := startServer(t, cfgPath)
	s := "--server=" + srv.addr
	const n = 2000
	mustCLI(t, "", "topic", "create", "W", "--partitions", "1", s)
	mustCLI(t, seqLines(n), "produce", "W", "--acks", "all", s)
	got := splitLines(mustCLI(t, "", "consume", "W", "--group", "sh", "--type", "shared", "-n", "1200", s))
	srv.cmd.Process.Signal(syscall.SIGKILL)
	<-srv.exited
	srv = startServer(t, cfgPath)
	s = "--server=" + srv.addr
	t.Logf("after kill -9 and restart:\n%s", mustCLI(t, "", "groups", "describe", "sh", s))
	rest := splitLines(mustCLI(t, "", "consume", "W", "--group", "sh", "--type", "shared", "-n", "800", s))
	checkAllOnce(t, append(got, rest...), n)
}

// lineSet is the distinct lines the consumers printed.
func lineSet(cs []*consumer) map[string]bool {
	out := map[string]bool{}
	for _, c := range cs {
		for _, l := range c.output() {
			out[l] = true
		}
	}
	return out
}
