package config

import "strings"

// SASLMode is the server.sasl choice.
type SASLMode uint8

const (
	saslUnset SASLMode = iota
	// SASLOff: no authentication; every connection is User:ANONYMOUS.
	SASLOff
	// SASLScram: SCRAM-SHA-256 and SCRAM-SHA-512 before any other request.
	SASLScram
)

var saslNames = []string{SASLOff: "off", SASLScram: "scram"}

func (m SASLMode) String() string { return enumString(saslNames, uint8(m)) }

// MarshalText writes the TOML spelling ("off", "scram").
func (m SASLMode) MarshalText() ([]byte, error) { return enumMarshal(saslNames, uint8(m)) }

// UnmarshalText parses the TOML spelling; the error lists the valid ones.
func (m *SASLMode) UnmarshalText(b []byte) error { return enumUnmarshal(saslNames, (*uint8)(m), b) }

// OnOff is a switch spelled "on" or "off" (server.authorization).
type OnOff uint8

const (
	onOffUnset OnOff = iota
	Off
	On
)

var onOffNames = []string{Off: "off", On: "on"}

func (o OnOff) String() string { return enumString(onOffNames, uint8(o)) }

// MarshalText writes the TOML spelling ("on", "off").
func (o OnOff) MarshalText() ([]byte, error) { return enumMarshal(onOffNames, uint8(o)) }

// UnmarshalText parses the TOML spelling; the error lists the valid ones.
func (o *OnOff) UnmarshalText(b []byte) error { return enumUnmarshal(onOffNames, (*uint8)(o), b) }

func (s ServerConfig) validateSecurity(ck *checker) {
	ck.check(s.SASL != saslUnset, "server.sasl", s.SASL, `want "off" or "scram"`)
	ck.check(s.Authorization != onOffUnset, "server.authorization", s.Authorization, `want "off" or "on"`)
	ck.check((s.BrokerUser == "") == (s.BrokerPassword == ""), "server.broker_user", s.BrokerUser,
		"set server.broker_user and server.broker_password together")
	ck.check(s.BrokerUser == "" || !strings.ContainsAny(s.BrokerUser, ",=:"), "server.broker_user", s.BrokerUser,
		`want a user name without ',', '=' or ':'`)
	for _, u := range s.Superusers {
		name, ok := strings.CutPrefix(u, "User:")
		ck.check(ok && name != "", "server.superusers", u, `want principals such as "User:admin"`)
	}
}

// setStrings stores a TOML array of strings.
func setStrings(key string, p *[]string, v any) error {
	list, ok := v.([]any)
	if !ok {
		return invalid(key, v, "want an array of strings")
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			return invalid(key, v, "want an array of strings")
		}
		out = append(out, s)
	}
	*p = out
	return nil
}
