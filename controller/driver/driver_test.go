package driver

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/ringmq/ringmq/config"
	"github.com/ringmq/ringmq/controller"
)

func noTransport(t *testing.T) func(Deliver) (Transport, error) {
	return func(deliver Deliver) (Transport, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		return NewTCP(TCPConfig{Listener: ln, Deliver: deliver}), nil
	}
}

// Without [cluster] the node is a one-node cluster: it leads alone and
// answers proposals; a restart keeps the state.
func TestOneNodeDriver(t *testing.T) {
	cfg := FromConfig(config.Default().Cluster, "127.0.0.1:9400", t.TempDir())
	if cfg.Node.ID != 1 || len(cfg.Voters) != 1 || cfg.Voters[0] != 1 || cfg.Node.ElectionTicks != 10 ||
		cfg.Node.SessionTicks != 30 || filepath.Base(cfg.Dir) != "controller" {
		t.Fatalf("FromConfig(defaults) = %+v", cfg)
	}
	cfg.Tick, cfg.Node.Logger, cfg.NewTransport = 5*time.Millisecond, quietRaft, noTransport(t)
	for round := range 2 {
		d, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		changed := d.Changed()
		var perr error
		for {
			perr = d.Propose(ctx, controller.Command{Type: controller.CmdRegisterBroker, Broker: 1, Addr: "a"})
			if !errors.Is(perr, controller.ErrNoLeader) {
				break
			}
			select {
			case <-d.Changed():
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
		cancel()
		if perr != nil {
			t.Fatalf("round %d: register: %v", round, perr)
		}
		select {
		case <-changed:
		default:
			t.Fatal("Changed not closed after an applied command")
		}
		b, ok := d.State().Broker(1)
		st := d.Status()
		if !ok || !b.Alive || !st.IsLeader || st.Leader != 1 || st.Commit < 2 || st.Applied < 2 {
			t.Fatalf("round %d: broker %+v %v, status %+v", round, b, ok, st)
		}
		if round == 1 && b.Epoch <= 3 {
			t.Fatalf("re-registration after a restart kept epoch %d", b.Epoch)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// A failed write stops the driver (as a crash would): Err says why and
// proposals fail instead of hanging.
func TestDriverStopsOnDiskError(t *testing.T) {
	m := newMemFS()
	cfg := FromConfig(config.Default().Cluster, "127.0.0.1:9400", "/c")
	cfg.FS, cfg.Tick, cfg.Node.Logger, cfg.NewTransport = m, 5*time.Millisecond, quietRaft, noTransport(t)
	m.cutAt = 6 // after the bootstrap, in the first Ready's writes
	d, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the driver did not stop on a failed write")
	}
	if !errors.Is(d.Err(), errCrash) || !errors.Is(d.Close(), errCrash) {
		t.Fatalf("Err() = %v, want the write error", d.Err())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Propose(ctx, controller.Command{Type: controller.CmdRegisterBroker, Broker: 1}); !errors.Is(err, ErrStopped) {
		t.Fatalf("Propose on a stopped driver: %v", err)
	}
}

// A directory bootstrapped for other voters is refused.
func TestDriverRefusesOtherCluster(t *testing.T) {
	dir := t.TempDir()
	cfg := FromConfig(config.Default().Cluster, "127.0.0.1:9400", dir)
	cfg.Node.Logger, cfg.NewTransport = quietRaft, noTransport(t)
	d, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	cfg.Voters = []uint64{1, 2, 3}
	if d, err := Open(cfg); err == nil {
		d.Close()
		t.Fatal("opened a one-node log as a three-node cluster")
	}
}

// The only voter leads at once: with a 1 s tick (an election timeout of
// at least 10 s) it is leader long before the timeout could elect it.
func TestOneNodeDriverLeadsAtOnce(t *testing.T) {
	cfg := FromConfig(config.Default().Cluster, "127.0.0.1:9400", t.TempDir())
	cfg.Tick, cfg.Node.Logger, cfg.NewTransport = time.Second, quietRaft, noTransport(t)
	start := time.Now()
	d, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for !d.Status().IsLeader {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("not leader after %v: %+v", time.Since(start), d.Status())
		}
		select {
		case <-d.Changed():
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Logf("leader after %v", time.Since(start))
}
