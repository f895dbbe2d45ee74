package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/ringmq/ringmq/client"
)

// A poison record (always nacked) reaches the dead-letter topic after
// exactly max_deliveries deliveries although the broker is killed -9
// after its second delivery: the delivery count is durable before the
// record is handed out.
func TestSharedPoisonAcrossBrokerKill(t *testing.T) {
	cfgPath := writeSharedConfig(t, t.TempDir())
	f, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "max_deliveries = 3\n")
	f.Close()
	srv := startServer(t, cfgPath)
	s := "--server=" + srv.addr
	mustCLI(t, "", "topic", "create", "P", "--partitions", "1", s)
	mustCLI(t, "job-1\njob-2\njob-3\njob-4\n", "produce", "P", "--acks", "all", s)
	const poison = 1 // offset of job-2
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	seen := 0
	consume := func(addr string, done func() bool) {
		t.Helper()
		c, err := client.NewConsumer(addr, client.ConsumerOptions{Group: "w", Subscription: client.SubscriptionShared,
			SessionTimeout: 30 * time.Second, MaxWait: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Subscribe(ctx, "P"); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for !done() {
			if time.Now().After(deadline) {
				t.Fatalf("not done within 30s (poison delivered %d times)", seen)
			}
			pctx, pcancel := context.WithTimeout(ctx, 300*time.Millisecond)
			recs, err := c.Poll(pctx)
			pcancel()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatal(err)
			}
			for _, r := range recs {
				if r.Offset != poison {
					if err := c.Ack(ctx, r); err != nil {
						t.Fatal(err)
					}
					continue
				}
				seen++
				if err := c.Nack(ctx, 0, "poison", r); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	consume(srv.addr, func() bool { return seen >= 2 })
	srv.cmd.Process.Signal(syscall.SIGKILL)
	<-srv.exited
	srv = startServer(t, cfgPath)
	var dead string
	consume(srv.addr, func() bool {
		res := runCLI(t, "", "consume", "P.dlq", "--from", "earliest", "-e", "-f", "%v %h\n", "--server="+srv.addr)
		dead = res.stdout
		return res.code == 0 && dead != ""
	})
	t.Logf("dead-letter topic after a broker kill -9 between deliveries 2 and 3: %q; poison seen %d times", dead, seen)
	if want := "job-2 ringmq-dlq-topic=P,ringmq-dlq-partition=0,ringmq-dlq-offset=1,ringmq-dlq-deliveries=3,ringmq-dlq-error=poison\n"; dead != want {
		t.Fatalf("dead-letter topic holds %q, want %q", dead, want)
	}
	if seen != 3 {
		t.Fatalf("poison record delivered %d times, want max_deliveries = 3", seen)
	}
}
