package bench

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

// Mode is what a run measures.
type Mode string

// Modes.
const (
	ModeProduce Mode = "produce"
	ModeConsume Mode = "consume"
	ModeE2E     Mode = "e2e"
	ModeTCP     Mode = "tcp"
	ModeRawlog  Mode = "rawlog"
)

// Driver is the client code a run goes through.
type Driver string

// Drivers.
const (
	// DriverRaw sends pre-built record batches over client.Conn and reads
	// with plain Fetch requests: the least client work per message, so the
	// numbers are the broker's.
	DriverRaw Driver = "raw"
	// DriverClient goes through client.Producer (one Send per record,
	// with a callback) and client.Consumer (Poll), as applications do.
	DriverClient Driver = "client"
)

// ErrConfig marks an invalid Config.
var ErrConfig = errors.New("bench: invalid config")

// Defaults for Config fields left zero.
const (
	DefaultServer     = "127.0.0.1:9400"
	DefaultTopic      = "bench"
	DefaultPartitions = 4
	DefaultProducers  = 4
	DefaultConsumers  = 1
	DefaultMsgSize    = 1024
	DefaultMessages   = 1_000_000
	DefaultBatchBytes = 64 << 10
	// DefaultLinger is short because a paced run counts each record's
	// latency from its due time: the first record of a batch waits up to
	// the linger, so the linger is a floor under the latency percentiles
	// whenever batches do not fill sooner (at half the peak rate they do
	// not: 5 ms gave p50 6.8 ms where 1 ms gave 2.5 ms, same minute).
	DefaultLinger   = time.Millisecond
	DefaultInFlight = 4

	// minMsgSize leaves room for the 8-byte send time every record carries.
	minMsgSize = 8
)

// Config describes one run. The zero value of a field means its default;
// Messages and Duration are exclusive (neither: DefaultMessages).
type Config struct {
	Mode   Mode
	Driver Driver // DriverRaw (default) or DriverClient; unused by ModeTCP and ModeRawlog
	// Type (consume only): read as Consumers members of a fresh consumer
	// group of this subscription type (failover, exclusive, shared,
	// key_shared) through client.Consumer; "": read partitions directly.
	Type string
	// ShareBatch: records a shared member acquires per Poll
	// (DefaultShareBatch).
	ShareBatch int
	Server     string      // host:port of the broker (unused by ModeTCP and ModeRawlog)
	SASL       client.SASL // authenticate every connection (server.sasl = scram)
	TLS        *tls.Config // nil: plaintext; else every connection to Server is TLS
	Dir        string      // rawlog: where its files go (a fresh directory in it, removed after); "": the system's temp dir
	Topic      string      // created with Partitions partitions when missing
	Partitions int
	Producers  int // producer connections (tcp, rawlog: writer connections)
	Consumers  int // consumer connections
	InFlight   int // requests in flight per producer connection
	MsgSize    int // bytes per record value, at least 8
	Messages   int64
	Duration   time.Duration
	BatchBytes int           // record bytes per produce batch (and tcp write size)
	Linger     time.Duration // with Rate: longest wait to fill a batch
	Acks       int8          // proto.AcksNone, AcksLeader or AcksAll
	Codec      proto.Codec
	Rate       float64 // messages per second, all producers together; 0: no cap
	// Idempotent stamps batches with producer ids and sequence numbers
	// (the raw driver: one producer id per request slot; the client
	// driver: client.Producer's idempotence). Never with acks 0.
	Idempotent bool

	// Progress receives a line every ProgressInterval (default 1s); nil:
	// none. With ProgressBar (Progress is a terminal) it gets one line
	// redrawn four times a second instead: a bar, rates and an ETA.
	Progress         io.Writer
	ProgressInterval time.Duration
	ProgressBar      bool
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.Server == "" {
		c.Server = DefaultServer
	}
	if c.Driver == "" {
		c.Driver = DriverRaw
	}
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	def(&c.Partitions, DefaultPartitions)
	def(&c.Producers, DefaultProducers)
	def(&c.Consumers, DefaultConsumers)
	def(&c.ShareBatch, DefaultShareBatch)
	def(&c.InFlight, DefaultInFlight)
	def(&c.MsgSize, DefaultMsgSize)
	def(&c.BatchBytes, DefaultBatchBytes)
	if c.Linger <= 0 {
		c.Linger = DefaultLinger
	}
	if c.Messages <= 0 && c.Duration <= 0 {
		c.Messages = DefaultMessages
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = time.Second
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Mode != ModeProduce && c.Mode != ModeConsume && c.Mode != ModeE2E && c.Mode != ModeTCP && c.Mode != ModeRawlog:
		return fmt.Errorf("%w: mode %q (want produce, consume, e2e, tcp or rawlog)", ErrConfig, c.Mode)
	case c.Driver != DriverRaw && c.Driver != DriverClient:
		return fmt.Errorf("%w: driver %q (want raw or client)", ErrConfig, c.Driver)
	case c.Type != "" && c.Mode != ModeConsume:
		return fmt.Errorf("%w: a subscription type applies to consume only", ErrConfig)
	case c.Type != "" && c.Type != "failover" && c.Type != "exclusive" && c.Type != "shared" && c.Type != "key_shared":
		return fmt.Errorf("%w: type %q (want failover, exclusive, shared or key_shared)", ErrConfig, c.Type)
	case c.Messages > 0 && c.Duration > 0:
		return fmt.Errorf("%w: give messages or duration, not both", ErrConfig)
	case c.MsgSize < minMsgSize:
		return fmt.Errorf("%w: msg-size %d is below %d (each record carries its send time)", ErrConfig, c.MsgSize, minMsgSize)
	case c.MsgSize > proto.MaxBatchSize/2:
		return fmt.Errorf("%w: msg-size %d is too large", ErrConfig, c.MsgSize)
	case c.BatchBytes > proto.DefaultMaxFrameBytes/2:
		return fmt.Errorf("%w: batch-bytes %d is above %d", ErrConfig, c.BatchBytes, proto.DefaultMaxFrameBytes/2)
	case c.Acks != proto.AcksNone && c.Acks != proto.AcksLeader && c.Acks != proto.AcksAll:
		return fmt.Errorf("%w: acks %d", ErrConfig, c.Acks)
	case c.Codec > proto.CodecZstd:
		return fmt.Errorf("%w: codec %d", ErrConfig, c.Codec)
	case c.Rate < 0:
		return fmt.Errorf("%w: negative rate", ErrConfig)
	case c.Mode == ModeE2E && c.Acks == proto.AcksNone:
		return fmt.Errorf("%w: e2e needs acks 1 or all to know when production ended", ErrConfig)
	case c.Partitions > 1<<16 || c.Producers > 1024 || c.Consumers > 1024 || c.InFlight > 1024:
		return fmt.Errorf("%w: partitions, producers, consumers or inflight too large", ErrConfig)
	}
	return nil
}

// recordsPerBatch is how many records fill a batch of BatchBytes.
func (c *Config) recordsPerBatch() int {
	return max(1, c.BatchBytes/c.MsgSize)
}
