package main

import (
	"bytes"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDispatch(t *testing.T) {
	tests := []struct {
		args []string
		want string // "" for success
	}{
		{nil, "usage: ringmq serve|topic|produce|consume|groups|bench ... (ringmq help)"},
		{[]string{"nope"}, `unknown command "nope" (ringmq help lists them)`},
		{[]string{"consme"}, `unknown command "consme"; did you mean "consume"? (ringmq help lists them)`},
		{[]string{"prodcue"}, `unknown command "prodcue"; did you mean "produce"? (ringmq help lists them)`},
		{[]string{"help", "nope"}, `unknown command "nope" (ringmq help lists them)`},
		{[]string{"serve", "--bogus"}, "serve: flag provided but not defined: -bogus"},
		{[]string{"help"}, ""},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		err := run(tt.args, &out)
		if tt.want == "" {
			if err != nil || !strings.Contains(out.String(), "  consume    read messages from a topic\n") {
				t.Errorf("run(%q) = %v, printed %q", tt.args, err, out.String())
			}
			continue
		}
		if err == nil || err.Error() != tt.want {
			t.Errorf("run(%q) = %v, want %q", tt.args, err, tt.want)
		}
	}
	if err := notImplemented("bench")(nil); err == nil || err.Error() != "bench: not implemented" {
		t.Errorf("notImplemented: %v", err)
	}
	for _, name := range []string{"serve", "topic", "produce", "consume", "groups", "bench", "version", "completion", "help"} {
		if findCommand(name) == nil {
			t.Errorf("command %q missing", name)
		}
	}
}

func TestClosest(t *testing.T) {
	cands := []string{"create", "list", "describe", "alter", "add-partitions", "delete", "partitions", "partition", "print-key"}
	for in, want := range map[string]string{
		"craete": "create", "lsit": "list", "delte": "delete", "alter": "alter", "partiton": "partition",
		"partitons": "partitions", "add-part": "add-partitions", "printkey": "print-key",
		"x": "", "frobnicate": "", "ls": "",
	} {
		if got := closest(in, cands); got != want {
			t.Errorf("closest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUnknownFlagSuggestion(t *testing.T) {
	_, err := parseConsumeFlags([]string{"t", "--grup", "g"}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "did you mean --group?") {
		t.Fatalf("--grup: %v", err)
	}
	_, err = parseProduceFlags([]string{"t", "--zzz"})
	if err == nil || strings.Contains(err.Error(), "did you mean") {
		t.Fatalf("--zzz: %v", err)
	}
}

func TestVersionLine(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-11-30T12:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	want := "ringmq v1.2.3 (commit 0123456789ab, 2026-11-30T12:00:00Z, modified) go1.26.0 " + runtime.GOOS + "/" + runtime.GOARCH
	if got := versionLine(bi); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got := versionLine(&debug.BuildInfo{GoVersion: "go1.26.0"}); !strings.HasPrefix(got, "ringmq (devel) (commit unknown) go1.26.0") {
		t.Errorf("no VCS: %q", got)
	}
	var out bytes.Buffer
	if err := run([]string{"--version"}, &out); err != nil || !strings.Contains(out.String(), runtime.Version()) {
		t.Errorf("--version: %v, %q", err, out.String())
	}
}

func TestComplete(t *testing.T) {
	for _, tt := range []struct {
		words []string
		want  []string
	}{
		{[]string{""}, []string{"serve", "topic", "produce", "consume", "groups", "cluster", "user", "acl", "bench", "version", "completion", "help"}},
		{[]string{"cluster", ""}, []string{"status"}},
		{[]string{"cluster", "status", "--j"}, []string{"--json"}},
		{[]string{"topic", "create", "--r"}, []string{"--replicas"}},
		{[]string{"co"}, []string{"consume", "completion"}},
		{[]string{"topic", "a"}, []string{"alter", "add-partitions"}},
		{[]string{"topic", "create", "--pa"}, []string{"--partitions", "--password", "--password-file"}},
		{[]string{"user", ""}, []string{"create", "delete", "list"}},
		{[]string{"acl", "add", "--allow"}, []string{"--allow-principal"}},
		{[]string{"topic", "add-partitions", "t", "--c"}, []string{"--count"}},
		{[]string{"consume", "t", "--print-o"}, []string{"--print-offset"}},
		{[]string{"produce", "--he"}, []string{"--header"}},
		{[]string{"serve", "--l"}, []string{"--listen"}},
		{[]string{"completion", ""}, []string{"bash", "fish", "zsh"}},
		{[]string{"help", "gr"}, []string{"groups"}},
		{[]string{"bench", "e"}, []string{"e2e"}},
		{[]string{"consume", "t"}, nil},
	} {
		if got := complete(tt.words); !slices.Equal(got, tt.want) {
			t.Errorf("complete(%q) = %q, want %q", tt.words, got, tt.want)
		}
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		var out bytes.Buffer
		if err := run([]string{"completion", shell}, &out); err != nil || !strings.Contains(out.String(), "ringmq __complete") {
			t.Errorf("completion %s: %v\n%s", shell, err, out.String())
		}
	}
	if err := run([]string{"completion", "tcsh"}, &bytes.Buffer{}); err == nil {
		t.Error("completion tcsh accepted")
	}
}
