package e2e

// A harness for multi-node tests: N `ringmq serve` processes of the binary
// TestMain built, each started as the README starts a cluster node
// (--node-id, --peers, --listen, --metrics-listen, --data-dir), on free
// ports of 127.0.0.1. A node can be killed with SIGKILL and restarted on
// the same ports and data directory. Every wait is bounded; the logs of
// every node (all its runs) are printed when the test fails.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

// clusterOptions shape a test cluster. Zero fields take the defaults beside
// them.
type clusterOptions struct {
	Nodes           int           // 3
	Cores           int           // 1 reactor per node (the machine is shared)
	ElectionTimeout time.Duration // 1s (cluster.election_timeout)
	SessionTimeout  time.Duration // 3s (cluster.session_timeout)
	StartTimeout    time.Duration // 60s: a node serves and is ready within it
	ExtraConfig     string        // appended to every node's config file (TOML)
	ServerConfig    string        // added to every node's [server] table (TOML)
	SASL            client.SASL   // the harness's own clients authenticate as this
	ClientTLS       *tls.Config   // how the harness's own connections reach the nodes
}

func (o clusterOptions) withDefaults() clusterOptions {
	if o.Nodes <= 0 {
		o.Nodes = 3
	}
	if o.Cores <= 0 {
		o.Cores = 1
	}
	if o.ElectionTimeout <= 0 {
		o.ElectionTimeout = time.Second
	}
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = 3 * time.Second
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 60 * time.Second
	}
	return o
}

// testCluster is N ringmq processes forming one cluster.
type testCluster struct {
	t     testing.TB
	opts  clusterOptions
	nodes []*clusterNode // nodes[i] has node id i+1
}

// clusterNode is one node: its fixed ports and directory, and the process
// of its current run (nil while it is down).
type clusterNode struct {
	id      int
	addr    string // client address, 127.0.0.1:P
	metrics string // metrics address, 127.0.0.1:M
	dir     string // data directory, kept across restarts
	config  string // config file
	logs    *syncBuilder
	runs    int

	cmd    *exec.Cmd
	exited chan error // the current run's exit status
}

// startCluster starts opts.Nodes nodes and waits until each is ready and
// the controller counts every node alive (waitFormed). If a
// port picked for it was taken meanwhile, the whole cluster starts again
// on fresh ports (at most 3 times). The processes are killed when the test
// ends.
func startCluster(t testing.TB, opts clusterOptions) *testCluster {
	t.Helper()
	opts = opts.withDefaults()
	c := &testCluster{t: t, opts: opts}
	// Before the cleanup that kills the nodes, so that it runs after it
	// (cleanups run last-in first-out): no node writes while it is removed.
	base := t.TempDir()
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.killProcess()
		}
		if t.Failed() {
			c.printLogs()
		}
	})
	for attempt := 1; ; attempt++ {
		err := c.tryStart(filepath.Join(base, fmt.Sprintf("try%d", attempt)))
		if err == nil {
			return c
		}
		for _, n := range c.nodes {
			n.killProcess()
		}
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			c.printLogs()
			t.Fatalf("start cluster: %v", err)
		}
		t.Logf("start cluster: %v; again on other ports", err)
	}
}

// errPortTaken: a node could not listen on the port picked for it.
var errPortTaken = errors.New("port taken")

// tryStart picks ports, writes each node's config and starts all nodes,
// then waits for each to be ready.
func (c *testCluster) tryStart(base string) error {
	ports, err := freePorts(2 * c.opts.Nodes)
	if err != nil {
		return err
	}
	c.nodes = make([]*clusterNode, c.opts.Nodes)
	for i := range c.nodes {
		n := &clusterNode{id: i + 1, logs: &syncBuilder{},
			addr:    fmt.Sprintf("127.0.0.1:%d", ports[2*i]),
			metrics: fmt.Sprintf("127.0.0.1:%d", ports[2*i+1]),
			dir:     filepath.Join(base, fmt.Sprintf("node%d", i+1)),
		}
		if err := os.MkdirAll(n.dir, 0o755); err != nil {
			return err
		}
		n.config = filepath.Join(base, fmt.Sprintf("node%d.toml", i+1))
		if err := os.WriteFile(n.config, []byte(c.configText()), 0o644); err != nil {
			return err
		}
		c.nodes[i] = n
	}
	for _, n := range c.nodes {
		if err := c.launch(n); err != nil {
			return err
		}
	}
	for _, n := range c.nodes {
		if err := c.waitReady(n, c.opts.StartTimeout); err != nil {
			return err
		}
	}
	return c.waitFormed(c.opts.StartTimeout)
}

// waitFormed waits until a node names a controller leader that counts
// every running node alive (registered, not fenced), for at most timeout.
func (c *testCluster) waitFormed(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var running []string
	for _, n := range c.nodes {
		if n.cmd != nil {
			running = append(running, n.addr)
		}
	}
	a, err := client.NewAdmin(strings.Join(running, ","), client.Options{ClientID: "e2e-harness", SASL: c.opts.SASL, TLS: c.opts.ClientTLS})
	if err != nil {
		return err
	}
	defer a.Close()
	last := "no answer"
	for ctx.Err() == nil {
		st, err := a.ClusterStatus(ctx)
		switch {
		case err != nil:
			last = err.Error()
		case st.ControllerID == proto.NoNode:
			last = "no controller leader"
		default:
			alive := map[string]bool{}
			for _, n := range st.Nodes {
				alive[n.Addr] = n.Alive
			}
			formed := true
			for _, addr := range running {
				if !alive[addr] {
					formed, last = false, fmt.Sprintf("%s not alive in %+v", addr, st.Nodes)
				}
			}
			if formed {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronization
	}
	return fmt.Errorf("cluster not formed within %v: %s", timeout, last)
}

// configText is every node's config file; the flags add what differs.
func (c *testCluster) configText() string {
	return fmt.Sprintf(`[server]
shutdown_timeout = "20s"
%s

[reactor]
cores = %d
recv_buffers = 64
pin_threads = false

[storage]
segment_bytes = 4194304
flush_interval = "100ms"

[cluster]
election_timeout = %q
session_timeout = %q
%s`, c.opts.ServerConfig, c.opts.Cores, c.opts.ElectionTimeout.String(), c.opts.SessionTimeout.String(), c.opts.ExtraConfig)
}

// peers is the --peers value: every node's id and client address.
func (c *testCluster) peers() string {
	var b strings.Builder
	for i, n := range c.nodes {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d@%s", n.id, n.addr)
	}
	return b.String()
}

// addrs is every node's client address, comma-separated (for --server and
// the client's bootstrap list).
func (c *testCluster) addrs() string {
	a := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		a[i] = n.addr
	}
	return strings.Join(a, ",")
}

// node returns the node with id (from 1).
func (c *testCluster) node(id int) *clusterNode {
	c.t.Helper()
	if id < 1 || id > len(c.nodes) {
		c.t.Fatalf("no node %d in a cluster of %d", id, len(c.nodes))
	}
	return c.nodes[id-1]
}

// launch starts n's process and returns once it is started; its stderr
// goes to n.logs.
func (c *testCluster) launch(n *clusterNode) error {
	n.runs++
	cmd := exec.Command(binPath, "serve", "--config", n.config,
		"--node-id", fmt.Sprint(n.id), "--peers", c.peers(),
		"--listen", n.addr, "--metrics-listen", n.metrics, "--data-dir", n.dir)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return err
	}
	n.logs.WriteString(fmt.Sprintf("=== node %d run %d: pid %d: %s\n", n.id, n.runs, cmd.Process.Pid, strings.Join(cmd.Args, " ")))
	n.cmd, n.exited = cmd, make(chan error, 1)
	exited := n.exited
	go func() {
		b := make([]byte, 32<<10)
		for {
			k, err := stderr.Read(b)
			n.logs.WriteString(string(b[:k]))
			if err != nil {
				break
			}
		}
		exited <- cmd.Wait()
	}()
	return nil
}

// waitReady waits until n answers 200 on /readyz, for at most timeout. A
// node that exits first fails the wait (errPortTaken if it could not
// listen).
func (c *testCluster) waitReady(n *clusterNode, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: 2 * time.Second}
	last := "no answer"
	for time.Now().Before(deadline) {
		select {
		case err := <-n.exited:
			n.exited <- err // later waits see it too
			if strings.Contains(n.lastRunLogs(), "address already in use") {
				return fmt.Errorf("node %d: %w: %v", n.id, errPortTaken, err)
			}
			return fmt.Errorf("node %d exited before it was ready: %v", n.id, err)
		default:
		}
		resp, err := hc.Get("http://" + n.metrics + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronization
	}
	return fmt.Errorf("node %d not ready within %v (last /readyz: %s)", n.id, timeout, last)
}

// kill sends SIGKILL to node id and waits until it has exited.
func (c *testCluster) kill(id int) {
	c.t.Helper()
	n := c.node(id)
	if n.cmd == nil {
		c.t.Fatalf("kill node %d: it is not running", id)
	}
	n.killProcess()
	n.logs.WriteString(fmt.Sprintf("=== node %d killed (SIGKILL)\n", id))
}

// restart starts node id again on its ports and data directory and waits
// until it is ready and counted alive by the controller. A port taken meanwhile by another process is retried
// (at most 5 times, a second apart) rather than moved: the other nodes
// know the node by its address.
func (c *testCluster) restart(id int) {
	c.t.Helper()
	n := c.node(id)
	if n.cmd != nil {
		c.t.Fatalf("restart node %d: it is running; kill it first", id)
	}
	for attempt := 1; ; attempt++ {
		if err := c.launch(n); err != nil {
			c.t.Fatalf("restart node %d: %v", id, err)
		}
		err := c.waitReady(n, c.opts.StartTimeout)
		if err == nil {
			if err := c.waitFormed(c.opts.StartTimeout); err != nil {
				c.t.Fatalf("restart node %d: %v", id, err)
			}
			return
		}
		n.killProcess()
		if !errors.Is(err, errPortTaken) || attempt == 5 {
			c.t.Fatalf("restart node %d: %v", id, err)
		}
		time.Sleep(time.Second) // waits for the port's holder to go, bounded by the attempts
	}
}

// running reports whether node id's process is up.
func (c *testCluster) running(id int) bool { return c.node(id).cmd != nil }

// killProcess kills n's process (if any) and waits for it, at most 30s.
func (n *clusterNode) killProcess() {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-n.exited:
	case <-time.After(30 * time.Second):
		n.logs.WriteString("=== did not exit within 30s of SIGKILL\n")
	}
	n.cmd = nil
}

// lastRunLogs is what the node's current (or last) run logged.
func (n *clusterNode) lastRunLogs() string {
	s := n.logs.String()
	if i := strings.LastIndex(s, "=== node "); i >= 0 {
		return s[i:]
	}
	return s
}

// printLogs prints every node's logs, all its runs, the last 200 lines of
// each node.
func (c *testCluster) printLogs() {
	for _, n := range c.nodes {
		lines := strings.Split(strings.TrimRight(n.logs.String(), "\n"), "\n")
		if len(lines) > 200 {
			lines = append([]string{fmt.Sprintf("... %d lines before", len(lines)-200)}, lines[len(lines)-200:]...)
		}
		c.t.Logf("node %d (%s, metrics %s, data %s) logs:\n%s", n.id, n.addr, n.metrics, n.dir, strings.Join(lines, "\n"))
	}
}

// waitRefused waits until addr refuses TCP connections, for at most
// timeout.
func waitRefused(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return nil
		}
		conn.Close()
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still accepts connections after %v", addr, timeout)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}

// freePorts returns n distinct free TCP ports of 127.0.0.1: each is bound
// with port 0 and released. Another process may take one before the node
// binds it; startCluster then starts again on fresh ports.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// TestClusterHarness: three nodes start and become ready, one is killed
// with SIGKILL (its client port then refuses connections) and comes back
// on the same address and data directory.
func TestClusterHarness(t *testing.T) { runClusterHarness(t, clusterOptions{}) }

// TestClusterHarnessSCRAM is the harness with SCRAM and authorization on:
// the brokers authenticate to each other, also after the restart.
func TestClusterHarnessSCRAM(t *testing.T) {
	runClusterHarness(t, clusterOptions{SASL: client.SASL{User: "broker", Password: "broker-pw"},
		ServerConfig: "sasl = \"scram\"\nauthorization = \"on\"\nbroker_user = \"broker\"\nbroker_password = \"broker-pw\"\n"})
}

func runClusterHarness(t *testing.T, opts clusterOptions) {
	c := startCluster(t, opts)
	if got := len(strings.Split(c.addrs(), ",")); got != 3 {
		t.Fatalf("addrs %q: %d addresses, want 3", c.addrs(), got)
	}
	c.kill(2)
	if c.running(2) {
		t.Fatal("node 2 still marked running after kill")
	}
	// The ring's teardown (and with it the listening socket) may finish
	// a moment after the process has exited.
	if err := waitRefused(c.node(2).addr, 10*time.Second); err != nil {
		t.Fatalf("node 2 after SIGKILL: %v", err)
	}
	c.restart(2)
	for id := 1; id <= 3; id++ {
		if err := c.waitReady(c.node(id), 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.node(2); n.runs != 2 || !strings.Contains(n.logs.String(), "=== node 2 killed") {
		t.Fatalf("node 2: %d runs, logs lack the kill mark", n.runs)
	}
}
