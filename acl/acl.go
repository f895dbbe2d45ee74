package acl

import (
	"errors"
	"fmt"
	"strings"
)

// ResourceType is the kind of resource an entry protects. Wire values:
// never renumber.
type ResourceType uint8

const (
	ResourceTopic   ResourceType = 1
	ResourceGroup   ResourceType = 2
	ResourceCluster ResourceType = 3
)

// ClusterName is the name of the one cluster resource (Kafka's
// "kafka-cluster"); a literal "*" matches it too.
const ClusterName = "ringmq-cluster"

// PatternType says how an entry's Name matches a resource name. Wire
// values: never renumber.
type PatternType uint8

const (
	PatternLiteral  PatternType = 1 // equal, or "*" for every name
	PatternPrefixed PatternType = 2 // the resource name starts with Name
)

// Operation is what a request does to a resource. Wire values: never
// renumber.
type Operation uint8

const (
	OpAll      Operation = 1 // in an entry: every operation
	OpRead     Operation = 2
	OpWrite    Operation = 3
	OpCreate   Operation = 4
	OpDelete   Operation = 5
	OpDescribe Operation = 6
	OpAlter    Operation = 7
)

// Permission is what an entry does to the requests it matches. Wire
// values: never renumber.
type Permission uint8

const (
	Allow Permission = 1
	Deny  Permission = 2
)

// Wildcard is the principal of an entry that applies to every principal,
// and the literal name that matches every resource of its type.
const Wildcard = "*"

// ErrInvalid is returned by New and Entry.Validate for a malformed entry.
var ErrInvalid = errors.New("acl: invalid entry")

// Entry is one rule: Permission for Principal to do Operation on the
// resources of type Resource that Pattern and Name match.
type Entry struct {
	Principal  string // "User:alice", or Wildcard
	Resource   ResourceType
	Pattern    PatternType
	Name       string // a name, a prefix, or Wildcard (literal only)
	Operation  Operation
	Permission Permission
}

var (
	resourceNames   = [...]string{ResourceTopic: "topic", ResourceGroup: "group", ResourceCluster: "cluster"}
	patternNames    = [...]string{PatternLiteral: "literal", PatternPrefixed: "prefixed"}
	operationNames  = [...]string{OpAll: "all", OpRead: "read", OpWrite: "write", OpCreate: "create", OpDelete: "delete", OpDescribe: "describe", OpAlter: "alter"}
	permissionNames = [...]string{Allow: "allow", Deny: "deny"}
)

func enumName(names []string, v uint8) string {
	if int(v) < len(names) && names[v] != "" {
		return names[v]
	}
	return fmt.Sprintf("unknown(%d)", v)
}

func (r ResourceType) String() string { return enumName(resourceNames[:], uint8(r)) }
func (p PatternType) String() string  { return enumName(patternNames[:], uint8(p)) }
func (o Operation) String() string    { return enumName(operationNames[:], uint8(o)) }
func (p Permission) String() string   { return enumName(permissionNames[:], uint8(p)) }

func (r ResourceType) valid() bool { return r >= ResourceTopic && r <= ResourceCluster }
func (p PatternType) valid() bool  { return p == PatternLiteral || p == PatternPrefixed }
func (o Operation) valid() bool    { return o >= OpAll && o <= OpAlter }
func (p Permission) valid() bool   { return p == Allow || p == Deny }

func (e Entry) String() string {
	return fmt.Sprintf("%s %s %s on %s %s %q", e.Permission, e.Principal, e.Operation, e.Resource, e.Pattern, e.Name)
}

// Validate returns an ErrInvalid error naming what is wrong with e.
func (e Entry) Validate() error {
	switch {
	case e.Principal == "":
		return fmt.Errorf("%w: empty principal", ErrInvalid)
	case !e.Resource.valid():
		return fmt.Errorf("%w: resource type %s", ErrInvalid, e.Resource)
	case !e.Pattern.valid():
		return fmt.Errorf("%w: pattern type %s", ErrInvalid, e.Pattern)
	case e.Name == "":
		return fmt.Errorf("%w: empty resource name", ErrInvalid)
	case e.Pattern == PatternPrefixed && e.Name == Wildcard:
		return fmt.Errorf("%w: prefixed %q; a literal %q matches every name", ErrInvalid, Wildcard, Wildcard)
	case !e.Operation.valid():
		return fmt.Errorf("%w: operation %s", ErrInvalid, e.Operation)
	case !e.Permission.valid():
		return fmt.Errorf("%w: permission %s", ErrInvalid, e.Permission)
	}
	return nil
}

// opMask is a set of operations, bit o for Operation o.
type opMask uint16

const allOps opMask = 1<<OpRead | 1<<OpWrite | 1<<OpCreate | 1<<OpDelete | 1<<OpDescribe | 1<<OpAlter

// grants is the set of requested operations e matches: OpAll matches
// every one, and an allow of Read, Write, Delete or Alter matches
// Describe too.
func (e Entry) grants() opMask {
	if e.Operation == OpAll {
		return allOps
	}
	m := opMask(1) << e.Operation
	if e.Permission == Allow {
		switch e.Operation {
		case OpRead, OpWrite, OpDelete, OpAlter:
			m |= 1 << OpDescribe
		}
	}
	return m
}

// rule is an Entry compiled for matching.
type rule struct {
	pattern PatternType
	name    string
	ops     opMask
}

func (r *rule) matches(op Operation, name string) bool {
	if r.ops&(1<<op) == 0 {
		return false
	}
	if r.pattern == PatternPrefixed {
		return strings.HasPrefix(name, r.name)
	}
	return r.name == Wildcard || r.name == name
}

// ruleSet holds one principal's rules by resource type and permission.
type ruleSet struct {
	deny  [ResourceCluster + 1][]rule
	allow [ResourceCluster + 1][]rule
}

func (s *ruleSet) decide(op Operation, rt ResourceType, name string) (allowed, denied bool) {
	if s == nil {
		return false, false
	}
	for i := range s.deny[rt] {
		if s.deny[rt][i].matches(op, name) {
			return false, true
		}
	}
	for i := range s.allow[rt] {
		if s.allow[rt][i].matches(op, name) {
			return true, false
		}
	}
	return false, false
}

// Authorizer decides requests against a fixed entry list. It is immutable
// after New: safe for concurrent use, published by pointer swap.
type Authorizer struct {
	entries     []Entry
	superusers  map[string]struct{}
	byPrincipal map[string]*ruleSet // Wildcard's rules under Wildcard
}

// New builds an Authorizer from entries and superusers (principals allowed
// everything). Both are copied. It returns an ErrInvalid error for the
// first malformed entry or an empty superuser.
func New(entries []Entry, superusers []string) (*Authorizer, error) {
	a := &Authorizer{
		entries:     append([]Entry(nil), entries...),
		superusers:  make(map[string]struct{}, len(superusers)),
		byPrincipal: make(map[string]*ruleSet),
	}
	for _, s := range superusers {
		if s == "" {
			return nil, fmt.Errorf("%w: empty superuser", ErrInvalid)
		}
		a.superusers[s] = struct{}{}
	}
	for i, e := range entries {
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("entry %d (%s): %w", i, e, err)
		}
		set := a.byPrincipal[e.Principal]
		if set == nil {
			set = &ruleSet{}
			a.byPrincipal[e.Principal] = set
		}
		r := rule{pattern: e.Pattern, name: e.Name, ops: e.grants()}
		if e.Permission == Deny {
			set.deny[e.Resource] = append(set.deny[e.Resource], r)
		} else {
			set.allow[e.Resource] = append(set.allow[e.Resource], r)
		}
	}
	return a, nil
}

// Entries returns a copy of the entries a was built from, in their order.
func (a *Authorizer) Entries() []Entry { return append([]Entry(nil), a.entries...) }

// Allowed reports whether principal may do op on the resource of type rt
// named name (ClusterName for the cluster). See the package doc for the
// rules. It does not allocate.
func (a *Authorizer) Allowed(principal string, op Operation, rt ResourceType, name string) bool {
	if op == OpAll || !op.valid() || !rt.valid() {
		return false
	}
	if _, ok := a.superusers[principal]; ok {
		return true
	}
	allowP, denyP := a.byPrincipal[principal].decide(op, rt, name)
	if denyP {
		return false
	}
	allowW, denyW := a.byPrincipal[Wildcard].decide(op, rt, name)
	if denyW {
		return false
	}
	return allowP || allowW
}
