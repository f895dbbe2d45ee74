package main

// ringmq completion bash|zsh|fish: shell completion scripts. The scripts
// are thin: they call the hidden `ringmq __complete WORDS...`, which
// completes the last word from the same command table and flag sets the
// commands use, so completion never drifts from the flags.

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/ringmq/ringmq/bench"
)

const completeCommand = "__complete"

var completionScripts = map[string]string{
	"bash": `# bash completion for ringmq: source <(ringmq completion bash)
_ringmq() {
	local IFS=$'\n'
	COMPREPLY=($(ringmq __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _ringmq ringmq
`,
	"zsh": `#compdef ringmq
# zsh completion for ringmq: source <(ringmq completion zsh) after compinit
_ringmq() {
	local -a candidates
	candidates=("${(@f)$(ringmq __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
	compadd -a candidates
}
compdef _ringmq ringmq
`,
	"fish": `# fish completion for ringmq: ringmq completion fish | source
complete -c ringmq -f -a '(ringmq __complete (commandline -opc)[2..-1] (commandline -ct))'
`,
}

func cmdCompletion(args []string, stdout io.Writer) error {
	if len(args) != 1 || completionScripts[args[0]] == "" {
		return fmt.Errorf("completion: usage: ringmq completion bash|zsh|fish")
	}
	_, err := io.WriteString(stdout, completionScripts[args[0]])
	return err
}

// cmdComplete prints the completions of the last of words, one a line.
func cmdComplete(words []string, stdout io.Writer) error {
	for _, c := range complete(words) {
		fmt.Fprintln(stdout, c)
	}
	return nil
}

// subcommands are the words that may follow a command.
func subcommands(cmd string) []string {
	switch cmd {
	case "topic":
		return topicSubcommandNames()
	case "cluster":
		return clusterSubcommandNames()
	case "user":
		return subcommandNames(userSubcommands)
	case "acl":
		return subcommandNames(aclSubcommands)
	case "groups":
		return []string{"list", "describe", "delete", "reset"}
	case "bench":
		return []string{string(bench.ModeProduce), string(bench.ModeConsume), string(bench.ModeE2E), string(bench.ModeTCP), string(bench.ModeRawlog)}
	case "completion":
		return slices.Sorted(func(yield func(string) bool) {
			for k := range completionScripts {
				if !yield(k) {
					return
				}
			}
		})
	case "help":
		return commandNames()
	}
	return nil
}

func commandNames() []string {
	var names []string
	for _, c := range commands {
		if !c.hidden {
			names = append(names, c.name)
		}
	}
	return names
}

// complete returns the candidates for the last of words (the word being
// typed, possibly empty), given the words before it.
func complete(words []string) []string {
	if len(words) == 0 {
		words = []string{""}
	}
	cur, before := words[len(words)-1], words[:len(words)-1]
	var candidates []string
	switch {
	case len(before) == 0:
		candidates = commandNames()
	case strings.HasPrefix(cur, "-"):
		path := before[:1]
		if subs := subcommands(before[0]); (before[0] == "topic" || before[0] == "cluster" || before[0] == "user" || before[0] == "acl") && len(before) > 1 && slices.Contains(subs, before[1]) {
			path = before[:2]
		}
		candidates = flagsOf(path)
	case len(before) == 1:
		candidates = subcommands(before[0])
	}
	var out []string
	for _, c := range candidates {
		if strings.HasPrefix(c, cur) {
			out = append(out, c)
		}
	}
	return out
}
