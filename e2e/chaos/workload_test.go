package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringmq/ringmq/client"
)

// outcome of one record as its producer saw it.
type outcome uint8

const (
	pending outcome = iota // not resolved (yet)
	acked                  // the producer was told it is stored (acks=all)
	failed                 // refused before it was sent: certainly not stored
	unknown                // failed after it may have been sent: stored or not
)

// producerLog is what one producer sent: record n's value is
// "p<id>-<n>"; outcomes[n] and, when acked, where it was stored.
type producerLog struct {
	id          int
	idempotent  bool
	mu          sync.Mutex
	outcomes    []outcome
	partition   []uint32
	offset      []uint64
	firstErr    error
	unknownErrs map[string]int
}

func recordValue(producer, n int) []byte {
	return []byte("p" + strconv.Itoa(producer) + "-" + strconv.Itoa(n))
}

// parseValue is recordValue's inverse.
func parseValue(v []byte) (producer, n int, ok bool) {
	s, ok := strings.CutPrefix(string(v), "p")
	if !ok {
		return 0, 0, false
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, false
	}
	p, err1 := strconv.Atoi(a)
	k, err2 := strconv.Atoi(b)
	return p, k, err1 == nil && err2 == nil
}

// workload runs producers against topic until stop is closed, then waits
// (at most drain) for every record to be resolved.
type workload struct {
	topic      string
	partitions int
	producers  []*producerLog
}

// run starts the producers: half idempotent (the client's default), half
// not. Each keeps at most 256 records unresolved.
func (w *workload) run(bootstrap string, n int, seed uint64, stop <-chan struct{}, drain time.Duration) error {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		pl := &producerLog{id: i, idempotent: i%2 == 0, unknownErrs: map[string]int{}}
		w.producers = append(w.producers, pl)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.produce(bootstrap, pl, rand.New(rand.NewPCG(seed, uint64(i))), stop, drain); err != nil {
				errs <- fmt.Errorf("producer %d: %w", pl.id, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func (w *workload) produce(bootstrap string, pl *producerLog, rng *rand.Rand, stop <-chan struct{}, drain time.Duration) error {
	p, err := client.NewProducer(bootstrap, client.ProducerOptions{
		ClientID:           fmt.Sprintf("chaos-%d", pl.id),
		Acks:               client.AcksAll,
		DisableIdempotence: !pl.idempotent,
		BatchBytes:         4 << 10,
		RequestTimeout:     5 * time.Second,
		DeliveryTimeout:    30 * time.Second,
		RetryBackoff:       20 * time.Millisecond,
		MaxRetryBackoff:    500 * time.Millisecond,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), drain+time.Hour)
	defer cancel()
	sem := make(chan struct{}, 256)
	var inflight atomic.Int64
	for n := 0; ; n++ {
		select {
		case <-stop:
			goto drained
		case sem <- struct{}{}:
		}
		pl.mu.Lock()
		pl.outcomes = append(pl.outcomes, pending)
		pl.partition = append(pl.partition, 0)
		pl.offset = append(pl.offset, 0)
		pl.mu.Unlock()
		key := []byte(strconv.Itoa(rng.IntN(4 * w.partitions)))
		rec := client.Record{Topic: w.topic, Key: key, Value: recordValue(pl.id, n)}
		inflight.Add(1)
		err := p.Send(ctx, rec, func(r client.Result) {
			pl.mu.Lock()
			if r.Err == nil {
				pl.outcomes[n], pl.partition[n], pl.offset[n] = acked, r.Partition, r.Offset
			} else {
				pl.outcomes[n] = unknown
				pl.unknownErrs[errClass(r.Err)]++
			}
			pl.mu.Unlock()
			inflight.Add(-1)
			<-sem
		})
		if err != nil {
			pl.mu.Lock()
			pl.outcomes[n] = failed
			if pl.firstErr == nil {
				pl.firstErr = err
			}
			pl.mu.Unlock()
			inflight.Add(-1)
			<-sem
			select {
			case <-stop:
				goto drained
			case <-time.After(100 * time.Millisecond): // back off after a refused send
			}
		}
	}
drained:
	fctx, fcancel := context.WithTimeout(ctx, drain)
	defer fcancel()
	_ = p.Flush(fctx)
	_ = p.Close(fctx)
	if k := inflight.Load(); k > 0 {
		return fmt.Errorf("%d records not resolved within %v of the end", k, drain)
	}
	return nil
}

// errClass shortens an error for the summary of unknown outcomes.
func errClass(err error) string {
	s := err.Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}
