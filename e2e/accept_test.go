package e2e

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
)

// A server out of file descriptors (RLIMIT_NOFILE lowered to 64) must not
// spin on accept: it backs off, logs the condition once, keeps serving its
// connections, and accepts again once descriptors are free.
func TestAcceptOutOfDescriptorsBacksOff(t *testing.T) {
	const limit = 64
	cfgPath := writeConfig(t, t.TempDir())
	cmd := exec.Command("sh", "-c", "ulimit -n "+strconv.Itoa(limit)+" && exec \"$0\" serve --config \"$1\"", binPath, cfgPath)
	srv := startCmd(t, cmd)
	c := ringtest.Dial(t, srv.addr, client.Options{})
	ringtest.CreateTopic(t, c, "fd", 2)

	// Use up the server's descriptors, and some: the kernel completes the
	// extra connections (backlog) but the server cannot accept them.
	open := countFds(t, srv.cmd.Process.Pid)
	var conns []net.Conn
	for i := 0; i < limit-open+16; i++ {
		nc, err := net.Dial("tcp", srv.addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, nc)
	}
	deadline := time.Now().Add(20 * time.Second)
	for countFds(t, srv.cmd.Process.Pid) < limit {
		if time.Now().After(deadline) {
			t.Fatalf("server holds %d descriptors after 20s, want %d", countFds(t, srv.cmd.Process.Pid), limit)
		}
		<-time.After(20 * time.Millisecond)
	}

	// While out of descriptors the server must idle, not spin.
	cpu0 := cpuTime(t, srv.cmd.Process.Pid)
	wall0 := time.Now()
	<-time.After(2 * time.Second)
	cpu := cpuTime(t, srv.cmd.Process.Pid) - cpu0
	wall := time.Since(wall0)
	t.Logf("out of descriptors: server used %v CPU in %v", cpu, wall)
	if cpu > wall/4 {
		t.Errorf("server used %v CPU in %v while out of descriptors: accept spins", cpu, wall)
	}
	// The connection it has still works.
	if _, err := c.Metadata(ringtest.Ctx(t), &proto.MetadataRequest{}); err != nil {
		t.Fatalf("served connection while out of descriptors: %v", err)
	}
	for _, nc := range conns {
		nc.Close()
	}
	c2 := ringtest.Dial(t, srv.addr, client.Options{})
	if _, err := c2.Metadata(ringtest.Ctx(t), &proto.MetadataRequest{}); err != nil {
		t.Fatalf("new connection after descriptors were freed: %v", err)
	}
	// Logged once per episode: a second warning only after an accept
	// succeeded in between (a descriptor the server freed for a moment).
	logs := srv.logs.String()
	warned, recovered := strings.Count(logs, "cannot accept connections"), strings.Count(logs, "accepting connections again")
	if warned < 1 || warned > recovered+1 {
		t.Errorf("the descriptor shortage was logged %d times with %d recoveries between, want once per episode\n%s", warned, recovered, logs)
	}
}

// startCmd runs a prepared `ringmq serve` command and waits for its listen
// address (startServer for a custom command line).
func startCmd(t *testing.T, cmd *exec.Cmd) *server {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, exited: make(chan error, 1), logs: &syncBuilder{}}
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.logs.WriteString(line + "\n")
			if m := listenRE.FindStringSubmatch(line); m != nil {
				addrCh <- m[1]
			}
		}
		io.Copy(io.Discard, stderr)
		s.exited <- cmd.Wait()
	}()
	select {
	case s.addr = <-addrCh:
	case err := <-s.exited:
		t.Fatalf("server exited before serving: %v\n%s", err, s.logs.String())
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("server did not start in time")
	}
	t.Cleanup(func() { s.kill() })
	return s
}

func countFds(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// cpuTime is the user + system CPU time the process used so far.
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticksPerSecond = 100 // USER_HZ
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}
