// Command ringmq is a persistent, partitioned message log broker: the
// server, its CLI and its load generator in one binary.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ringmq:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: ringmq serve|topic|produce|consume|groups|bench ...")
	}
	return fmt.Errorf("unknown command %q", args[0])
}
