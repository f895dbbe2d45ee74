package e2e

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Short group timeouts so the tests run fast; generous bounds on top of
// them for a loaded machine.
const (
	groupSession   = 2 * time.Second
	groupHeartbeat = 200 * time.Millisecond
)

// writeGroupConfig is writeConfig with group timeouts short enough for a
// test.
func writeGroupConfig(t testing.TB, dataDir string) string {
	path := writeConfig(t, dataDir)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "\n[groups]\nmin_session_timeout = \"500ms\"\nheartbeat_interval = %q\npartitions = 4\n", groupHeartbeat.String())
	return path
}

// consumer is one running `ringmq consume` process; lines collects its
// stdout.
type consumer struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []string
	stderr syncBuilder
	exited chan error
}

func startConsumer(t *testing.T, args ...string) *consumer {
	t.Helper()
	c := &consumer{cmd: exec.Command(binPath, args...), exited: make(chan error, 1)}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errPipe, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.mu.Lock()
			c.lines = append(c.lines, sc.Text())
			c.mu.Unlock()
		}
		io.Copy(io.Discard, out)
	}()
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			c.stderr.WriteString(sc.Text() + "\n")
		}
	}()
	go func() {
		wg.Wait()
		c.exited <- c.cmd.Wait()
	}()
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			c.cmd.Process.Signal(syscall.SIGKILL)
		}
	})
	return c
}

func (c *consumer) output() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}

// waitFor polls cond every 50 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond) // polling interval of the condition
	}
	return time.Since(start)
}

// memberRE matches a member line of `groups describe`: id, client,
// address, assigned.
var memberRE = regexp.MustCompile(`(?m)^([0-9a-f]{32})\s+ringmq-consume\s+127\.0\.0\.1:\d+\s+(\S+)\s`)

// assignedCounts runs `groups describe` and returns each member's count of
// assigned partitions.
func assignedCounts(t *testing.T, s, g string) map[string]int {
	t.Helper()
	res := runCLI(t, "", "groups", "describe", g, s)
	if res.code != 0 {
		return nil
	}
	out := map[string]int{}
	for _, m := range memberRE.FindAllStringSubmatch(res.stdout, -1) {
		n := 0
		if m[2] != "-" {
			n = strings.Count(m[2], ",") + 1
		}
		out[m[1]] = n
	}
	return out
}

type printed struct {
	proc      int
	partition int
	offset    int
}

// TestGroupThreeConsumersKillOne is the issue's scenario: three `ringmq
// consume --group` processes on a 12-partition topic get 4 partitions
// each; after kill -9 of one, the other two own all 12 within the
// session timeout plus one heartbeat; every record is printed at least
// once, and twice only on the killed member's uncommitted tail.
func TestGroupThreeConsumersKillOne(t *testing.T) {
	srv := startServer(t, writeGroupConfig(t, t.TempDir()))
	s := "--server=" + srv.addr
	mustCLI(t, "", "topic", "create", "T", "--partitions", "12", s)
	const before, during = 6000, 6000
	mustCLI(t, seqLines(before), "produce", "T", "--acks", "all", s)

	var cs []*consumer
	for i := 0; i < 3; i++ {
		cs = append(cs, startConsumer(t, "consume", "T", "--group", "g", "--from", "earliest",
			"--session-timeout", groupSession.String(), "--format", `%p %o %v\n`, s))
	}
	var counts map[string]int
	waitFor(t, 60*time.Second, "three members with 4 partitions each", func() bool {
		counts = assignedCounts(t, s, "g")
		return len(counts) == 3 && counts[firstKey(counts)] == 4 && allEqual(counts, 4)
	})
	t.Logf("groups describe: 3 members, assigned %v", counts)
	waitFor(t, 60*time.Second, "the records produced before printed", func() bool {
		return len(union(cs)) >= before
	})

	// Records keep coming while a member is killed: a producer writes
	// `during` more over about four seconds.
	prod := exec.Command(binPath, "produce", "T", "--acks", "all", s)
	stdin, err := prod.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := prod.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer stdin.Close()
		for i := before + 1; i <= before+during; i++ {
			fmt.Fprintf(stdin, "%d\n", i)
			if i%50 == 0 {
				time.Sleep(30 * time.Millisecond) // the producer's pace
			}
		}
	}()
	victim := cs[0]
	waitFor(t, 60*time.Second, "the victim prints records produced during the test", func() bool {
		for _, l := range victim.output() {
			if f := strings.Fields(l); len(f) == 3 {
				if v, _ := strconv.Atoi(f[2]); v > before {
					return true
				}
			}
		}
		return false
	})
	victim.cmd.Process.Signal(syscall.SIGKILL)
	<-victim.exited
	mine := partitionsOf(victim.output())
	took := waitFor(t, 60*time.Second, "two members owning all 12 partitions", func() bool {
		counts = assignedCounts(t, s, "g")
		return len(counts) == 2 && counts[firstKey(counts)]+otherValue(counts) == 12
	})
	t.Logf("kill -9 of a member that printed from partitions %v: the other two own all 12 (%v) after %v (session %v, heartbeat %v)",
		keys(mine), counts, took.Round(10*time.Millisecond), groupSession, groupHeartbeat)
	if limit := groupSession + groupHeartbeat + 2*time.Second; took > limit {
		t.Errorf("handover took %v, more than the session timeout plus a heartbeat (and 2 s of slack): %v", took, limit)
	}
	if err := prod.Wait(); err != nil {
		t.Fatalf("producer: %v", err)
	}
	waitFor(t, 60*time.Second, "every record printed by the group", func() bool {
		return len(union(cs)) == before+during
	})

	// Who printed what: each (partition, offset) at least once; twice only
	// as the victim's print and then a survivor's, on a suffix of what the
	// victim printed of one of its partitions.
	seen := map[[2]int][]int{}
	for i, c := range cs {
		for _, l := range c.output() {
			p := parseLine(t, l)
			seen[[2]int{p.partition, p.offset}] = append(seen[[2]int{p.partition, p.offset}], i)
		}
	}
	dups := map[int][]int{}
	for k, procs := range seen {
		if len(procs) == 1 {
			continue
		}
		if len(procs) != 2 || procs[0] == procs[1] || (procs[0] != 0 && procs[1] != 0) {
			t.Fatalf("partition %d offset %d printed by consumers %v", k[0], k[1], procs)
		}
		dups[k[0]] = append(dups[k[0]], k[1])
	}
	total := 0
	for p, offs := range dups {
		total += len(offs)
		lowest := slicesMin(offs)
		tail := 0
		for _, o := range victimOffsets(victim.output(), p) {
			if o >= lowest {
				tail++
			}
		}
		if tail != len(offs) {
			t.Fatalf("partition %d: %d offsets printed twice from %d, but the victim printed %d from there: not its uncommitted tail",
				p, len(offs), lowest, tail)
		}
	}
	t.Logf("%d records printed by the group, %d of them twice (the killed member's uncommitted tail in %d partitions)",
		len(seen), total, len(dups))
	for _, c := range cs[1:] {
		c.cmd.Process.Signal(syscall.SIGTERM)
		if err := <-c.exited; err != nil {
			t.Errorf("survivor exit: %v\n%s", err, c.stderr.String())
		}
	}
	if out := mustCLI(t, "", "groups", "describe", "g", s); !strings.Contains(out, "state empty") {
		t.Errorf("after the survivors stopped (they leave):\n%s", out)
	}
}

func firstKey(m map[string]int) string {
	for k := range m {
		return k
	}
	return ""
}

func otherValue(m map[string]int) int {
	first := firstKey(m)
	for k, v := range m {
		if k != first {
			return v
		}
	}
	return 0
}

func allEqual(m map[string]int, n int) bool {
	for _, v := range m {
		if v != n {
			return false
		}
	}
	return true
}

func keys(m map[int]bool) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	return out
}

func slicesMin(s []int) int {
	m := s[0]
	for _, v := range s {
		m = min(m, v)
	}
	return m
}

func parseLine(t *testing.T, l string) printed {
	f := strings.Fields(l)
	if len(f) != 3 {
		t.Fatalf("line %q", l)
	}
	p, err1 := strconv.Atoi(f[0])
	o, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		t.Fatalf("line %q", l)
	}
	return printed{partition: p, offset: o}
}

func union(cs []*consumer) map[string]bool {
	vals := map[string]bool{}
	for _, c := range cs {
		for _, l := range c.output() {
			if f := strings.Fields(l); len(f) == 3 {
				vals[f[2]] = true
			}
		}
	}
	return vals
}

func partitionsOf(lines []string) map[int]bool {
	out := map[int]bool{}
	for _, l := range lines {
		if f := strings.Fields(l); len(f) == 3 {
			p, _ := strconv.Atoi(f[0])
			out[p] = true
		}
	}
	return out
}

func victimOffsets(lines []string, p int) []int {
	var out []int
	for _, l := range lines {
		if f := strings.Fields(l); len(f) == 3 && f[0] == strconv.Itoa(p) {
			o, _ := strconv.Atoi(f[1])
			out = append(out, o)
		}
	}
	return out
}

// Exclusive: a second member is refused with an error naming the holder;
// once the holder is killed, the second can join (after the session
// timeout).
func TestGroupExclusiveCLI(t *testing.T) {
	srv := startServer(t, writeGroupConfig(t, t.TempDir()))
	s := "--server=" + srv.addr
	mustCLI(t, "", "topic", "create", "T", "--partitions", "3", s)
	mustCLI(t, seqLines(30), "produce", "T", "--acks", "all", s)
	holder := startConsumer(t, "consume", "T", "--group", "ex", "--type", "exclusive", "--from", "earliest",
		"--session-timeout", groupSession.String(), s)
	waitFor(t, 30*time.Second, "the holder reads", func() bool { return len(holder.output()) == 30 })
	res := runCLI(t, "", "consume", "T", "--group", "ex", "--type", "exclusive", "-n", "1", s)
	t.Logf("second exclusive consumer: exit %d: %s", res.code, strings.TrimSpace(res.stderr))
	if res.code == 0 || !strings.Contains(res.stderr, "SUBSCRIPTION_HELD") || !strings.Contains(res.stderr, "held by member") {
		t.Fatalf("second exclusive consumer: exit %d\n%s", res.code, res.stderr)
	}
	res = runCLI(t, "", "consume", "T", "--group", "ex", "-n", "1", s)
	if res.code == 0 || !strings.Contains(res.stderr, "SUBSCRIPTION_TYPE_MISMATCH") {
		t.Fatalf("failover consumer of an exclusive group: exit %d\n%s", res.code, res.stderr)
	}
	holder.cmd.Process.Signal(syscall.SIGKILL)
	<-holder.exited
	mustCLI(t, "31\n32\n", "produce", "T", "--acks", "all", s)
	var out string
	took := waitFor(t, 30*time.Second, "the second exclusive consumer joins", func() bool {
		res := runCLI(t, "", "consume", "T", "--group", "ex", "--type", "exclusive", "-n", "2", s)
		out = res.stdout
		return res.code == 0
	})
	t.Logf("after kill -9 of the holder, the second joined within %v and read %q", took.Round(10*time.Millisecond), out)
	if got := splitLines(out); len(got) != 2 || !(got[0] == "31" || got[0] == "32") {
		t.Fatalf("the second exclusive member read %q, want the two records after the holder's commit", out)
	}
}

// groups describe, delete and reset with their refusals and --dry-run.
func TestGroupAdminCLI(t *testing.T) {
	srv := startServer(t, writeGroupConfig(t, t.TempDir()))
	s := "--server=" + srv.addr
	mustCLI(t, "", "topic", "create", "T", "--partitions", "2", s)
	mustCLI(t, seqLines(100), "produce", "T", "--acks", "all", "--partition", "1", s)
	live := startConsumer(t, "consume", "T", "--group", "adm", "--from", "earliest", s)
	waitFor(t, 30*time.Second, "the member reads", func() bool { return len(live.output()) == 100 })
	waitFor(t, 30*time.Second, "the commit", func() bool {
		return regexpMatch(`(?m)^T\s+1\s+100\s+100\s+0\s+[0-9a-f]{32}$`, mustCLI(t, "", "groups", "describe", "adm", s))
	})
	desc := mustCLI(t, "", "groups", "describe", "adm", s)
	t.Logf("groups describe adm:\n%s", desc)
	if !strings.Contains(desc, "type failover, state stable") || !memberRE.MatchString(desc) {
		t.Fatalf("describe:\n%s", desc)
	}
	if list := mustCLI(t, "", "groups", s); !regexpMatch(`(?m)^adm\s+failover\s+stable\s+1\s+2\s+0$`, list) {
		t.Fatalf("groups list:\n%s", list)
	}
	for _, args := range [][]string{{"delete", "adm"}, {"reset", "adm", "--topic", "T", "--to", "earliest"}} {
		res := runCLI(t, "", append([]string{"groups"}, append(args, s)...)...)
		t.Logf("groups %s while active: exit %d: %s", args[0], res.code, strings.TrimSpace(res.stderr))
		if res.code == 0 || !strings.Contains(res.stderr, "GROUP_NOT_EMPTY") {
			t.Fatalf("groups %s of an active group: exit %d\n%s", args[0], res.code, res.stderr)
		}
	}
	live.cmd.Process.Signal(syscall.SIGTERM)
	<-live.exited
	dry := mustCLI(t, "", "groups", "reset", "adm", "--topic", "T", "--to", "10", "--dry-run", s)
	if !regexpMatch(`(?m)^T\s+1\s+100\s+10$`, dry) || !strings.Contains(dry, "dry run: nothing changed") {
		t.Fatalf("dry run:\n%s", dry)
	}
	if !regexpMatch(`(?m)^T\s+1\s+100\s+100\s+0\s+-$`, mustCLI(t, "", "groups", "describe", "adm", s)) {
		t.Fatal("a dry run changed the commits")
	}
	mustCLI(t, "", "groups", "reset", "adm", "--topic", "T", "--to", "10", s)
	if d := mustCLI(t, "", "groups", "describe", "adm", s); !regexpMatch(`(?m)^T\s+1\s+10\s+100\s+90\s+-$`, d) {
		t.Fatalf("after reset to 10:\n%s", d)
	}
	mustCLI(t, "", "groups", "reset", "adm", "--topic", "T", "--to", "latest", s)
	if d := mustCLI(t, "", "groups", "describe", "adm", s); regexpMatch(`(?m)\s[1-9]\d*\s+-$`, d) {
		t.Fatalf("after reset to latest (lag 0 everywhere):\n%s", d)
	}
	mustCLI(t, "", "groups", "reset", "adm", "--topic", "T", "--to", "@0", s)
	if d := mustCLI(t, "", "groups", "describe", "adm", s); !regexpMatch(`(?m)^T\s+1\s+0\s+`, d) {
		t.Fatalf("after reset to @0 (every record is later):\n%s", d)
	}
	if res := runCLI(t, "", "groups", "reset", "adm", "--topic", "T", "--to", "soon", s); res.code == 0 {
		t.Fatalf("reset --to soon: exit 0")
	}
	mustCLI(t, "", "groups", "delete", "adm", s)
	res := runCLI(t, "", "groups", "describe", "adm", s)
	if res.code == 0 || !strings.Contains(res.stderr, "GROUP_NOT_FOUND") {
		t.Fatalf("describe after delete: exit %d\n%s", res.code, res.stderr)
	}
	for _, args := range [][]string{{"describe", "bad name"}, {"delete", "a/b"}} {
		res := runCLI(t, "", append([]string{"groups"}, append(args, s)...)...)
		if res.code == 0 || !strings.Contains(res.stderr, "invalid group name") {
			t.Fatalf("groups %v: exit %d\n%s", args, res.code, res.stderr)
		}
	}
	if res := runCLI(t, "", "consume", "T", "--group", "bad name", s); res.code == 0 ||
		!strings.Contains(res.stderr, "invalid group name") {
		t.Fatalf("consume --group 'bad name': exit %d\n%s", res.code, res.stderr)
	}
}

// A kill -9 of the broker keeps every acknowledged commit and the group's
// type; a member running across the restart goes on reading.
func TestGroupSurvivesBrokerKill(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeGroupConfig(t, dir)
	srv := startServer(t, cfgPath)
	s := "--server=" + srv.addr
	mustCLI(t, "", "topic", "create", "T", "--partitions", "3", s)
	mustCLI(t, seqLines(300), "produce", "T", "--acks", "all", s)
	got := splitLines(mustCLI(t, "", "consume", "T", "--group", "ex", "--type", "exclusive", "--from", "earliest", "-n", "100", s))
	before := mustCLI(t, "", "groups", "describe", "ex", s)
	srv.cmd.Process.Signal(syscall.SIGKILL)
	<-srv.exited
	srv = startServer(t, cfgPath)
	s = "--server=" + srv.addr
	after := mustCLI(t, "", "groups", "describe", "ex", s)
	if commitLines(before) != commitLines(after) || !strings.Contains(after, "type exclusive") {
		t.Fatalf("group before kill -9:\n%s\nafter restart:\n%s", before, after)
	}
	t.Logf("after kill -9 and restart:\n%s", after)
	rest := splitLines(mustCLI(t, "", "consume", "T", "--group", "ex", "--type", "exclusive", "-n", "200", s))
	checkAllOnce(t, append(got, rest...), 300)

	// A member that lives through a broker kill -9 keeps reading.
	m := startConsumer(t, "consume", "T", "--group", "live", "--from", "earliest", "--session-timeout", "5s", s)
	waitFor(t, 30*time.Second, "the member reads", func() bool { return len(m.output()) == 300 })
	srv.cmd.Process.Signal(syscall.SIGKILL)
	<-srv.exited
	srv = startServerOnAddr(t, cfgPath, srv.addr)
	mustCLI(t, "301\n302\n", "produce", "T", "--acks", "all", "--server="+srv.addr)
	waitFor(t, 60*time.Second, "the member reads after the broker's restart", func() bool {
		select {
		case err := <-m.exited:
			t.Fatalf("the member exited (%v):\n%s", err, m.stderr.String())
		default:
		}
		return len(m.output()) >= 302
	})
	t.Logf("member across a broker kill -9: %d lines; stderr:\n%s", len(m.output()), m.stderr.String())
}

func commitLines(describe string) string {
	var out []string
	for _, l := range strings.Split(describe, "\n") {
		if strings.HasPrefix(l, "T ") {
			out = append(out, strings.Join(strings.Fields(l)[:3], " "))
		}
	}
	return strings.Join(out, "\n")
}

// startServerOnAddr restarts a server on the (ephemeral) address it had,
// so a member redials it. A client redialing a free local port in the
// ephemeral range can briefly connect to itself and hold the port, so
// the start is retried while the port is taken.
func startServerOnAddr(t *testing.T, cfgPath, addr string) *server {
	t.Helper()
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	fixed := strings.Replace(string(b), `listen = "127.0.0.1:0"`, fmt.Sprintf("listen = %q", addr), 1)
	path := filepath.Join(t.TempDir(), "fixed.toml")
	if err := os.WriteFile(path, []byte(fixed), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		srv, err := tryStartServer(path)
		if err == nil {
			t.Cleanup(srv.kill)
			return srv
		}
		if !strings.Contains(err.Error(), "address already in use") || time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // until the self-connected client lets go
	}
}

// tryStartServer runs `ringmq serve` and returns its error output if it
// exits before serving.
func tryStartServer(configPath string) (*server, error) {
	cmd := exec.Command(binPath, "serve", "--config", configPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, exited: make(chan error, 1), logs: &syncBuilder{}}
	addrCh := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.logs.WriteString(line + "\n")
			if m := listenRE.FindStringSubmatch(line); m != nil {
				addrCh <- [2]string{m[1], m[2]}
			}
		}
		io.Copy(io.Discard, stderr)
		s.exited <- cmd.Wait()
	}()
	select {
	case addrs := <-addrCh:
		s.addr, s.metrics = addrs[0], addrs[1]
		return s, nil
	case err := <-s.exited:
		return nil, fmt.Errorf("server exited before serving: %v\n%s", err, s.logs.String())
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		return nil, fmt.Errorf("server did not start within a minute")
	}
}
