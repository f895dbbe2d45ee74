package e2e

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestCLIServerFromEnv: RINGMQ_SERVER is --server's default, a list works
// when its first address is down, and --server still wins.
func TestCLIServerFromEnv(t *testing.T) {
	srv := startServer(t, writeConfig(t, t.TempDir()))
	down := deadAddr(t)
	env := []string{"RINGMQ_SERVER=" + down + "," + srv.addr}
	if res := runCLIEnv(t, env, "", "topic", "create", "e"); res.code != 0 {
		t.Fatalf("topic create with RINGMQ_SERVER=%s,%s: exit %d: %s", down, srv.addr, res.code, res.stderr)
	}
	if res := runCLIEnv(t, env, "v\n", "produce", "e"); res.code != 0 {
		t.Fatalf("produce: %s", res.stderr)
	}
	if res := runCLIEnv(t, env, "", "consume", "e", "-o", "earliest", "-e"); res.code != 0 || res.stdout != "v\n" {
		t.Fatalf("consume: exit %d, %q, %s", res.code, res.stdout, res.stderr)
	}
	checkOneErrorLine(t, runCLIEnv(t, []string{"RINGMQ_SERVER=" + srv.addr}, "", "topic", "list", "-s", down), "connection refused")
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestCLIConsumeFormats: format strings, the console-consumer options,
// exit at end, and JSON that keeps binary bytes and repeated headers.
func TestCLIConsumeFormats(t *testing.T) {
	srv := startServer(t, writeConfig(t, t.TempDir()))
	s := "--server=" + srv.addr
	mustCLI(t, "", "topic", "create", "f", "-p", "2", s)
	binary := "bin\xff\x00\xc3("
	out := mustCLI(t, "a\n"+binary+"\n", "produce", "f", "-p", "1", "-k", "user-1", "-H", "trace=x", "-H", "trace=y", "--print-offsets", s)
	if out != "partition 1 offset 0\npartition 1 offset 1\n" {
		t.Fatalf("--print-offsets printed %q", out)
	}

	if got := mustCLI(t, "", "consume", "f", "-o", "earliest", "-e", "-f", `%p/%o %k %v{hex} %H [%h]\n`, s); got != "1/0 user-1 61 2 [trace=x,trace=y]\n1/1 user-1 62696eff00c328 2 [trace=x,trace=y]\n" {
		t.Fatalf("format string printed %q", got)
	}
	if got := mustCLI(t, "", "consume", "f", "-o", "earliest", "-e", "-n", "1", "--print-key", "--print-offset", s); got != "Offset:0\tuser-1\ta\n" {
		t.Fatalf("--print-key --print-offset printed %q", got)
	}
	lines := splitLines(mustCLI(t, "", "consume", "f", "--from", "earliest", "-e", "-f", "json", "--encoding", "base64", s))
	if len(lines) != 2 {
		t.Fatalf("json: %d lines, want 2", len(lines))
	}
	var r jsonRecord
	if err := json.Unmarshal([]byte(lines[1]), &r); err != nil {
		t.Fatal(err)
	}
	value, err := base64.StdEncoding.DecodeString(r.Value)
	if err != nil || string(value) != binary {
		t.Fatalf("binary value came back as %q (%v), want %q", value, err, binary)
	}
	if len(r.Headers) != 2 || r.Headers[0].Key != "trace" || *r.Headers[0].Value != "eA==" || *r.Headers[1].Value != "eQ==" {
		t.Fatalf("headers %+v", r.Headers)
	}

	// -e on an empty partition, or from a time after the last record, exits at once with nothing.
	for _, args := range [][]string{{"-p", "0"}, {"--from", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, {"--from", "latest"}} {
		if got := mustCLI(t, "", append([]string{"consume", "f", "-e", s}, args...)...); got != "" {
			t.Fatalf("consume -e %q printed %q", args, got)
		}
	}
	if got := mustCLI(t, "", "consume", "f", "-e", "--from", "-1h", s); got != "a\n"+binary+"\n" {
		t.Fatalf("--from -1h printed %q", got)
	}
	checkOneErrorLine(t, runCLI(t, "", "consume", "f", "-f", "%q", s), `"%q" at byte 0 is not a verb`)
	checkOneErrorLine(t, runCLI(t, "", "consume", "f", "--from", "-15 minutes", s), "--from")
}

// TestCLITopicAlterAndAddPartitions: alter changes a config (Kafka's
// spelling accepted), bad keys are one error line, and new partitions
// take records at once.
func TestCLITopicAlterAndAddPartitions(t *testing.T) {
	srv := startServer(t, writeConfig(t, t.TempDir()))
	s := "--server=" + srv.addr
	mustCLI(t, "", "topic", "create", "a", "--partitions", "2", "-c", "retention.ms=3600000", s)
	if out := mustCLI(t, "", "topic", "alter", "a", "-c", "retention.ms=7200000", "-c", "flush=sync", s); out != "altered topic \"a\": flush=sync retention_ms=7200000\n" {
		t.Fatalf("topic alter printed %q", out)
	}
	desc := mustCLI(t, "", "topic", "describe", "a", s)
	if !strings.Contains(desc, "retention_ms = 7200000") || !strings.Contains(desc, "flush = sync") {
		t.Fatalf("describe after alter:\n%s", desc)
	}
	checkOneErrorLine(t, runCLI(t, "", "topic", "alter", "a", "-c", "segment_bytes=10", s), "segment_bytes = 10")
	checkOneErrorLine(t, runCLI(t, "", "topic", "alter", "a", "-c", "retention.hours=1", s), `unknown key "retention.hours"`)
	checkOneErrorLine(t, runCLI(t, "", "topic", "alter", "nope", "-c", "flush=sync", s), "does not exist (UNKNOWN_TOPIC)")
	checkOneErrorLine(t, runCLI(t, "", "topic", "alter", "a", s), "nothing to change")

	if out := mustCLI(t, "", "topic", "add-partitions", "a", "-n", "3", s); out != "topic \"a\": 5 partitions (was 2)\n" {
		t.Fatalf("add-partitions printed %q", out)
	}
	if out := mustCLI(t, "x\n", "produce", "a", "-p", "4", "--print-offsets", s); out != "partition 4 offset 0\n" {
		t.Fatalf("produce to a new partition printed %q", out)
	}
	if out := mustCLI(t, "", "consume", "a", "-p", "4", "-o", "earliest", "-e", s); out != "x\n" {
		t.Fatalf("consume from a new partition printed %q", out)
	}
	if out := mustCLI(t, "", "topic", "list", s); !regexpMatch(`(?m)^a\s+5\s+1$`, out) {
		t.Fatalf("topic list:\n%s", out)
	}
	checkOneErrorLine(t, runCLI(t, "", "topic", "add-partitions", "a", s), "--count must be")
	checkOneErrorLine(t, runCLI(t, "", "topic", "add-partitions", "a", "-n", "200000", s), "INVALID_PARTITIONS")
}

// TestCLINotRingmqServer: an HTTP or TLS-speaking address is reported as
// not a ringmq server, in one line, by every client command.
func TestCLINotRingmqServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	s := "--server=" + ln.Addr().String()
	for _, args := range [][]string{
		{"topic", "list"}, {"topic", "create", "t"}, {"produce", "t"}, {"consume", "t", "-n", "1"}, {"groups"},
	} {
		res := runCLI(t, "x\n", append(args, s)...)
		checkOneErrorLine(t, res, ln.Addr().String()+" is not a ringmq server: it answered like an HTTP server")
		if strings.Contains(res.stderr, "frame too large") {
			t.Fatalf("%q: %s", args, res.stderr)
		}
	}
}

// TestCLIServerGoesAway: a producer and a consumer whose server dies say
// so on stderr at once; the producer fails its records after --timeout
// with one line naming the cause.
func TestCLIServerGoesAway(t *testing.T) {
	srv := startServer(t, writeConfig(t, t.TempDir()))
	s := "--server=" + srv.addr
	mustCLI(t, "", "topic", "create", "d", s)

	prod := startCLI(t, "produce", "d", "--print-offsets", "--timeout", "3s", s)
	cons := startCLI(t, "consume", "d", "-o", "earliest", s)
	io.WriteString(prod.stdin, "first\n")
	if l := prod.line(t); l != "partition 0 offset 0" {
		t.Fatalf("produce printed %q", l)
	}
	if l := cons.line(t); l != "first" {
		t.Fatalf("consume printed %q", l)
	}
	srv.stop(t, syscall.SIGKILL)
	io.WriteString(prod.stdin, "second\n")
	prod.stdin.Close()
	start := time.Now()
	code, stderr := prod.wait(t)
	lines := splitLines(stderr)
	if code == 0 || len(lines) != 2 || !strings.Contains(lines[0], "retrying") ||
		!strings.Contains(lines[1], "1 of 2 records were not acknowledged") || !strings.Contains(lines[1], "--timeout 3s") {
		t.Fatalf("produce after the server died: exit %d, stderr:\n%s", code, stderr)
	}
	if waited := time.Since(start); waited > 60*time.Second {
		t.Fatalf("produce took %v to give up with --timeout 3s", waited)
	}
	cons.waitStderr(t, "retrying")
	cons.cmd.Process.Signal(syscall.SIGINT)
	if code, stderr := cons.wait(t); code != 0 {
		t.Fatalf("consume after SIGINT: exit %d\n%s", code, stderr)
	}
}

// cliProc is a running ringmq client command.
type cliProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *syncBuffer
}

func startCLI(t *testing.T, args ...string) *cliProc {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	p := &cliProc{cmd: cmd, stderr: &syncBuffer{}, lines: make(chan string, 100)}
	cmd.Stderr = p.stderr
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return p
}

// line returns the next stdout line.
func (p *cliProc) line(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatalf("%s: stdout closed; stderr:\n%s", p.cmd.Args, p.stderr.String())
		}
		return l
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: no line in time; stderr:\n%s", p.cmd.Args, p.stderr.String())
		return ""
	}
}

// waitStderr polls stderr until it contains want.
func (p *cliProc) waitStderr(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.stderr.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: stderr never said %q:\n%s", p.cmd.Args, want, p.stderr.String())
		}
		<-time.After(20 * time.Millisecond)
	}
}

// wait waits for the exit and returns its status and stderr.
func (p *cliProc) wait(t *testing.T) (int, string) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		for range p.lines { // drain stdout so the process never blocks on it
		}
		done <- p.cmd.Wait()
	}()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		p.cmd.Process.Kill()
		t.Fatalf("%s did not exit; stderr:\n%s", p.cmd.Args, p.stderr.String())
	}
	return p.cmd.ProcessState.ExitCode(), p.stderr.String()
}

// TestCLIVersionHelpCompletion: version, help CMD, did you mean, and bash
// completion run through a real bash when there is one.
func TestCLIVersionHelpCompletion(t *testing.T) {
	out := mustCLI(t, "", "version")
	if !strings.HasPrefix(out, "ringmq ") || !strings.Contains(out, "commit ") || !strings.Contains(out, " go1.") {
		t.Fatalf("version printed %q", out)
	}
	if again := mustCLI(t, "", "--version"); again != out {
		t.Fatalf("--version %q differs from version %q", again, out)
	}
	if out := mustCLI(t, "", "help", "consume"); !strings.Contains(out, "-e, --exit-at-end") || !strings.HasPrefix(out, "usage: ringmq consume") {
		t.Fatalf("help consume:\n%s", out)
	}
	if out := mustCLI(t, "", "help", "topic", "add-partitions"); !strings.Contains(out, "-n, --count N") {
		t.Fatalf("help topic add-partitions:\n%s", out)
	}
	checkOneErrorLine(t, runCLI(t, "", "consme", "t"), `did you mean "consume"?`)
	checkOneErrorLine(t, runCLI(t, "", "topic", "craete", "t"), `did you mean "create"?`)
	checkOneErrorLine(t, runCLI(t, "", "consume", "t", "--exit-at-nd"), "did you mean --exit-at-end?")

	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash: the completion script is not run")
	}
	script := filepath.Join(t.TempDir(), "ringmq.bash")
	if err := os.WriteFile(script, []byte(mustCLI(t, "", "completion", "bash")), 0o644); err != nil {
		t.Fatal(err)
	}
	for words, want := range map[string][]string{
		"ringmq topic a":        {"alter", "add-partitions"},
		"ringmq consume t --pr": {"--print-headers", "--print-key", "--print-offset", "--print-partition", "--print-timestamp"},
	} {
		cmd := exec.Command(bash, "--norc", "-c", fmt.Sprintf(`source %q; COMP_WORDS=(%s); COMP_CWORD=%d; _ringmq; printf '%%s\n' "${COMPREPLY[@]}"`,
			script, words, strings.Count(words, " ")))
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(binPath)+":"+os.Getenv("PATH"))
		got, err := cmd.Output()
		if err != nil {
			t.Fatalf("bash completion of %q: %v", words, err)
		}
		if lines := splitLines(string(got)); !slices.Equal(lines, want) {
			t.Errorf("bash completion of %q = %q, want %q", words, lines, want)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and polling readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestMakeRunArgs: make run hands ARGS (and CONFIG) to ringmq serve.
func TestMakeRunArgs(t *testing.T) {
	mk, err := exec.LookPath("make")
	if err != nil {
		t.Skip("no make")
	}
	cmd := exec.Command(mk, "-n", "--no-print-directory", "-C", "..", "run", "ARGS=--listen 127.0.0.1:9500 --metrics-listen 127.0.0.1:9501", "CONFIG=other.toml")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make -n run: %v", err)
	}
	lines := splitLines(string(out))
	if want := "bin/ringmq serve --config other.toml --listen 127.0.0.1:9500 --metrics-listen 127.0.0.1:9501"; lines[len(lines)-1] != want {
		t.Fatalf("make run would run %q, want %q", lines[len(lines)-1], want)
	}
}
