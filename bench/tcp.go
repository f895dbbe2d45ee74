package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringmq/ringmq/proto"
)

const sinkReadBytes = 1 << 20

// sink is an in-process TCP server that reads and discards.
type sink struct {
	ln    net.Listener
	bytes atomic.Int64
	wg    sync.WaitGroup
	once  sync.Once
}

// newSink listens and accepts up to conns connections, reading each until
// its writer closes it.
func newSink(conns int) (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: tcp sink: %w", err)
	}
	s := &sink{ln: ln}
	s.wg.Go(func() { s.accept(conns) })
	return s, nil
}

func (s *sink) accept(conns int) {
	for range conns {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Go(func() {
			defer c.Close()
			buf := make([]byte, sinkReadBytes)
			for {
				n, err := c.Read(buf)
				s.bytes.Add(int64(n))
				if err != nil {
					return
				}
			}
		})
	}
}

// drain waits until every connection has been accepted and read to its
// end (writers close theirs first), then stops listening. Closing the
// listener first could drop connections still in its backlog, unread.
func (s *sink) drain() {
	s.wg.Wait()
	s.close()
}

// close stops listening (an accept still waiting returns) and waits for
// the readers.
func (s *sink) close() {
	s.once.Do(func() { s.ln.Close() })
	s.wg.Wait()
}

// tcpWriteSize is the frame size of a produce request carrying one full
// batch: what a producer writes per request.
func tcpWriteSize(cfg *Config) int {
	batch := newTemplate(cfg.recordsPerBatch(), cfg.MsgSize).stamp(cfg.recordsPerBatch(), 0, 0)
	req := proto.ProduceRequest{Acks: cfg.Acks, Topics: []proto.ProduceTopic{{Name: []byte(cfg.Topic),
		Partitions: []proto.ProducePartition{{Records: batch}}}}}
	return len(proto.AppendRequest(nil, 1, &req))
}

// runTCP writes over loopback into the sink: Producers connections, each
// writing buffers of one produce request's size, counting the records
// such a request would carry.
func runTCP(ctx context.Context, cfg *Config) (*Report, error) {
	s, err := newSink(cfg.Producers)
	if err != nil {
		return nil, err
	}
	defer s.close()
	conns := make([]net.Conn, cfg.Producers)
	for i := range conns {
		if conns[i], err = net.Dial("tcp", s.ln.Addr().String()); err != nil {
			closeAll(conns)
			return nil, fmt.Errorf("bench: tcp: %w", err)
		}
	}
	size := tcpWriteSize(cfg)
	m := &meter{}
	stop := withProgress(cfg, m, string(cfg.Mode), cfg.Messages)
	start := time.Now()
	writes, err := writeAll(ctx, cfg, conns, newBudget(cfg, start), m, size)
	closeAll(conns)
	if err == nil {
		s.drain() // every byte written is read
	}
	elapsed := time.Since(start)
	stop()
	r := finish(cfg, m, m, elapsed, "write call")
	r.WriteBytes = size
	if err == nil && s.bytes.Load() != writes*int64(size) {
		err = fmt.Errorf("bench: tcp sink read %d bytes of the %d written", s.bytes.Load(), writes*int64(size))
	}
	return r, err
}

// writeAll runs one writer per connection until the budget is spent and
// returns the number of writes.
func writeAll(ctx context.Context, cfg *Config, conns []net.Conn, b *budget, m *meter, size int) (int64, error) {
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	var writes atomic.Int64
	for _, c := range conns {
		w := m.newWorker()
		wg.Go(func() {
			if err := tcpWriter(ctx, c, b, w, &writes, size, cfg.recordsPerBatch(), cfg.MsgSize); err != nil {
				firstErr.CompareAndSwap(nil, &err)
			}
		})
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return writes.Load(), *p
	}
	return writes.Load(), nil
}

func tcpWriter(ctx context.Context, c net.Conn, b *budget, w *worker, writes *atomic.Int64, size, perWrite, msgSize int) error {
	buf := make([]byte, size)
	copy(buf, fillerPayload(size))
	for ctx.Err() == nil {
		n := b.claim(perWrite)
		if n == 0 {
			return nil
		}
		t0 := time.Now()
		if _, err := c.Write(buf); err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("bench: tcp write: %w", err)
		}
		w.recordUs(time.Since(t0).Microseconds(), 1)
		writes.Add(1)
		w.msgs.Add(int64(n))
		w.bytes.Add(int64(n * msgSize))
	}
	return nil
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}
