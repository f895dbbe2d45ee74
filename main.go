// Command ringmq is a persistent, partitioned message log broker: the
// server, its CLI and its load generator in one binary.
//
//	ringmq serve [--config config.toml] [--data-dir DIR] [--listen ADDR] [--metrics-listen ADDR]
//	ringmq topic|produce|consume|groups|bench ...
//
// This file only dispatches; each command lives in its cmd_*.go file. Any
// error ends the process with one line "ringmq: ..." on stderr and exit
// status 1.
package main

import (
	"fmt"
	"io"
	"os"
)

// command is one subcommand: its name, a one-line summary, and its entry
// point, which gets the arguments after the name.
type command struct {
	name    string
	summary string
	run     func(args []string) error
}

var commands = []command{
	{"serve", "run the broker", cmdServe},
	{"topic", "create, list, describe and delete topics", cmdTopic},
	{"produce", "send messages to a topic", cmdProduce},
	{"consume", "read messages from a topic", cmdConsume},
	{"groups", "list and describe consumer groups", cmdGroups},
	{"bench", "generate load and measure it", cmdBench},
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ringmq:", err)
		os.Exit(1)
	}
}

// run dispatches to the command named by args[0]; help goes to stdout.
func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: ringmq serve|topic|produce|consume|groups|bench ... (ringmq help)")
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		printUsage(stdout)
		return nil
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(args[1:])
		}
	}
	return fmt.Errorf("unknown command %q (ringmq help lists them)", args[0])
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, "usage: ringmq <command> [flags]\n\ncommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nringmq <command> -h shows a command's flags.\n")
}

func notImplemented(name string) func([]string) error {
	return func([]string) error { return fmt.Errorf("%s: not implemented", name) }
}
