package main

// ringmq help [COMMAND], version, completion, and the "did you mean"
// suggestions for mistyped commands and flags.

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
)

// cmdHelp prints the general usage, or a command's own with help CMD
// [SUBCOMMAND].
func cmdHelp(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		printUsage(stdout)
		return nil
	}
	c := findCommand(args[0])
	switch {
	case c == nil:
		return unknownCommand(args[0])
	case c.run == nil:
		fmt.Fprintf(stdout, "ringmq %s: %s\n", c.name, c.summary)
		return nil
	}
	return c.run(append(slices.Clone(args[1:]), "-h"))
}

func findCommand(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

func unknownCommand(name string) error {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	if m := closest(name, names); m != "" {
		return fmt.Errorf("unknown command %q; did you mean %q? (ringmq help lists them)", name, m)
	}
	return fmt.Errorf("unknown command %q (ringmq help lists them)", name)
}

// closest returns the candidate nearest to s when it is near enough to be
// a typo (edit distance at most 2, and less than half of s), else "". A
// candidate s is a prefix of also counts.
func closest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		d := editDistance(s, c)
		if len(s) >= 3 && strings.HasPrefix(c, s) {
			d = min(d, 1)
		}
		if d < bestD && d*2 < max(len(s), 2)+1 {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Damerau-Levenshtein distance (optimal string
// alignment) between a and b.
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// cmdVersion prints the module version, the commit and the Go version the
// binary was built with.
func cmdVersion(args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("version: unexpected argument %q", args[0])
	}
	bi, _ := debug.ReadBuildInfo()
	fmt.Fprintln(stdout, versionLine(bi))
	return nil
}

// versionLine formats build information:
//
//	ringmq v1.2.3 (commit 0123456789ab, 2026-11-30T12:00:00Z, modified) go1.26.0 linux/amd64
func versionLine(bi *debug.BuildInfo) string {
	version, goVersion := "(unknown)", runtime.Version()
	var rev, when, modified string
	if bi != nil {
		version, goVersion = bi.Main.Version, bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = "modified"
				}
			}
		}
	}
	if version == "" {
		version = "(devel)"
	}
	var commit []string
	if rev != "" {
		commit = append(commit, "commit "+rev[:min(len(rev), 12)])
	} else {
		commit = append(commit, "commit unknown")
	}
	for _, s := range []string{when, modified} {
		if s != "" {
			commit = append(commit, s)
		}
	}
	return fmt.Sprintf("ringmq %s (%s) %s %s/%s", version, strings.Join(commit, ", "), goVersion, runtime.GOOS, runtime.GOARCH)
}

// flagsOf returns the flags of the command named by path ("consume",
// "topic create"), or nil.
func flagsOf(path []string) []string {
	c := findCommand(path[0])
	if c == nil || c.noFlags {
		return nil
	}
	err := c.run(append(slices.Clone(path[1:]), listFlagsArg))
	var names flagNames
	if errors.As(err, &names) {
		return names
	}
	return nil
}
