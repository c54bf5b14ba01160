// Command pastry is the Pastry overlay's one binary: the daemon (node), a
// one-process network (devnet), the clients of a node's HTTP API (status,
// table, route, id, publish, subscribe, put, get, rm), identities (keygen), the
// certificate authority (ca), the simulator (sim) and its own version
// (version).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"node", "run a Pastry node (daemon) with an HTTP API", runNode},
		{"devnet", "run N nodes on 127.0.0.1 in one process", runDevnet},
		{"status", "show a running node's status (via its API)", runStatus},
		{"table", "show a running node's routing table and leaf set", runTable},
		{"route", "route a lookup for a key from a running node", runRoute},
		{"id", "print a running node's node id and peer ID", runID},
		{"publish", "publish a message to a topic from a running node", runPublish},
		{"subscribe", "subscribe a running node to a topic and print its messages", runSubscribe},
		{"put", "store a record (or an immutable object) through a running node", runPut},
		{"get", "read a record or object through a running node", runGet},
		{"rm", "delete a record (a signed tombstone) through a running node", runRm},
		{"keygen", "create a node identity key", runKeygen},
		{"ca", "certificate authority: create one, issue node certificates", runCA},
		{"sim", "run the discrete-event simulator (the papers' experiments)", runSim},
		{"bench", "the bench harness: node processes in network namespaces, or on a cluster", runBench},
		{"version", "print this binary's version, commit and protocol", runVersion},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: pastry <command> [flags]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'pastry <command> -h' for a command's flags.\n")
}

// errUsage marks errors already explained by a usage message.
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(args[1:], stdout, stderr)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				return 2
			}
			fmt.Fprintf(stderr, "pastry %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "pastry: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}
