package main

// ringmq acl add|remove|list: ACL entries (server.authorization = on), with
// Kafka's kafka-acls flags.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/ringmq/ringmq/acl"
	"github.com/ringmq/ringmq/client"
)

const aclUsage = "ringmq acl add|remove|list ... (ringmq acl SUBCOMMAND -h for its flags)"

var aclSubcommands = []subcommand{{"add", aclAdd}, {"remove", aclRemove}, {"list", aclList}}

func cmdACL(args []string) error { return runSubcommand("acl", aclUsage, aclSubcommands, args) }

// listFlag collects a repeated string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// aclFlags are the flags that name entries.
type aclFlags struct {
	allow, deny, ops listFlag
	topic, group     string
	cluster          bool
	pattern          string
}

func (f *aclFlags) register(fs *flagSet) {
	fs.Var(&f.allow, "allow-principal", "`PRINCIPAL` (User:NAME, or * for everyone) the entries allow; repeatable")
	fs.Var(&f.deny, "deny-principal", "`PRINCIPAL` the entries deny; repeatable")
	fs.Var(&f.ops, "operation", "`OP`: read, write, create, delete, describe, alter or all; repeatable")
	fs.StringVar(&f.topic, "topic", "", "the topic `NAME` (or prefix; * for every topic)")
	fs.StringVar(&f.group, "group", "", "the group `NAME` (or prefix; * for every group)")
	fs.BoolVar(&f.cluster, "cluster", false, "the cluster (create topics, cluster status, users and ACLs)")
	fs.StringVar(&f.pattern, "resource-pattern-type", "literal", "literal (the name itself, or *) or prefixed (names starting with it)")
}

// entries returns every (principal, operation) combination on the one
// resource the flags name.
func (f *aclFlags) entries() ([]acl.Entry, error) {
	var rt acl.ResourceType
	var name string
	switch {
	case (f.topic != "") && (f.group == "") && !f.cluster:
		rt, name = acl.ResourceTopic, f.topic
	case (f.topic == "") && (f.group != "") && !f.cluster:
		rt, name = acl.ResourceGroup, f.group
	case (f.topic == "") && (f.group == "") && f.cluster:
		rt, name = acl.ResourceCluster, acl.ClusterName
	default:
		return nil, fmt.Errorf("name one resource: --topic NAME, --group NAME or --cluster")
	}
	pattern, err := parsePattern(f.pattern)
	if err != nil {
		return nil, err
	}
	if len(f.allow)+len(f.deny) == 0 || len(f.ops) == 0 {
		return nil, fmt.Errorf("give at least one --allow-principal or --deny-principal and one --operation")
	}
	var out []acl.Entry
	for _, p := range []struct {
		principals listFlag
		perm       acl.Permission
	}{{f.allow, acl.Allow}, {f.deny, acl.Deny}} {
		for _, principal := range p.principals {
			if principal != acl.Wildcard && !strings.HasPrefix(principal, "User:") {
				return nil, fmt.Errorf("principal %q: want User:NAME or *", principal)
			}
			for _, o := range f.ops {
				op, err := parseOperation(o)
				if err != nil {
					return nil, err
				}
				e := acl.Entry{Principal: principal, Resource: rt, Pattern: pattern, Name: name, Operation: op, Permission: p.perm}
				if err := e.Validate(); err != nil {
					return nil, err
				}
				out = append(out, e)
			}
		}
	}
	return out, nil
}

func parseOperation(s string) (acl.Operation, error) {
	for op := acl.OpAll; op <= acl.OpAlter; op++ {
		if strings.EqualFold(s, op.String()) {
			return op, nil
		}
	}
	return 0, fmt.Errorf("--operation %q: want read, write, create, delete, describe, alter or all", s)
}

func parsePattern(s string) (acl.PatternType, error) {
	switch strings.ToLower(s) {
	case "literal":
		return acl.PatternLiteral, nil
	case "prefixed":
		return acl.PatternPrefixed, nil
	}
	return 0, fmt.Errorf("--resource-pattern-type %q: want literal or prefixed", s)
}

func aclAdd(args []string) error    { return aclChange("add", args) }
func aclRemove(args []string) error { return aclChange("remove", args) }

func aclChange(sub string, args []string) error {
	fs := newFlagSet("acl "+sub, "ringmq acl "+sub+" --allow-principal|--deny-principal PRINCIPAL --operation OP --topic NAME|--group NAME|--cluster [--resource-pattern-type literal|prefixed] [--server HOST:PORT,...]")
	server := fs.serverFlag()
	var f aclFlags
	f.register(fs)
	if _, err := fs.parse(args, 0, 0); err != nil {
		return err
	}
	entries, err := f.entries()
	if err != nil {
		return fmt.Errorf("acl %s: %w", sub, err)
	}
	return withAdmin(*server, func(ctx context.Context, a *client.Admin) error {
		change := a.CreateACLs
		if sub == "remove" {
			change = a.DeleteACLs
		}
		if err := change(ctx, entries); err != nil {
			return describeErr("acl "+sub, err)
		}
		verb := map[string]string{"add": "added", "remove": "removed"}[sub]
		for _, e := range entries {
			fmt.Printf("%s: %s\n", verb, e)
		}
		return nil
	})
}

func aclList(args []string) error {
	fs := newFlagSet("acl list", "ringmq acl list [--principal PRINCIPAL] [--topic NAME|--group NAME|--cluster] [--server HOST:PORT,...]")
	server := fs.serverFlag()
	principal := fs.String("principal", "", "only the entries of `PRINCIPAL`")
	topic := fs.String("topic", "", "only the entries on topic patterns named `NAME`")
	group := fs.String("group", "", "only the entries on group patterns named `NAME`")
	cluster := fs.Bool("cluster", false, "only the entries on the cluster")
	if _, err := fs.parse(args, 0, 0); err != nil {
		return err
	}
	keep := func(e acl.Entry) bool {
		switch {
		case *principal != "" && e.Principal != *principal,
			*topic != "" && (e.Resource != acl.ResourceTopic || e.Name != *topic),
			*group != "" && (e.Resource != acl.ResourceGroup || e.Name != *group),
			*cluster && e.Resource != acl.ResourceCluster:
			return false
		}
		return true
	}
	return withAdmin(*server, func(ctx context.Context, a *client.Admin) error {
		entries, err := a.ListACLs(ctx)
		if err != nil {
			return describeErr("acl list", err)
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PRINCIPAL\tPERMISSION\tOPERATION\tRESOURCE\tPATTERN\tNAME")
		for _, e := range entries {
			if keep(e) {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Principal, e.Permission, e.Operation, e.Resource, e.Pattern, e.Name)
			}
		}
		return tw.Flush()
	})
}
