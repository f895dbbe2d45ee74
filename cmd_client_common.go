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
	"sync"
	"syscall"
	"time"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

const (
	defaultServer = "127.0.0.1:9400"
	serverEnv     = "RINGMQ_SERVER"   // default for --server
	userEnv       = "RINGMQ_USER"     // default for --user
	passwordEnv   = "RINGMQ_PASSWORD" // default for --password
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
	usage   string            // "ringmq produce TOPIC [flags]"
	short   map[string]string // long name → its one-letter alias
	aliasOf map[string]string // one-letter alias → long name
}

func newFlagSet(name, usage string) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), usage: usage,
		short: map[string]string{}, aliasOf: map[string]string{}}
	fs.SetOutput(io.Discard)
	return fs
}

// alias makes -letter another name of the flag --long.
func (fs *flagSet) alias(letter, long string) {
	f := fs.Lookup(long)
	if f == nil {
		panic("BUG: alias of undefined flag " + long)
	}
	fs.Var(f.Value, letter, "short for --"+long)
	fs.short[long], fs.aliasOf[letter] = letter, long
}

// readPasswordFile returns the first line of the file at path.
func readPasswordFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--password-file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSuffix(line, "\r"), nil
}

// listFlagsArg, as the only argument of a command, makes its parse return
// a flagNames error listing the command's flags (shell completion).
const listFlagsArg = "__list-flags"

// flagNames is the list of a command's flags, "--long" and "-s" spellings.
type flagNames []string

func (flagNames) Error() string { return "flag list" }

func (fs *flagSet) names() flagNames {
	var out flagNames
	fs.VisitAll(func(f *flag.Flag) {
		if len(f.Name) == 1 {
			out = append(out, "-"+f.Name)
		} else {
			out = append(out, "--"+f.Name)
		}
	})
	return out
}

// parse parses args, allowing flags before, between and after positional
// arguments (a lone "--" ends the flags), and checks that between min and
// max positional arguments were given (max < 0: no limit).
func (fs *flagSet) parse(args []string, min, max int) ([]string, error) {
	if len(args) == 1 && args[0] == listFlagsArg {
		return nil, fs.names()
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.printUsage(os.Stdout)
				return nil, errUsage
			}
			return nil, fmt.Errorf("%s: %w%s (ringmq %s -h lists the flags)", fs.Name(), err, fs.suggest(err), fs.Name())
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

// printUsage prints the usage line and every flag, a short alias beside
// its long name ("-s, --server HOST:PORT").
func (fs *flagSet) printUsage(w io.Writer) {
	fmt.Fprintf(w, "usage: %s\n\nflags:\n", fs.usage)
	fs.VisitAll(func(f *flag.Flag) {
		if fs.aliasOf[f.Name] != "" {
			return
		}
		name := "    --" + f.Name
		if len(f.Name) == 1 {
			name = "-" + f.Name
		}
		if l := fs.short[f.Name]; l != "" {
			name = "-" + l + ", --" + f.Name
		}
		arg, usage := flag.UnquoteUsage(f)
		if arg != "" {
			name += " " + arg
		}
		fmt.Fprintf(w, "  %s\n    \t%s", name, usage)
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "-1" && f.DefValue != "false" {
			fmt.Fprintf(w, " (default %q)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

// suggest returns "; did you mean --x?" when err is an unknown flag close
// to one fs defines.
func (fs *flagSet) suggest(err error) string {
	name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -")
	if !ok {
		return ""
	}
	name = strings.TrimLeft(name, "-")
	var names []string
	fs.VisitAll(func(f *flag.Flag) {
		if len(f.Name) > 1 {
			names = append(names, f.Name)
		}
	})
	if m := closest(name, names); m != "" {
		return "; did you mean --" + m + "?"
	}
	return ""
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
// addr may be a comma-separated list: the first that answers serves.
func dialServer(ctx context.Context, server serverFlags, clientID string) (*client.Conn, error) {
	opts, err := server.options(clientID)
	if err != nil {
		return nil, err
	}
	var firstErr error
	for _, a := range strings.Split(server.addr, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, dialTimeout)
		c, err := client.Dial(dctx, a, opts)
		cancel()
		if err == nil {
			return c, nil
		}
		if firstErr == nil {
			firstErr = connectErr(a, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if firstErr == nil {
		return nil, fmt.Errorf("no server address in %q", server.addr)
	}
	return nil, firstErr
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
	case errors.Is(err, client.ErrNotRingmq):
		return &cliError{msg: notRingmqMsg(err), cause: err}
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
	case errors.Is(err, client.ErrNotRingmq):
		return &cliError{msg: notRingmqMsg(err), cause: err}
	case errors.Is(err, client.ErrNoLeader):
		msg = "no leader (the partition is offline: the nodes holding it are down) and none was elected in time"
	case isConnectErr(err):
		msg = "cannot connect to the server"
	case tlsMessage(err) != "":
		msg = tlsMessage(err)
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

// notRingmqMsg is the client's ErrNotRingmq explanation without the
// wrapping around it: "HOST:PORT is not a ringmq server: it answered like
// an HTTP server (...)".
func notRingmqMsg(err error) string {
	s := err.Error()
	i := strings.LastIndex(s, "client: ")
	if i < 0 {
		return s
	}
	return s[i+len("client: "):]
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

// reachability prints one line on stderr when a server address stops
// answering connection attempts, and one when it answers again, so that a
// producer or consumer retrying in the background is never silent. Each
// address is tracked alone: in a cluster, one node being down says
// nothing of the others. It is a client.Options.OnDial hook.
type reachability struct {
	mu   sync.Mutex
	w    io.Writer
	down map[string]bool
}

func (r *reachability) onDial(addr string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err != nil && !r.down[addr]:
		if r.down == nil {
			r.down = make(map[string]bool)
		}
		r.down[addr] = true
		fmt.Fprintf(r.w, "ringmq: %s; retrying\n", connectErr(addr, err))
	case err == nil && r.down[addr]:
		delete(r.down, addr)
		fmt.Fprintf(r.w, "ringmq: connected to %s again\n", addr)
	}
}
