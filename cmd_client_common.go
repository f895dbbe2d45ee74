package main

// Plumbing shared by the client commands (topic, produce, consume, groups,
// bench): flag sets that accept flags after positional arguments, the
// --server flag, dialing, signal handling, and turning client errors into
// one readable line.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

const (
	defaultServer = "127.0.0.1:9400"
	dialTimeout   = 10 * time.Second
	adminTimeout  = 30 * time.Second
)

// errUsage is returned when -h printed a command's usage; the command then
// exits 0.
var errUsage = errors.New("usage shown")

// flagSet is a flag.FlagSet that reports errors as values instead of
// printing them, and prints its usage to stdout on -h.
type flagSet struct {
	*flag.FlagSet
	usage string // "ringmq produce TOPIC [flags]"
}

func newFlagSet(name, usage string) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), usage: usage}
	fs.SetOutput(io.Discard)
	return fs
}

// serverFlag adds --server to fs.
func (fs *flagSet) serverFlag() *string {
	return fs.String("server", defaultServer, "server address `HOST:PORT`")
}

// parse parses args, allowing flags before, between and after positional
// arguments (a lone "--" ends the flags), and checks that between min and
// max positional arguments were given (max < 0: no limit).
func (fs *flagSet) parse(args []string, min, max int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.printUsage(os.Stdout)
				return nil, errUsage
			}
			return nil, fmt.Errorf("%s: %w (ringmq %s -h lists the flags)", fs.Name(), err, fs.Name())
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	switch {
	case len(pos) < min:
		return nil, fmt.Errorf("%s: missing arguments; usage: %s", fs.Name(), fs.usage)
	case max >= 0 && len(pos) > max:
		return nil, fmt.Errorf("%s: unexpected argument %q; usage: %s", fs.Name(), pos[max], fs.usage)
	}
	return pos, nil
}

func (fs *flagSet) printUsage(w io.Writer) {
	fmt.Fprintf(w, "usage: %s\n\nflags:\n", fs.usage)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// quietUsage maps errUsage to success: a command that showed its usage
// exits 0.
func quietUsage(err error) error {
	if errors.Is(err, errUsage) {
		return nil
	}
	return err
}

// signalContext is a context cancelled on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// dialServer connects to addr, turning the common failures into one
// readable line.
func dialServer(ctx context.Context, addr, clientID string) (*client.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	c, err := client.Dial(dctx, addr, client.Options{ClientID: clientID})
	if err != nil {
		return nil, connectErr(addr, err)
	}
	return c, nil
}

// isConnectErr reports whether err is a failure to reach the server (as
// opposed to its answer).
func isConnectErr(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// connectErr describes a failure to reach the server at addr.
func connectErr(addr string, err error) error {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot connect to %s: connection refused (is ringmq serve running there?)", addr)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("cannot connect to %s: timed out", addr)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("cannot connect to %s: interrupted", addr)
	}
	return fmt.Errorf("cannot connect to %s: %w", addr, err)
}

// cliError is a described error: a short message for people that still
// unwraps to its cause, for errors.Is and errors.As.
type cliError struct {
	msg   string
	cause error
}

func (e *cliError) Error() string { return e.msg }
func (e *cliError) Unwrap() error { return e.cause }

// describeErr turns a client error into a short line: server error codes
// by their meaning, lost connections by their cause. what names the
// operation ("topic \"t\"").
func describeErr(what string, err error) error {
	var code proto.ErrorCode
	var msg string
	switch {
	case errors.As(err, &code):
		msg = code.Message()
		if code == proto.UnknownTopic {
			msg = "no such topic"
		}
		if m := serverMessage(err); m != "" {
			msg = m
		}
		msg += " (" + code.String() + ")"
	case isConnectErr(err):
		msg = "cannot connect to the server"
	case errors.Is(err, client.ErrConnectionLost):
		msg = "lost the connection to the server"
	case errors.Is(err, context.Canceled):
		msg = "interrupted"
	case errors.Is(err, context.DeadlineExceeded):
		msg = "timed out"
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
	return &cliError{msg: what + ": " + msg, cause: err}
}

// serverMessage extracts the server's explanation that client.CreateTopic
// appends after the code ("...: proto: X (9): meaning: explanation").
func serverMessage(err error) string {
	s := err.Error()
	i := strings.Index(s, "proto: ")
	if i < 0 {
		return ""
	}
	parts := strings.SplitN(s[i+len("proto: "):], ": ", 3)
	if len(parts) < 3 {
		return ""
	}
	return parts[2]
}

// commandTimeout bounds a short admin round trip.
func commandTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, adminTimeout)
}
