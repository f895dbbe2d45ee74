// Command ringmq is a persistent, partitioned message log broker: the
// server, its CLI and its load generator in one binary.
//
//	ringmq serve [--config config.toml] [--data-dir DIR] [--listen ADDR] [--metrics-listen ADDR]
//	ringmq topic|produce|consume|groups|cluster|user|acl|bench ...
//	ringmq help [COMMAND] | version | completion bash|zsh|fish
//
// This file only dispatches; each command lives in its cmd_*.go file. Any
// error ends the process with one line "ringmq: ..." on stderr and exit
// status 1.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// command is one subcommand: its name, a one-line summary, and its entry
// point, which gets the arguments after the name. Commands that print
// something other than records take the output writer (out).
type command struct {
	name    string
	summary string
	run     func(args []string) error
	out     func(args []string, stdout io.Writer) error
	noFlags bool // takes no flags (completion offers none)
	hidden  bool // not listed by help
}

// commands is the command table; set by init because help and completion
// read it.
var commands []command

func init() {
	commands = []command{
		{name: "serve", summary: "run the broker", run: cmdServe},
		{name: "topic", summary: "create, list, describe, alter and delete topics", run: cmdTopic},
		{name: "produce", summary: "send messages to a topic", run: cmdProduce},
		{name: "consume", summary: "read messages from a topic", run: cmdConsume},
		{name: "groups", summary: "list and describe consumer groups", run: cmdGroups},
		{name: "cluster", summary: "show the cluster's nodes, controller and unhealthy partitions", run: cmdCluster},
		{name: "user", summary: "create, delete and list SCRAM users", run: cmdUser},
		{name: "acl", summary: "add, remove and list ACL entries", run: cmdACL},
		{name: "bench", summary: "generate load and measure it", run: cmdBench},
		{name: "version", summary: "print the version, commit and Go version", out: cmdVersion, noFlags: true},
		{name: "completion", summary: "print a shell completion script (bash, zsh, fish)", out: cmdCompletion, noFlags: true},
		{name: "help", summary: "show the commands, or one command's flags", out: cmdHelp, noFlags: true},
		{name: completeCommand, out: cmdComplete, noFlags: true, hidden: true},
	}
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		// One line, whatever the error joined.
		fmt.Fprintln(os.Stderr, "ringmq:", strings.ReplaceAll(err.Error(), "\n", "; "))
		os.Exit(1)
	}
}

// run dispatches to the command named by args[0]; help goes to stdout.
func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: ringmq serve|topic|produce|consume|groups|bench ... (ringmq help)")
	}
	switch args[0] {
	case "-h", "-help", "--help":
		printUsage(stdout)
		return nil
	case "-V", "-version", "--version":
		return cmdVersion(args[1:], stdout)
	}
	c := findCommand(args[0])
	switch {
	case c == nil:
		return unknownCommand(args[0])
	case c.out != nil:
		return c.out(args[1:], stdout)
	}
	return c.run(args[1:])
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, "usage: ringmq <command> [flags]\n\ncommands:\n")
	for _, c := range commands {
		if !c.hidden {
			fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprint(w, "\nringmq help <command> (or ringmq <command> -h) shows a command's flags.\n"+
		"Client commands read the server address from --server, else $"+serverEnv+", else "+defaultServer+".\n")
}

func notImplemented(name string) func([]string) error {
	return func([]string) error { return fmt.Errorf("%s: not implemented", name) }
}
