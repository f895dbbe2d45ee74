package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
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

	// bench authenticates too, with either driver.
	for _, driver := range []string{"raw", "client"} {
		run(admin, "", 0, "", "bench", "produce", "--driver", driver, "--topic", "bench-"+driver, "--messages", "2000",
			"--msg-size", "100", "--sasl-mechanism", "SCRAM-SHA-512")
	}
}

// TestClusterWithSCRAM runs three nodes with SCRAM and authorization on:
// the brokers authenticate to each other as the configured broker user
// (Raft messages, heartbeats, replica fetches), the cluster forms, a
// topic of three replicas created through one node is produced to with
// acks=all and read through the others by an authenticated client, and an
// unauthenticated client is refused.
func TestClusterWithSCRAM(t *testing.T) {
	broker := client.SASL{User: "broker", Password: "broker-pw"}
	c := startCluster(t, clusterOptions{SASL: broker, ServerConfig: `sasl = "scram"
authorization = "on"
broker_user = "broker"
broker_password = "broker-pw"
`})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, err := client.NewAdmin(c.node(2).addr, client.Options{SASL: broker})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	// Three replicas: followers fetch from leaders as the broker user, and
	// acks=all needs them to.
	for deadline := time.Now().Add(30 * time.Second); ; {
		err := admin.CreateTopicReplicated(ctx, "orders", 3, 3, nil)
		if err == nil {
			break
		}
		if !errors.Is(err, proto.InvalidReplicationFactor) || time.Now().After(deadline) {
			t.Fatalf("create through node 2: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // retry interval: a node's view of live brokers may lag
	}
	p, err := client.NewProducer(c.node(3).addr, client.ProducerOptions{SASL: broker, Acks: client.AcksAll})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	for i := range 30 {
		if _, err := p.SendSync(ctx, client.Record{Topic: "orders", Value: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatalf("produce through node 3: %v", err)
		}
	}
	topics, err := admin.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, tp := range topics {
		for _, part := range tp.Partitions {
			n += part.LogEnd - part.LogStart
		}
	}
	if n != 30 {
		t.Fatalf("%d records in %+v, want 30", n, topics)
	}
	if err := askNode(c.node(1).addr, 5*time.Second, func(ctx context.Context, conn *client.Conn) error {
		_, err := conn.Metadata(ctx, &proto.MetadataRequest{})
		return err
	}); !errors.Is(err, proto.SaslAuthenticationRequired) {
		t.Fatalf("unauthenticated metadata on node 1: %v, want SASL_AUTHENTICATION_REQUIRED", err)
	}
}
