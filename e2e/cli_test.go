package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cliResult is one run of the ringmq binary.
type cliResult struct {
	stdout, stderr string
	code           int
}

// runCLI runs `ringmq args...` with stdin and returns its output and exit
// status.
func runCLI(t testing.TB, stdin string, args ...string) cliResult {
	t.Helper()
	return runCLIEnv(t, nil, stdin, args...)
}

// runCLIEnv is runCLI with env added to the environment.
func runCLIEnv(t testing.TB, env []string, stdin string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := cliResult{stdout: out.String(), stderr: errb.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("ringmq %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("ringmq %s: did not finish in time; stderr:\n%s", strings.Join(args, " "), res.stderr)
	}
	return res
}

// mustCLI runs ringmq and fails the test unless it exits 0.
func mustCLI(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	res := runCLI(t, stdin, args...)
	if res.code != 0 {
		t.Fatalf("ringmq %s: exit %d\nstderr: %s", strings.Join(args, " "), res.code, res.stderr)
	}
	return res.stdout
}

// seqLines is the output of `seq 1 n`.
func seqLines(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString(strconv.Itoa(i))
		b.WriteByte('\n')
	}
	return b.String()
}

// checkAllOnce checks that lines are the numbers 1..n, each exactly once.
func checkAllOnce(t *testing.T, lines []string, n int) {
	t.Helper()
	seen := make([]bool, n+1)
	for _, l := range lines {
		v, err := strconv.Atoi(l)
		if err != nil || v < 1 || v > n {
			t.Fatalf("unexpected line %q", l)
		}
		if seen[v] {
			t.Fatalf("line %d printed twice", v)
		}
		seen[v] = true
	}
	if len(lines) != n {
		t.Fatalf("%d lines, want %d", len(lines), n)
	}
}

func splitLines(s string) []string {
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

type jsonRecord struct {
	Topic     string       `json:"topic"`
	Partition uint32       `json:"partition"`
	Offset    uint64       `json:"offset"`
	Timestamp int64        `json:"timestamp"`
	Key       *string      `json:"key"`
	Value     string       `json:"value"`
	Headers   []jsonHeader `json:"headers"`
}

type jsonHeader struct {
	Key   string  `json:"key"`
	Value *string `json:"value"`
}

func TestCLIProduceConsumeGroups(t *testing.T) {
	srv := startServer(t, writeConfig(t, t.TempDir()))
	s := "--server=" + srv.addr
	const n = 100000
	out := mustCLI(t, "", "topic", "create", "t", "--partitions", "3", s)
	if !strings.Contains(out, `created topic "t" with 3 partitions`) {
		t.Fatalf("topic create printed %q", out)
	}
	mustCLI(t, seqLines(n), "produce", "t", "--acks", "all", s)

	if out := mustCLI(t, "", "topic", "list", s); !regexpMatch(`(?m)^t\s+3\s+100000$`, out) {
		t.Fatalf("topic list:\n%s", out)
	}
	if out := mustCLI(t, "", "topic", "describe", "t", s); !strings.Contains(out, "topic t: 3 partitions") {
		t.Fatalf("topic describe:\n%s", out)
	}

	t.Run("text", func(t *testing.T) {
		checkAllOnce(t, splitLines(mustCLI(t, "", "consume", "t", "--from", "earliest", "-n", strconv.Itoa(n), s)), n)
	})
	t.Run("json per-partition order", func(t *testing.T) {
		out := mustCLI(t, "", "consume", "t", "--from", "earliest", "-n", strconv.Itoa(n), "--format", "json", s)
		checkPartitionOrder(t, splitLines(out), n)
	})
	t.Run("group resumes from its commit", func(t *testing.T) {
		first := splitLines(mustCLI(t, "", "consume", "t", "--group", "g", "--from", "earliest", "-n", strconv.Itoa(n/2), s))
		second := splitLines(mustCLI(t, "", "consume", "t", "--group", "g", "--from", "earliest", "-n", strconv.Itoa(n/2), s))
		if len(first) != n/2 || len(second) != n/2 {
			t.Fatalf("got %d then %d lines, want %d each", len(first), len(second), n/2)
		}
		checkAllOnce(t, append(first, second...), n)
		out := mustCLI(t, "", "groups", "describe", "g", s)
		if !strings.Contains(out, "state empty") || strings.Count(out, "\nt ") != 3 ||
			!regexpMatch(`(?m)^t\s+0\s+\d+\s+\d+\s+0\s+-$`, out) || regexpMatch(`(?m)\s[1-9]\d*\s+-$`, out) {
			t.Fatalf("groups g after reading everything (want 3 partitions, lag 0):\n%s", out)
		}
	})
	t.Run("start positions", func(t *testing.T) {
		for from, want := range map[string][]uint64{"7": {7, 8}, "@0": {0, 1}, "earliest": {0, 1}} {
			out := splitLines(mustCLI(t, "", "consume", "t", "--partition", "1", "--from", from, "-n", "2", "--format", "json", s))
			var got []uint64
			for _, l := range out {
				var r jsonRecord
				if err := json.Unmarshal([]byte(l), &r); err != nil || r.Partition != 1 {
					t.Fatalf("--from %s: line %q: %v", from, l, err)
				}
				got = append(got, r.Offset)
			}
			if !slices.Equal(got, want) {
				t.Errorf("--from %s: offsets %v, want %v", from, got, want)
			}
		}
	})
	t.Run("key separator", func(t *testing.T) {
		mustCLI(t, "", "topic", "create", "k", s)
		mustCLI(t, "alpha=1\nbeta=2=3\nnokey\n", "produce", "k", "--key-separator", "=", s)
		out := splitLines(mustCLI(t, "", "consume", "k", "--from", "earliest", "-n", "3", "--format", "json", s))
		var got []string
		for _, l := range out {
			var r jsonRecord
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			key := "<null>"
			if r.Key != nil {
				key = *r.Key
			}
			got = append(got, key+"|"+r.Value)
		}
		if want := []string{"alpha|1", "beta|2=3", "<null>|nokey"}; !slices.Equal(got, want) {
			t.Fatalf("records %q, want %q", got, want)
		}
	})
}

// checkPartitionOrder checks JSON records: the values are 1..n once each,
// and within each partition the offsets and the values increase.
func checkPartitionOrder(t *testing.T, lines []string, n int) {
	t.Helper()
	values := make([]string, 0, len(lines))
	last := map[uint32][2]uint64{} // partition → last offset+1, last value
	for _, l := range lines {
		var r jsonRecord
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		v, _ := strconv.ParseUint(r.Value, 10, 64)
		prev := last[r.Partition]
		if r.Topic != "t" || r.Key != nil || r.Offset+1 <= prev[0] || v <= prev[1] {
			t.Fatalf("record %s out of order after offset %d value %d", l, int64(prev[0])-1, prev[1])
		}
		last[r.Partition] = [2]uint64{r.Offset + 1, v}
		values = append(values, r.Value)
	}
	if len(last) != 3 {
		t.Fatalf("records from %d partitions, want 3", len(last))
	}
	checkAllOnce(t, values, n)
}

func regexpMatch(pattern, s string) bool {
	return regexp.MustCompile(pattern).MatchString(s)
}

// checkOneErrorLine checks a failed run: non-zero exit, nothing on stdout,
// one line "ringmq: ..." on stderr that contains want.
func checkOneErrorLine(t *testing.T, res cliResult, want string) {
	t.Helper()
	lines := splitLines(res.stderr)
	if res.code == 0 || res.stdout != "" || len(lines) != 1 || !strings.HasPrefix(lines[0], "ringmq: ") ||
		!strings.Contains(lines[0], want) {
		t.Fatalf("exit %d, stdout %q, stderr %q; want a non-zero exit and one line containing %q",
			res.code, res.stdout, res.stderr, want)
	}
}

func TestCLIErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	for _, args := range [][]string{
		{"topic", "list"}, {"produce", "t"}, {"consume", "t", "-n", "1"}, {"groups"}, {"bench", "produce", "--messages", "10"},
	} {
		checkOneErrorLine(t, runCLI(t, "x\n", append(args, "--server", down)...), "connection refused")
	}

	srv := startServer(t, writeConfig(t, t.TempDir()))
	s := "--server=" + srv.addr
	checkOneErrorLine(t, runCLI(t, "x\n", "produce", "nope", s), `topic "nope": no such topic`)
	checkOneErrorLine(t, runCLI(t, "", "consume", "nope", "-n", "1", s), `topic "nope": no such topic`)
	checkOneErrorLine(t, runCLI(t, "", "topic", "describe", "nope", s), "no such topic")
	checkOneErrorLine(t, runCLI(t, "", "topic", "delete", "nope", s), "no such topic")
	checkOneErrorLine(t, runCLI(t, "", "groups", "nope", s), "does not exist")

	mustCLI(t, "", "topic", "create", "t", s)
	checkOneErrorLine(t, runCLI(t, "", "topic", "create", "t", s), "already exists")
	checkOneErrorLine(t, runCLI(t, "", "consume", "t", "--bogus", s), "flag provided but not defined: -bogus")
	checkOneErrorLine(t, runCLI(t, "", "produce", "t", "--acks", "2", s), "--acks must be 0, 1 or all")
	checkOneErrorLine(t, runCLI(t, "", "consume", "t", "--from", "yesterday", s), "--from")
	checkOneErrorLine(t, runCLI(t, "", "consume", "t", "--format", "xml", s), "--format")
	checkOneErrorLine(t, runCLI(t, "", "consume", "t", "--partition", "5", "-n", "1", s), "--partition 5 does not exist")
	checkOneErrorLine(t, runCLI(t, "", "topic", "create", "u", "--config", "retention_ms=soon", s), "retention_ms")
	checkOneErrorLine(t, runCLI(t, "", "topic", "frobnicate", s), "unknown subcommand")
	checkOneErrorLine(t, runCLI(t, "", "bench", "sideways", s), "unknown mode")
}

func TestCLIAcksZeroAndInterrupt(t *testing.T) {
	srv := startServer(t, writeConfig(t, t.TempDir()))
	s := "--server=" + srv.addr
	mustCLI(t, "", "topic", "create", "z", "--partitions", "2", s)
	mustCLI(t, seqLines(1000), "produce", "z", "--acks", "0", s)
	// acks 0 exits once everything was written; the records then show up.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := mustCLI(t, "", "topic", "list", s)
		if regexpMatch(`(?m)^z\s+2\s+1000$`, out) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("acks 0 records did not all arrive:\n%s", out)
		}
		<-time.After(50 * time.Millisecond)
	}

	// Without -n, consume runs until SIGINT, then commits and exits 0.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "consume", "z", "--group", "gz", "--from", "earliest", s)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	got := readLinesUntil(t, stdout, 1000)
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("consume after SIGINT: %v\n%s", err, stderr.String())
	}
	checkAllOnce(t, got, 1000)
	if out := mustCLI(t, "", "groups", "gz", s); regexpMatch(`(?m)\s[1-9]\d*$`, out) {
		t.Fatalf("group gz should have no lag after the interrupted consume:\n%s", out)
	}
}

// readLinesUntil reads n lines from r.
func readLinesUntil(t *testing.T, r io.Reader, n int) []string {
	t.Helper()
	sc := bufio.NewScanner(r)
	var lines []string
	for len(lines) < n && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) < n {
		t.Fatalf("read %d lines, want %d (%v)", len(lines), n, sc.Err())
	}
	return lines
}
