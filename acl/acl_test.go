package acl

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// allow and deny are short constructors for table entries.
func allow(principal string, rt ResourceType, pt PatternType, name string, op Operation) Entry {
	return Entry{Principal: principal, Resource: rt, Pattern: pt, Name: name, Operation: op, Permission: Allow}
}

func deny(principal string, rt ResourceType, pt PatternType, name string, op Operation) Entry {
	e := allow(principal, rt, pt, name, op)
	e.Permission = Deny
	return e
}

type request struct {
	principal string
	op        Operation
	rt        ResourceType
	name      string
	want      bool
}

func (q request) String() string {
	return fmt.Sprintf("Allowed(%q, %s, %s, %q)", q.principal, q.op, q.rt, q.name)
}

const (
	alice = "User:alice"
	bob   = "User:bob"
	root  = "User:root"
)

func TestAllowed(t *testing.T) {
	for _, tc := range []struct {
		name       string
		entries    []Entry
		superusers []string
		requests   []request
	}{
		{"default deny", nil, nil, []request{
			{alice, OpRead, ResourceTopic, "orders", false},
			{alice, OpDescribe, ResourceCluster, ClusterName, false},
		}},
		{"literal", []Entry{allow(alice, ResourceTopic, PatternLiteral, "orders", OpRead)}, nil, []request{
			{alice, OpRead, ResourceTopic, "orders", true},
			{alice, OpRead, ResourceTopic, "orders2", false}, // not a prefix match
			{alice, OpRead, ResourceTopic, "order", false},
			{alice, OpWrite, ResourceTopic, "orders", false}, // another operation
			{alice, OpRead, ResourceGroup, "orders", false},  // another resource type
			{bob, OpRead, ResourceTopic, "orders", false},    // another principal
		}},
		{"prefixed", []Entry{allow(alice, ResourceTopic, PatternPrefixed, "orders.", OpWrite)}, nil, []request{
			{alice, OpWrite, ResourceTopic, "orders.eu", true},
			{alice, OpWrite, ResourceTopic, "orders.", true},
			{alice, OpWrite, ResourceTopic, "orders", false},
			{alice, OpWrite, ResourceTopic, "xorders.eu", false},
			{alice, OpWrite, ResourceGroup, "orders.eu", false},
		}},
		{"wildcard resource", []Entry{allow(alice, ResourceGroup, PatternLiteral, Wildcard, OpRead)}, nil, []request{
			{alice, OpRead, ResourceGroup, "billing", true},
			{alice, OpRead, ResourceGroup, "*", true},
			{alice, OpRead, ResourceTopic, "billing", false},
		}},
		{"a literal name is not a pattern", []Entry{allow(alice, ResourceTopic, PatternLiteral, "a*", OpRead)}, nil, []request{
			{alice, OpRead, ResourceTopic, "a*", true},
			{alice, OpRead, ResourceTopic, "ab", false},
		}},
		{"wildcard principal", []Entry{allow(Wildcard, ResourceTopic, PatternLiteral, "public", OpRead)}, nil, []request{
			{alice, OpRead, ResourceTopic, "public", true},
			{bob, OpRead, ResourceTopic, "public", true},
			{"User:", OpRead, ResourceTopic, "public", true},
			{bob, OpWrite, ResourceTopic, "public", false},
		}},
		{"operation all", []Entry{allow(alice, ResourceTopic, PatternLiteral, "orders", OpAll)}, nil, []request{
			{alice, OpRead, ResourceTopic, "orders", true},
			{alice, OpWrite, ResourceTopic, "orders", true},
			{alice, OpCreate, ResourceTopic, "orders", true},
			{alice, OpDelete, ResourceTopic, "orders", true},
			{alice, OpDescribe, ResourceTopic, "orders", true},
			{alice, OpAlter, ResourceTopic, "orders", true},
			{alice, OpAll, ResourceTopic, "orders", false}, // not a request
			{alice, OpRead, ResourceTopic, "other", false},
		}},
		{"deny wins over allow", []Entry{
			allow(alice, ResourceTopic, PatternPrefixed, "orders", OpAll),
			deny(alice, ResourceTopic, PatternLiteral, "orders.secret", OpRead),
		}, nil, []request{
			{alice, OpRead, ResourceTopic, "orders.secret", false},
			{alice, OpWrite, ResourceTopic, "orders.secret", true},
			{alice, OpRead, ResourceTopic, "orders.eu", true},
		}},
		{"deny wins whatever the order", []Entry{
			deny(alice, ResourceTopic, PatternLiteral, "orders", OpWrite),
			allow(alice, ResourceTopic, PatternLiteral, "orders", OpWrite),
		}, nil, []request{
			{alice, OpWrite, ResourceTopic, "orders", false},
		}},
		{"a wildcard deny beats a principal's allow", []Entry{
			allow(alice, ResourceTopic, PatternLiteral, "orders", OpDelete),
			deny(Wildcard, ResourceTopic, PatternLiteral, Wildcard, OpDelete),
		}, nil, []request{
			{alice, OpDelete, ResourceTopic, "orders", false},
		}},
		{"a principal's deny beats a wildcard allow", []Entry{
			allow(Wildcard, ResourceTopic, PatternLiteral, Wildcard, OpRead),
			deny(bob, ResourceTopic, PatternPrefixed, "hr.", OpRead),
		}, nil, []request{
			{bob, OpRead, ResourceTopic, "hr.salaries", false},
			{bob, OpRead, ResourceTopic, "orders", true},
			{alice, OpRead, ResourceTopic, "hr.salaries", true},
		}},
		{"deny all", []Entry{
			allow(alice, ResourceGroup, PatternLiteral, "g", OpRead),
			deny(alice, ResourceGroup, PatternLiteral, "g", OpAll),
		}, nil, []request{
			{alice, OpRead, ResourceGroup, "g", false},
			{alice, OpDescribe, ResourceGroup, "g", false},
		}},
		{"superuser", []Entry{
			deny(Wildcard, ResourceTopic, PatternLiteral, Wildcard, OpAll),
			deny(root, ResourceCluster, PatternLiteral, Wildcard, OpAlter),
		}, []string{root}, []request{
			{root, OpRead, ResourceTopic, "orders", true},
			{root, OpDelete, ResourceTopic, "orders", true},
			{root, OpAlter, ResourceCluster, ClusterName, true},
			{root, OpCreate, ResourceGroup, "g", true},
			{root, OpAll, ResourceTopic, "orders", false},    // not a request
			{root, OpRead, ResourceType(9), "orders", false}, // unknown resource type
			{alice, OpRead, ResourceTopic, "orders", false},
		}},
		{"implied describe", []Entry{
			allow(alice, ResourceTopic, PatternLiteral, "r", OpRead),
			allow(alice, ResourceTopic, PatternLiteral, "w", OpWrite),
			allow(alice, ResourceTopic, PatternLiteral, "d", OpDelete),
			allow(alice, ResourceTopic, PatternLiteral, "a", OpAlter),
			allow(alice, ResourceTopic, PatternLiteral, "c", OpCreate),
		}, nil, []request{
			{alice, OpDescribe, ResourceTopic, "r", true},
			{alice, OpDescribe, ResourceTopic, "w", true},
			{alice, OpDescribe, ResourceTopic, "d", true},
			{alice, OpDescribe, ResourceTopic, "a", true},
			{alice, OpDescribe, ResourceTopic, "c", false}, // Create implies nothing
			{alice, OpRead, ResourceTopic, "w", false},     // Describe implies nothing back
			{alice, OpDescribe, ResourceTopic, "x", false},
		}},
		{"describe does not imply read", []Entry{allow(alice, ResourceTopic, PatternLiteral, "t", OpDescribe)}, nil, []request{
			{alice, OpDescribe, ResourceTopic, "t", true},
			{alice, OpRead, ResourceTopic, "t", false},
		}},
		{"a deny of read does not deny describe", []Entry{
			allow(alice, ResourceTopic, PatternLiteral, "t", OpDescribe),
			deny(alice, ResourceTopic, PatternLiteral, "t", OpRead),
		}, nil, []request{
			{alice, OpDescribe, ResourceTopic, "t", true},
			{alice, OpRead, ResourceTopic, "t", false},
		}},
		{"cluster", []Entry{allow(alice, ResourceCluster, PatternLiteral, ClusterName, OpCreate)}, nil, []request{
			{alice, OpCreate, ResourceCluster, ClusterName, true},
			{alice, OpCreate, ResourceTopic, "t", false},
			{alice, OpDescribe, ResourceCluster, ClusterName, false},
		}},
		{"unknown operations are refused", []Entry{allow(alice, ResourceTopic, PatternLiteral, "t", OpAll)}, nil, []request{
			{alice, Operation(0), ResourceTopic, "t", false},
			{alice, Operation(8), ResourceTopic, "t", false},
			{alice, Operation(255), ResourceTopic, "t", false},
			{alice, OpRead, ResourceType(0), "t", false},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := New(tc.entries, tc.superusers)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range tc.requests {
				if got := a.Allowed(q.principal, q.op, q.rt, q.name); got != q.want {
					t.Errorf("%v = %v, want %v", q, got, q.want)
				}
			}
		})
	}
}

func TestNewRejectsInvalidEntries(t *testing.T) {
	good := allow(alice, ResourceTopic, PatternLiteral, "t", OpRead)
	for _, tc := range []struct {
		mutate func(*Entry)
		want   string
	}{
		{func(e *Entry) { e.Principal = "" }, "empty principal"},
		{func(e *Entry) { e.Resource = 0 }, "resource type unknown(0)"},
		{func(e *Entry) { e.Resource = 4 }, "resource type unknown(4)"},
		{func(e *Entry) { e.Pattern = 3 }, "pattern type unknown(3)"},
		{func(e *Entry) { e.Name = "" }, "empty resource name"},
		{func(e *Entry) { e.Pattern, e.Name = PatternPrefixed, "*" }, `prefixed "*"`},
		{func(e *Entry) { e.Operation = 0 }, "operation unknown(0)"},
		{func(e *Entry) { e.Operation = 8 }, "operation unknown(8)"},
		{func(e *Entry) { e.Permission = 3 }, "permission unknown(3)"},
	} {
		e := good
		tc.mutate(&e)
		_, err := New([]Entry{good, e}, nil)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "entry 1 ") {
			t.Errorf("New with %+v = %v, want ErrInvalid for entry 1 naming %q", e, err, tc.want)
		}
	}
	if _, err := New(nil, []string{root, ""}); !errors.Is(err, ErrInvalid) {
		t.Errorf("New with an empty superuser = %v, want ErrInvalid", err)
	}
}

// An Authorizer keeps what it was built from: changing the caller's slices
// afterwards changes no decision.
func TestAuthorizerIsImmutable(t *testing.T) {
	entries := []Entry{allow(alice, ResourceTopic, PatternLiteral, "t", OpRead)}
	supers := []string{root}
	a, err := New(entries, supers)
	if err != nil {
		t.Fatal(err)
	}
	entries[0].Principal = bob
	supers[0] = bob
	got := a.Entries()
	got[0].Name = "other"
	if !a.Allowed(alice, OpRead, ResourceTopic, "t") || a.Allowed(bob, OpRead, ResourceTopic, "t") ||
		!a.Allowed(root, OpDelete, ResourceTopic, "t") {
		t.Error("a decision changed after the caller's slices did")
	}
	if e := a.Entries()[0]; e.Principal != alice || e.Name != "t" {
		t.Errorf("Entries()[0] = %v, want the entry New was given", e)
	}
}

func TestAllowedDoesNotAllocate(t *testing.T) {
	var entries []Entry
	for i := range 50 {
		p := fmt.Sprintf("User:u%d", i)
		entries = append(entries,
			allow(p, ResourceTopic, PatternPrefixed, fmt.Sprintf("team%d.", i), OpAll),
			deny(p, ResourceTopic, PatternLiteral, fmt.Sprintf("team%d.secret", i), OpRead),
			allow(p, ResourceGroup, PatternLiteral, Wildcard, OpRead))
	}
	entries = append(entries, allow(Wildcard, ResourceTopic, PatternLiteral, "public", OpRead))
	a, err := New(entries, []string{root})
	if err != nil {
		t.Fatal(err)
	}
	// Names built at run time, as a request's would be.
	principal, topic, secret := "User:u"+fmt.Sprint(7), "team7.orders", "team7."+"secret"
	var sink bool
	allocs := testing.AllocsPerRun(1000, func() {
		sink = a.Allowed(principal, OpWrite, ResourceTopic, topic) &&
			!a.Allowed(principal, OpRead, ResourceTopic, secret) &&
			a.Allowed(bob, OpDescribe, ResourceTopic, "public") &&
			!a.Allowed(bob, OpRead, ResourceTopic, topic) &&
			a.Allowed(root, OpDelete, ResourceCluster, ClusterName)
	})
	if !sink {
		t.Fatal("wrong decisions in the allocation test")
	}
	if allocs != 0 {
		t.Errorf("Allowed allocates %v times per run, want 0", allocs)
	}
}

func BenchmarkAllowed(b *testing.B) {
	a, err := New([]Entry{
		allow(alice, ResourceTopic, PatternPrefixed, "orders.", OpAll),
		deny(alice, ResourceTopic, PatternLiteral, "orders.secret", OpRead),
		allow(Wildcard, ResourceTopic, PatternLiteral, "public", OpRead),
	}, []string{root})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		a.Allowed(alice, OpRead, ResourceTopic, "orders.eu")
	}
}
