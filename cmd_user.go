package main

// ringmq user create|delete|list: SCRAM users (server.sasl = scram).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"golang.org/x/sys/unix"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/proto"
)

const (
	userUsage      = "ringmq user create|delete|list ... (ringmq user SUBCOMMAND -h for its flags)"
	newPasswordEnv = "RINGMQ_NEW_PASSWORD" // the password of the user being created
)

var userSubcommands = []subcommand{{"create", userCreate}, {"delete", userDelete}, {"list", userList}}

// subcommand is one word after a command (user, acl) and its entry point.
type subcommand struct {
	name string
	run  func([]string) error
}

func subcommandNames(subs []subcommand) []string {
	names := make([]string, len(subs))
	for i, s := range subs {
		names[i] = s.name
	}
	return names
}

// runSubcommand dispatches args[0] among subs.
func runSubcommand(cmd, usage string, subs []subcommand, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%s: missing subcommand; usage: %s", cmd, usage)
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Println("usage:", usage)
		return nil
	}
	for _, sub := range subs {
		if sub.name == args[0] {
			return quietUsage(sub.run(args[1:]))
		}
	}
	if m := closest(args[0], subcommandNames(subs)); m != "" {
		return fmt.Errorf("%s: unknown subcommand %q; did you mean %q? usage: %s", cmd, args[0], m, usage)
	}
	return fmt.Errorf("%s: unknown subcommand %q; usage: %s", cmd, args[0], usage)
}

func cmdUser(args []string) error { return runSubcommand("user", userUsage, userSubcommands, args) }

func userCreate(args []string) error {
	fs := newFlagSet("user create", "ringmq user create NAME [--mechanism M] [--iterations N] [--new-password-file FILE] [--server HOST:PORT,...]\n"+
		"The new user's password comes from --new-password-file, $"+newPasswordEnv+", a prompt on the terminal, or the first line of stdin.\n"+
		"While the cluster has no user, a server with server.sasl = scram accepts the first from its own host without authentication.")
	server := fs.serverFlag()
	mech := fs.String("mechanism", proto.MechanismScramSHA256, "SCRAM mechanism of the credential: "+proto.MechanismScramSHA256+" or "+proto.MechanismScramSHA512)
	iterations := fs.Int("iterations", client.DefaultScramIterations, "PBKDF2 iterations (at least 4096)")
	file := fs.String("new-password-file", "", "read the new user's password from `FILE` (its first line)")
	pos, err := fs.parse(args, 1, 1)
	if err != nil {
		return err
	}
	password, err := newPassword(*file, os.Stdin)
	if err != nil {
		return fmt.Errorf("user create %q: %w", pos[0], err)
	}
	return withAdmin(*server, func(ctx context.Context, a *client.Admin) error {
		if err := a.UpsertUser(ctx, pos[0], *mech, password, *iterations); err != nil {
			return describeErr(fmt.Sprintf("user create %q", pos[0]), err)
		}
		fmt.Printf("user %q: %s credential set\n", pos[0], *mech)
		return nil
	})
}

// newPassword reads the password of a user being created: from file, the
// environment, a prompt without echo when stdin is a terminal, or the first
// line of stdin.
func newPassword(file string, stdin *os.File) (string, error) {
	switch {
	case file != "":
		return readPasswordFile(file)
	case os.Getenv(newPasswordEnv) != "":
		return os.Getenv(newPasswordEnv), nil
	}
	if term, err := unix.IoctlGetTermios(int(stdin.Fd()), unix.TCGETS); err == nil {
		quiet := *term
		quiet.Lflag &^= unix.ECHO
		if err := unix.IoctlSetTermios(int(stdin.Fd()), unix.TCSETS, &quiet); err == nil {
			defer unix.IoctlSetTermios(int(stdin.Fd()), unix.TCSETS, term)
		}
		fmt.Fprint(os.Stderr, "new password: ")
		defer fmt.Fprintln(os.Stderr)
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the new password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("empty password (give --new-password-file, $%s, or type it)", newPasswordEnv)
	}
	return line, nil
}

func userDelete(args []string) error {
	fs := newFlagSet("user delete", "ringmq user delete NAME [--server HOST:PORT,...]")
	server := fs.serverFlag()
	pos, err := fs.parse(args, 1, 1)
	if err != nil {
		return err
	}
	return withAdmin(*server, func(ctx context.Context, a *client.Admin) error {
		if err := a.DeleteUser(ctx, pos[0]); err != nil {
			return describeErr(fmt.Sprintf("user delete %q", pos[0]), err)
		}
		fmt.Printf("deleted user %q\n", pos[0])
		return nil
	})
}

func userList(args []string) error {
	fs := newFlagSet("user list", "ringmq user list [--server HOST:PORT,...]")
	server := fs.serverFlag()
	if _, err := fs.parse(args, 0, 0); err != nil {
		return err
	}
	return withAdmin(*server, func(ctx context.Context, a *client.Admin) error {
		users, err := a.ListUsers(ctx)
		if err != nil {
			return describeErr("user list", err)
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USER\tMECHANISM\tITERATIONS")
		for _, u := range users {
			for _, m := range u.Mechanisms {
				fmt.Fprintf(tw, "%s\t%s\t%d\n", u.Name, m.Mechanism, m.Iterations)
			}
		}
		return tw.Flush()
	})
}
