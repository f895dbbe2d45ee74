package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// rawlogAnswerBytes is the answer to each request: the connection's file
// size after the request's write, big-endian.
const rawlogAnswerBytes = 8

// rawlogServer is the minimal log server: per connection it reads whole
// requests of a fixed size, write(2)s each to that connection's file and
// answers 8 bytes. No framing, no parsing, no index: what the machine can
// do for a log before any broker work.
type rawlogServer struct {
	ln    net.Listener
	dir   string
	size  int
	bytes atomic.Int64 // written to files
	wg    sync.WaitGroup
	once  sync.Once
	err   atomic.Pointer[error]
}

func newRawlogServer(dir string, size, conns int) (*rawlogServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: rawlog server: %w", err)
	}
	s := &rawlogServer{ln: ln, dir: dir, size: size}
	s.wg.Go(func() { s.accept(conns) })
	return s, nil
}

func (s *rawlogServer) accept(conns int) {
	for i := range conns {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Go(func() {
			defer c.Close()
			if err := s.serve(c, filepath.Join(s.dir, fmt.Sprintf("conn-%d.log", i))); err != nil {
				s.err.CompareAndSwap(nil, &err)
			}
		})
	}
}

// serve handles one connection until its writer closes it.
func (s *rawlogServer) serve(c net.Conn, path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("bench: rawlog: %w", err)
	}
	defer f.Close()
	req := make([]byte, s.size)
	var answer [rawlogAnswerBytes]byte
	var size uint64
	for {
		if _, err := io.ReadFull(c, req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil // the writer closed between requests
			}
			return fmt.Errorf("bench: rawlog read: %w", err)
		}
		if _, err := f.Write(req); err != nil {
			return fmt.Errorf("bench: rawlog write %s: %w", path, err)
		}
		size += uint64(len(req))
		s.bytes.Add(int64(len(req)))
		binary.BigEndian.PutUint64(answer[:], size)
		if _, err := c.Write(answer[:]); err != nil {
			return fmt.Errorf("bench: rawlog answer: %w", err)
		}
	}
}

// close stops listening and waits for the connections' handlers; it
// returns the first handler error.
func (s *rawlogServer) close() error {
	s.once.Do(func() { s.ln.Close() })
	s.wg.Wait()
	if p := s.err.Load(); p != nil {
		return *p
	}
	return nil
}

// runRawlog measures the minimal log server above: Producers connections,
// each with up to InFlight requests of one produce request's size
// outstanding; latency is request write to answer.
func runRawlog(ctx context.Context, cfg *Config) (*Report, error) {
	dir, err := rawlogDir(cfg)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	size := tcpWriteSize(cfg)
	s, err := newRawlogServer(dir, size, cfg.Producers)
	if err != nil {
		return nil, err
	}
	conns := make([]net.Conn, cfg.Producers)
	for i := range conns {
		if conns[i], err = net.Dial("tcp", s.ln.Addr().String()); err != nil {
			closeAll(conns)
			s.close()
			return nil, fmt.Errorf("bench: rawlog: %w", err)
		}
	}
	m := &meter{}
	stop := withProgress(cfg, m, string(cfg.Mode), cfg.Messages)
	start := time.Now()
	b := newBudget(cfg, start)
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	for _, c := range conns {
		w := m.newWorker()
		wg.Go(func() {
			if err := rawlogConn(ctx, cfg, c, b, w, size); err != nil {
				firstErr.CompareAndSwap(nil, &err)
			}
		})
	}
	wg.Wait()
	closeAll(conns)
	serr := s.close()
	elapsed := time.Since(start)
	stop()
	r := finish(cfg, m, m, elapsed, "request to answer")
	r.WriteBytes = size
	if p := firstErr.Load(); p != nil {
		return r, *p
	}
	return r, serr
}

// rawlogDir is a fresh directory for the run's files, under --dir when
// given, else under the system's temporary directory.
func rawlogDir(cfg *Config) (string, error) {
	dir, err := os.MkdirTemp(cfg.Dir, "ringmq-rawlog-")
	if err != nil {
		return "", fmt.Errorf("bench: rawlog: %w", err)
	}
	return dir, nil
}

// rawlogConn drives one connection: a writer keeps up to InFlight
// requests outstanding, a reader takes their answers in order, checks
// each (the file size after the request) and records the latency.
func rawlogConn(ctx context.Context, cfg *Config, c net.Conn, b *budget, w *worker, size int) error {
	type sent struct {
		at   time.Time
		msgs int
	}
	pending := make(chan sent, cfg.InFlight)
	readErr := make(chan error, 1)
	go func() {
		var answer [rawlogAnswerBytes]byte
		var want uint64
		for p := range pending {
			if _, err := io.ReadFull(c, answer[:]); err != nil {
				readErr <- fmt.Errorf("bench: rawlog answer: %w", err)
				for range pending {
				}
				return
			}
			want += uint64(size)
			if got := binary.BigEndian.Uint64(answer[:]); got != want {
				readErr <- fmt.Errorf("bench: rawlog answer %d, want %d", got, want)
				for range pending {
				}
				return
			}
			w.recordUs(time.Since(p.at).Microseconds(), 1)
			w.msgs.Add(int64(p.msgs))
			w.bytes.Add(int64(p.msgs * cfg.MsgSize))
		}
		readErr <- nil
	}()
	err := rawlogWrite(ctx, c, b, cfg.recordsPerBatch(), size, func(n int) { pending <- sent{time.Now(), n} })
	close(pending)
	if rerr := <-readErr; err == nil {
		err = rerr
	}
	return err
}

// rawlogWrite writes requests of size bytes until the budget or ctx ends;
// sent is called before each write with the messages it carries (it
// blocks while InFlight requests are outstanding).
func rawlogWrite(ctx context.Context, c net.Conn, b *budget, perReq, size int, sent func(n int)) error {
	buf := make([]byte, size)
	copy(buf, fillerPayload(size))
	for ctx.Err() == nil {
		n := b.claim(perReq)
		if n == 0 {
			return nil
		}
		sent(n)
		if _, err := c.Write(buf); err != nil {
			return fmt.Errorf("bench: rawlog write: %w", err)
		}
	}
	return ctx.Err()
}
