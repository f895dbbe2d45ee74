package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestDispatch(t *testing.T) {
	tests := []struct {
		args []string
		want string // "" for success
	}{
		{nil, "usage: ringmq serve|topic|produce|consume|groups|bench ... (ringmq help)"},
		{[]string{"nope"}, `unknown command "nope" (ringmq help lists them)`},
		{[]string{"serve", "--bogus"}, "serve: flag provided but not defined: -bogus"},
		{[]string{"help"}, ""},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		err := run(tt.args, &out)
		if tt.want == "" {
			if err != nil || !strings.Contains(out.String(), "  consume  read messages from a topic\n") {
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
	for _, name := range []string{"serve", "topic", "produce", "consume", "groups", "bench"} {
		found := false
		for _, c := range commands {
			found = found || c.name == name
		}
		if !found {
			t.Errorf("command %q missing", name)
		}
	}
}
