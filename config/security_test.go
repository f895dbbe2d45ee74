package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestSecuritySettings(t *testing.T) {
	cfg, err := Parse([]byte("[server]\nsasl = \"scram\"\nauthorization = \"on\"\nsuperusers = [\"User:admin\", \"User:ops\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.SASL != SASLScram || cfg.Server.Authorization != On ||
		!slices.Equal(cfg.Server.Superusers, []string{"User:admin", "User:ops"}) {
		t.Fatalf("server %+v", cfg.Server)
	}
	if _, err := Parse([]byte("[server]\nsasl = \"scram\"\n[cluster]\npeers = [\"1@127.0.0.1:9400\", \"2@127.0.0.1:9410\"]\n")); !errors.Is(err, ErrInvalid) ||
		!strings.Contains(err.Error(), "server.broker_user") {
		t.Errorf("a SASL cluster without a broker user: %v", err)
	}
	for _, bad := range []struct{ toml, want string }{
		{`sasl = "plain"`, "server.sasl"},
		{`authorization = "yes"`, "server.authorization"},
		{`superusers = ["admin"]`, `server.superusers = "admin": want principals such as "User:admin"`},
		{`superusers = "User:admin"`, "want an array of strings"},
		{`superusers = [1]`, "want an array of strings"},
		{`broker_user = "broker"`, "set server.broker_user and server.broker_password together"},
		{"broker_user = \"a,b\"\nbroker_password = \"x\"", "want a user name"},
	} {
		_, err := Parse([]byte("[server]\n" + bad.toml + "\n"))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want an error containing %q", bad.toml, err, bad.want)
		}
	}
}
