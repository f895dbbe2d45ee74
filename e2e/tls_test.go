package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/tlstest"
)

// TestCLIOverMutualTLS: a server with tls = "mtls"; the CLI reaches it
// with --tls-ca/--tls-cert/--tls-key flags or the RINGMQ_TLS*
// variables, and not without a client certificate.
func TestCLIOverMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "e2e-ca")
	srv := ca.Write(t, dir, "server", ca.Issue(t, "server", true))
	cli := ca.Write(t, dir, "client", ca.Issue(t, "cli", false))
	path := writeConfig(t, t.TempDir())
	b, _ := os.ReadFile(path)
	cfg := strings.Replace(string(b), "[server]\n", fmt.Sprintf("[server]\ntls = \"mtls\"\ntls_cert = %q\ntls_key = %q\ntls_ca = %q\n",
		srv.Cert, srv.Key, srv.CA), 1)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, path)
	flags := []string{"-s", s.addr, "--tls-ca", cli.CA, "--tls-cert", cli.Cert, "--tls-key", cli.Key}
	mustCLI(t, "", append([]string{"topic", "create", "sec", "-p", "2"}, flags...)...)
	mustCLI(t, seqLines(100), append([]string{"produce", "sec", "--acks", "all"}, flags...)...)
	env := []string{"RINGMQ_SERVER=" + s.addr, "RINGMQ_TLS=1", "RINGMQ_TLS_CA=" + cli.CA,
		"RINGMQ_TLS_CERT=" + cli.Cert, "RINGMQ_TLS_KEY=" + cli.Key}
	res := runCLIEnv(t, env, "", "consume", "sec", "-o", "earliest", "-n", "100")
	if res.code != 0 {
		t.Fatalf("consume over TLS: exit %d: %s", res.code, res.stderr)
	}
	checkAllOnce(t, splitLines(res.stdout), 100)

	// Without a client certificate the server refuses the connection.
	res = runCLI(t, "", "topic", "list", "-s", s.addr, "--tls-ca", cli.CA)
	if res.code == 0 {
		t.Fatalf("topic list without a client certificate: exit 0: %s", res.stdout)
	}
	if !strings.Contains(res.stderr, "certificate required") {
		t.Errorf("topic list without a client certificate: %s", res.stderr)
	}
}

// TestClusterOverMutualTLS: three nodes with tls = "mtls" form a cluster
// (the controller's Raft messages and the brokers' heartbeats go over TLS
// with each node's certificate), and a client produces to and consumes
// from every partition leader.
func TestClusterOverMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "cluster-ca")
	srv := ca.Write(t, dir, "node", ca.Issue(t, "node", true))
	cli := ca.Write(t, dir, "client", ca.Issue(t, "app", false))
	clientTLS, err := client.TLSConfig(client.TLSFiles{CA: cli.CA, Cert: cli.Cert, Key: cli.Key})
	if err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, clusterOptions{ClientTLS: clientTLS,
		ServerConfig: fmt.Sprintf("tls = \"mtls\"\ntls_cert = %q\ntls_key = %q\ntls_ca = %q\n", srv.Cert, srv.Key, srv.CA)})
	flags := []string{"-s", c.addrs(), "--tls-ca", cli.CA, "--tls-cert", cli.Cert, "--tls-key", cli.Key}
	mustCLI(t, "", append([]string{"topic", "create", "spread", "-p", "3"}, flags...)...)
	mustCLI(t, seqLines(300), append([]string{"produce", "spread", "--acks", "all"}, flags...)...)
	out := mustCLI(t, "", append([]string{"consume", "spread", "-o", "earliest", "-n", "300"}, flags...)...)
	checkAllOnce(t, splitLines(out), 300)
}

// TestClusterTLSAndSCRAMReplicated: three nodes with TLS, SCRAM and
// authorization on together. The brokers reach each other over TLS and
// authenticate as the broker user (Raft messages, heartbeats and the
// followers' fetches), so a topic of three replicas takes acks=all
// writes; a client reaches it through the CLI with both TLS and SCRAM,
// and without credentials it is refused.
func TestClusterTLSAndSCRAMReplicated(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "cluster-ca")
	srv := ca.Write(t, dir, "node", ca.Issue(t, "node", true))
	clientTLS, err := client.TLSConfig(client.TLSFiles{CA: srv.CA})
	if err != nil {
		t.Fatal(err)
	}
	broker := client.SASL{User: "broker", Password: "broker-pw"}
	c := startCluster(t, clusterOptions{ClientTLS: clientTLS, SASL: broker,
		ServerConfig: fmt.Sprintf("tls = \"on\"\ntls_cert = %q\ntls_key = %q\ntls_ca = %q\n"+
			"sasl = \"scram\"\nauthorization = \"on\"\nbroker_user = \"broker\"\nbroker_password = \"broker-pw\"\n",
			srv.Cert, srv.Key, srv.CA)})
	pwFile := dir + "/pw"
	if err := os.WriteFile(pwFile, []byte("broker-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	flags := []string{"-s", c.addrs(), "--tls-ca", srv.CA, "--user", "broker", "--password-file", pwFile}
	createReplicatedWith(t, c, client.Options{TLS: clientTLS, SASL: broker}, "orders", 3)
	mustCLI(t, seqLines(300), append([]string{"produce", "orders", "--acks", "all"}, flags...)...)
	out := mustCLI(t, "", append([]string{"consume", "orders", "-o", "earliest", "-n", "300"}, flags...)...)
	checkAllOnce(t, splitLines(out), 300)
	a, err := client.NewAdmin(c.addrs(), client.Options{TLS: clientTLS, SASL: broker})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ti, err := a.DescribeTopic(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if isr := ti.Partitions[0].ISR; len(isr) != 3 {
		t.Errorf("ISR %v after 300 acks=all records, want all three replicas", isr)
	}
	if r := runCLI(t, "", "topic", "list", "-s", c.addrs(), "--tls-ca", srv.CA); r.code == 0 ||
		!strings.Contains(r.stderr+r.stdout, "SASL_AUTHENTICATION_REQUIRED") {
		t.Fatalf("topic list without credentials: exit %d\n%s%s\nwant SASL_AUTHENTICATION_REQUIRED", r.code, r.stdout, r.stderr)
	}
}
