package chaos

// The chaos cluster: three `ringmq serve` processes on 127.0.0.1, each on
// its own lazyfs mount, every link through a proxy. Node i listens on a
// port of its own; it knows node j (j ≠ i) by the address of the proxy
// i→j (its own --peers list) and advertises its client proxy, which is
// how clients and the controller's records name it.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/e2e/chaos/lazyfs"
	"github.com/ringmq/ringmq/proto"
)

// logBuf is a node's log, written by its stderr reader.
type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) WriteString(s string) {
	l.mu.Lock()
	l.b.WriteString(s)
	l.mu.Unlock()
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type chaosNode struct {
	id      int
	listen  string // its own client port (reached only through proxies)
	metrics string // metrics and /readyz, not proxied
	mnt     string // the lazyfs mount point: its data directory
	fs      *lazyfs.FS
	config  string
	peers   string // its --peers: the others through proxies, itself as its client proxy
	logs    *logBuf
	runs    int

	cmd    *exec.Cmd
	exited chan error
	paused bool
}

type chaosCluster struct {
	t       testing.TB
	bin     string
	env     []string // added to the nodes' environment
	nodes   []*chaosNode
	clients []*proxy          // clients[i]: clients to node i+1
	links   map[[2]int]*proxy // links[{a, b}]: node a dialing node b
}

const startTimeout = 90 * time.Second

// startChaosCluster mounts, proxies and starts n nodes and waits until
// the controller counts them all alive. Everything is undone when the
// test ends (processes killed, mounts detached), failed or not.
func startChaosCluster(t testing.TB, bin string, env []string, n int, config string) *chaosCluster {
	t.Helper()
	c := &chaosCluster{t: t, bin: bin, env: env, links: map[[2]int]*proxy{}}
	base := t.TempDir()
	ports, err := freePorts(2 * n)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		nd := &chaosNode{id: i + 1, logs: &logBuf{}, fs: lazyfs.New(),
			listen:  fmt.Sprintf("127.0.0.1:%d", ports[2*i]),
			metrics: fmt.Sprintf("127.0.0.1:%d", ports[2*i+1]),
			mnt:     filepath.Join(base, fmt.Sprintf("node%d", i+1)),
			config:  filepath.Join(base, fmt.Sprintf("node%d.toml", i+1)),
		}
		if err := os.MkdirAll(nd.mnt, 0o755); err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, nd)
		c.clients = append(c.clients, startProxy(t, fmt.Sprintf("client→%d", i+1), nd.listen))
	}
	for _, a := range c.nodes {
		for _, b := range c.nodes {
			if a != b {
				c.links[[2]int{a.id, b.id}] = startProxy(t, fmt.Sprintf("%d→%d", a.id, b.id), b.listen)
			}
		}
	}
	for _, a := range c.nodes {
		var ps []string
		for _, b := range c.nodes {
			addr := c.clients[b.id-1].addr()
			if a != b {
				addr = c.links[[2]int{a.id, b.id}].addr()
			}
			ps = append(ps, fmt.Sprintf("%d@%s", b.id, addr))
		}
		a.peers = strings.Join(ps, ",")
		// node_id and peers in the file, not as flags: the file is
		// validated on its own, and min_insync_replicas above 1 needs
		// the peers there.
		text := config + fmt.Sprintf("node_id = %d\npeers = [\"%s\"]\n", a.id, strings.Join(ps, `", "`))
		if err := os.WriteFile(a.config, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Registered after the proxies' cleanups, so it runs before them:
	// processes first, then mounts.
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			nd.kill()
			nd.fs.LazyUnmount()
		}
		if t.Failed() {
			c.printLogs()
		}
	})
	for _, nd := range c.nodes {
		if err := nd.fs.Mount(nd.mnt); err != nil {
			t.Fatal(err)
		}
		if err := c.launch(nd); err != nil {
			t.Fatal(err)
		}
	}
	for _, nd := range c.nodes {
		if err := nd.waitReady(startTimeout); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.waitFormed(startTimeout); err != nil {
		t.Fatal(err)
	}
	return c
}

// chaosConfig is every node's config file: one reactor per node (the
// machine is shared), small segments, the cluster's timeouts short enough
// for failover within a fault's duration; the periodic flush every
// flushInterval; cluster adds lines to [cluster] (the last table: each
// node's id and peers follow).
func chaosConfig(flushInterval time.Duration, cluster string) string {
	return fmt.Sprintf(chaosConfigFormat, flushInterval.String(), cluster)
}

const chaosConfigFormat = `[server]
shutdown_timeout = "20s"

[reactor]
cores = 1
recv_buffers = 64
pin_threads = false

[storage]
segment_bytes = 1048576
flush_interval = %q

[cluster]
election_timeout = "1s"
session_timeout = "3s"
%s`

// bootstrap is every client proxy, for clients' bootstrap lists.
func (c *chaosCluster) bootstrap() string {
	a := make([]string, len(c.clients))
	for i, p := range c.clients {
		a[i] = p.addr()
	}
	return strings.Join(a, ",")
}

func (c *chaosCluster) launch(nd *chaosNode) error {
	nd.runs++
	cmd := exec.Command(c.bin, "serve", "--config", nd.config, "--listen", nd.listen, "--metrics-listen", nd.metrics, "--data-dir", nd.mnt)
	cmd.Env = append(os.Environ(), c.env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return err
	}
	nd.logs.WriteString(fmt.Sprintf("=== node %d run %d: pid %d\n", nd.id, nd.runs, cmd.Process.Pid))
	nd.cmd, nd.exited, nd.paused = cmd, make(chan error, 1), false
	exited := nd.exited
	go func() {
		b := make([]byte, 32<<10)
		for {
			k, err := stderr.Read(b)
			nd.logs.WriteString(string(b[:k]))
			if err != nil {
				break
			}
		}
		exited <- cmd.Wait()
	}()
	return nil
}

// waitReady polls /readyz until 200, for at most timeout; a node that
// exits first fails it.
func (nd *chaosNode) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: 2 * time.Second}
	last := "no answer"
	for time.Now().Before(deadline) {
		select {
		case err := <-nd.exited:
			nd.exited <- err
			return fmt.Errorf("node %d exited before it was ready: %v", nd.id, err)
		default:
		}
		resp, err := hc.Get("http://" + nd.metrics + "/readyz")
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
	return fmt.Errorf("node %d not ready within %v (last /readyz: %s)", nd.id, timeout, last)
}

// waitFormed waits until the controller leader counts every running node
// alive.
func (c *chaosCluster) waitFormed(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	a, err := client.NewAdmin(c.bootstrap(), client.Options{ClientID: "chaos-harness"})
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
			for _, nd := range c.nodes {
				if nd.cmd != nil && !alive[c.clients[nd.id-1].addr()] {
					formed, last = false, fmt.Sprintf("node %d not alive in %+v", nd.id, st.Nodes)
				}
			}
			if formed {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond) // polling interval, not synchronization
	}
	return fmt.Errorf("cluster not formed within %v: %s", timeout, last)
}

// kill sends SIGKILL (after SIGCONT if paused) and waits for the exit.
func (nd *chaosNode) kill() {
	if nd.cmd == nil {
		return
	}
	_ = nd.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-nd.exited:
	case <-time.After(30 * time.Second):
		nd.logs.WriteString("=== did not exit within 30s of SIGKILL\n")
	}
	nd.cmd, nd.paused = nil, false
	nd.logs.WriteString(fmt.Sprintf("=== node %d killed\n", nd.id))
}

// powerLoss kills node's process and drops every write its file system
// had not made durable, as a power cut at that moment would.
func (c *chaosCluster) powerLoss(nd *chaosNode) error {
	nd.kill()
	unsynced := nd.fs.Unsynced()
	if err := nd.fs.Unmount(); err != nil {
		return err
	}
	if err := nd.fs.Drop(); err != nil {
		return err
	}
	nd.logs.WriteString(fmt.Sprintf("=== node %d power loss: %d unsynced bytes of pages dropped\n", nd.id, unsynced))
	return nd.fs.Mount(nd.mnt)
}

// restart starts a killed node again and waits until it is ready. Its
// port may still be held for a moment after the kill (the ring's teardown
// finishes after the process exited): a start that could not listen is
// tried again once the port is free, for at most 30 s.
func (c *chaosCluster) restart(nd *chaosNode) error {
	if nd.cmd != nil {
		return nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := c.launch(nd); err != nil {
			return err
		}
		err := nd.waitReady(startTimeout)
		if err == nil || !strings.Contains(nd.lastRunLogs(), "address already in use") || time.Now().After(deadline) {
			return err
		}
		nd.kill()
		for time.Now().Before(deadline) {
			ln, lerr := net.Listen("tcp", nd.listen)
			if lerr == nil {
				ln.Close()
				break
			}
			time.Sleep(50 * time.Millisecond) // polling interval until the port is free
		}
	}
}

// lastRunLogs is what the node's current (or last) run logged.
func (nd *chaosNode) lastRunLogs() string {
	s := nd.logs.String()
	if i := strings.LastIndex(s, "=== node "); i >= 0 {
		return s[i:]
	}
	return s
}

func (nd *chaosNode) pause() {
	if nd.cmd != nil && !nd.paused {
		_ = nd.cmd.Process.Signal(syscall.SIGSTOP)
		nd.paused = true
	}
}

func (nd *chaosNode) resume() {
	if nd.cmd != nil && nd.paused {
		_ = nd.cmd.Process.Signal(syscall.SIGCONT)
		nd.paused = false
	}
}

// isolate blocks every link between node id and the others, both ways
// (clients still reach it).
func (c *chaosCluster) isolate(id int) {
	for k, p := range c.links {
		if k[0] == id || k[1] == id {
			p.block(true, true)
		}
	}
}

// dropOneWay makes node from's bytes toward node to vanish (held), and
// nothing else: on the link from→to the requests, on to→from the answers.
func (c *chaosCluster) dropOneWay(from, to int) {
	c.links[[2]int{from, to}].block(true, false)
	c.links[[2]int{to, from}].block(false, true)
}

// heal lifts every network fault and resumes paused nodes.
func (c *chaosCluster) heal() {
	for _, p := range c.links {
		p.heal()
	}
	for _, p := range c.clients {
		p.heal()
	}
	for _, nd := range c.nodes {
		nd.resume()
	}
}

// partitionLeaders maps each partition of topic to its leader's node id
// (proto.NoNode when offline), from the controller's view.
func (c *chaosCluster) partitionLeaders(ctx context.Context, topic string) (map[uint32]uint32, error) {
	a, err := client.NewAdmin(c.bootstrap(), client.Options{ClientID: "chaos-harness"})
	if err != nil {
		return nil, err
	}
	defer a.Close()
	ti, err := a.DescribeTopic(ctx, topic)
	if err != nil {
		return nil, err
	}
	m := map[uint32]uint32{}
	for _, p := range ti.Partitions {
		m[p.Partition] = p.Leader
	}
	return m, nil
}

func (c *chaosCluster) printLogs() {
	for _, nd := range c.nodes {
		lines := strings.Split(strings.TrimRight(nd.logs.String(), "\n"), "\n")
		if len(lines) > 150 {
			lines = append([]string{fmt.Sprintf("... %d lines before", len(lines)-150)}, lines[len(lines)-150:]...)
		}
		c.t.Logf("node %d (%s, metrics %s) logs:\n%s", nd.id, nd.listen, nd.metrics, strings.Join(lines, "\n"))
	}
}

// freePorts returns n distinct free ports of 127.0.0.1 (bound with port
// 0, then released).
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

var errNotRoot = errors.New("the chaos harness mounts FUSE file systems: it needs root and /dev/fuse")

// canMount says whether this machine lets the test mount lazyfs.
func canMount() error {
	if os.Geteuid() != 0 {
		return errNotRoot
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return fmt.Errorf("%w: %v", errNotRoot, err)
	}
	return nil
}
