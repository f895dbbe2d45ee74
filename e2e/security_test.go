package e2e

import (
	"os"
	"strings"
	"testing"
)

// TestSecurityCLI drives users and ACLs through the CLI against a server
// with SCRAM and authorization on: the loopback bootstrap of the first
// user, refusals before authentication and for a wrong password, an ACL
// that lets alice produce but not delete the topic.
func TestSecurityCLI(t *testing.T) {
	path := writeConfig(t, t.TempDir())
	cfg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	secure := strings.Replace(string(cfg), "[server]\n",
		"[server]\nsasl = \"scram\"\nauthorization = \"on\"\nsuperusers = [\"User:admin\"]\n", 1)
	if err := os.WriteFile(path, []byte(secure), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, path)
	s := "--server=" + srv.addr
	admin := []string{"RINGMQ_USER=admin", "RINGMQ_PASSWORD=admin-pw"}
	run := func(env []string, stdin string, wantCode int, wantOut string, args ...string) {
		t.Helper()
		res := runCLIEnv(t, env, stdin, append(args, s)...)
		if res.code != wantCode || !strings.Contains(res.stdout+res.stderr, wantOut) {
			t.Fatalf("ringmq %s: exit %d, want %d with %q\nstdout: %s\nstderr: %s",
				strings.Join(args, " "), res.code, wantCode, wantOut, res.stdout, res.stderr)
		}
	}

	run([]string{"RINGMQ_NEW_PASSWORD=admin-pw"}, "", 0, `user "admin"`, "user", "create", "admin", "--mechanism", "SCRAM-SHA-512")
	run(nil, "", 1, "SASL_AUTHENTICATION_REQUIRED", "topic", "list")
	run(nil, "", 1, "SASL_AUTHENTICATION_REQUIRED", "user", "create", "mallory", "--new-password-file", "/dev/null")
	run([]string{"RINGMQ_USER=admin", "RINGMQ_PASSWORD=wrong"}, "", 1, "SASL_AUTHENTICATION_FAILED", "topic", "list")

	run(admin, "", 0, "", "topic", "create", "orders", "--sasl-mechanism", "SCRAM-SHA-512")
	run(append(admin, "RINGMQ_NEW_PASSWORD="), "alice-pw\n", 0, `user "alice"`, "user", "create", "alice", "--sasl-mechanism", "SCRAM-SHA-512")
	run(admin, "", 0, "added: allow User:alice write on topic literal", "acl", "add",
		"--allow-principal", "User:alice", "--operation", "write", "--topic", "orders", "--sasl-mechanism", "SCRAM-SHA-512")
	run(admin, "", 0, "User:alice  allow       write", "acl", "list", "--sasl-mechanism", "SCRAM-SHA-512")
	run(admin, "", 0, "alice  SCRAM-SHA-256", "user", "list", "--sasl-mechanism", "SCRAM-SHA-512")

	alice := []string{"RINGMQ_USER=alice", "RINGMQ_PASSWORD=alice-pw"}
	run(alice, "a\nb\n", 0, "", "produce", "orders", "--acks", "all")
	run(alice, "", 1, "TOPIC_AUTHORIZATION_FAILED", "topic", "delete", "orders")
	run(admin, "", 0, "removed", "acl", "remove",
		"--allow-principal", "User:alice", "--operation", "write", "--topic", "orders", "--sasl-mechanism", "SCRAM-SHA-512")
	run(alice, "", 1, "TOPIC_AUTHORIZATION_FAILED", "topic", "describe", "orders")
}
