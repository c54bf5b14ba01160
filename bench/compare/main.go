// Command compare runs this overlay and go-libp2p-kad-dht side by side, on
// the same libp2p hosts in one process, and writes a report: report.md,
// SVG figures and results.json.
//
//	cd bench/compare && go run . --nodes 200 --out results/200
//
// It builds --nodes loopback hosts (the product's transport.NewLoopbackHost
// over QUIC or TCP on 127.0.0.1: no mDNS, relays, NAT services or public
// bootstrap peers), each wrapped to count the bytes written on its streams
// by protocol. On them it sets up both protocols, one after the other
// (--order), and measures for each the time until ready, the messages and
// bytes spent getting there, and the process's growth in RSS and
// goroutines; then, with both running, it measures their traffic while
// idle, and in --rounds interleaved rounds: Pastry's Node.Lookup against
// kad-dht's GetClosestPeers and FindPeer, Node.Put and Node.GetRecord
// against PutValue and GetValue (latency, and messages per operation).
// Finally it closes each protocol and measures what that gives back.
//
// It is its own Go module, so that the product's module does not depend
// on kad-dht. README.md beside this file says how to read the report.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if err := mainErr(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "compare:", err)
		}
		os.Exit(2)
	}
}

func mainErr(args []string, stdout, stderr io.Writer) error {
	cfg, out, err := parseArgs(args, stderr)
	if err != nil {
		return err
	}
	if cfg.render != "" { // only redraw a report from its results.json
		data, err := os.ReadFile(cfg.render)
		if err != nil {
			return err
		}
		var res Result
		if err := json.Unmarshal(data, &res); err != nil {
			return fmt.Errorf("%s: %w", cfg.render, err)
		}
		return writeReport(out, &res)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, cfg, stdout)
	if err != nil {
		return err
	}
	if err := writeReport(out, res); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "report: %s\n", out)
	return nil
}

func parseArgs(args []string, stderr io.Writer) (Config, string, error) {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "hosts, each running both protocols (2 to 1000)")
	fs.StringVar(&cfg.Transport, "transport", cfg.Transport, "quic or tcp (on 127.0.0.1)")
	fs.StringVar(&cfg.Order, "order", cfg.Order, "which protocol is set up first on the bare hosts: pastry-first or kad-first\n(the second finds the hosts already connected)")
	fs.IntVar(&cfg.Lookups, "lookups", cfg.Lookups, "Pastry lookups (Node.Lookup), from random nodes for random keys")
	fs.IntVar(&cfg.KadLookups, "kad-lookups", cfg.KadLookups, "kad-dht GetClosestPeers, and as many FindPeer")
	fs.IntVar(&cfg.Records, "records", cfg.Records, "records put and got back by each protocol")
	fs.IntVar(&cfg.Publishes, "publishes", cfg.Publishes, "messages published to one topic by each of Scribe and GossipSub (0: no publish-subscribe phase)")
	fs.IntVar(&cfg.ValueSize, "value-size", cfg.ValueSize, "bytes in each record's value")
	fs.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "rounds the operations are interleaved in")
	fs.IntVar(&cfg.Batch, "batch", cfg.Batch, "nodes joining (Pastry) or bootstrapping (kad-dht) at once")
	fs.DurationVar(&cfg.Heartbeat, "heartbeat", cfg.Heartbeat, "Pastry's leaf-set heartbeat (the devnet's 2s; 0 for the protocol's 30s)")
	fs.DurationVar(&cfg.ReadyTimeout, "ready-timeout", cfg.ReadyTimeout, "how long Pastry's leaf sets may take to become exact after the joins")
	fs.DurationVar(&cfg.Settle, "settle", cfg.Settle, "wait after a protocol is ready before measuring the footprint")
	fs.DurationVar(&cfg.Idle, "idle", cfg.Idle, "window in which idle traffic is measured, with both protocols up")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed for keys and the choice of nodes")
	fs.StringVar(&cfg.render, "render", "", "run nothing: redraw the report in --out from this results.json")
	out := fs.String("out", "compare-report", "directory for report.md, the SVG figures and results.json")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run . [flags]  (in bench/compare)\n\nRuns Pastry and go-libp2p-kad-dht side by side on the same libp2p hosts and writes a report.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, "", err
	}
	if fs.NArg() > 0 {
		return cfg, "", fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case cfg.Nodes < 2 || cfg.Nodes > 1000:
		return cfg, "", fmt.Errorf("--nodes %d: want 2 to 1000", cfg.Nodes)
	case cfg.Transport != "quic" && cfg.Transport != "tcp":
		return cfg, "", fmt.Errorf("--transport %q: want quic or tcp", cfg.Transport)
	case cfg.Order != OrderPastryFirst && cfg.Order != OrderKadFirst:
		return cfg, "", fmt.Errorf("--order %q: want %s or %s", cfg.Order, OrderPastryFirst, OrderKadFirst)
	case cfg.Lookups < 1 || cfg.KadLookups < 1 || cfg.Records < 0 || cfg.Publishes < 0 || cfg.Rounds < 1 || cfg.Batch < 1:
		return cfg, "", fmt.Errorf("--lookups, --kad-lookups, --rounds and --batch must be at least 1, --records and --publishes at least 0")
	case cfg.ValueSize < 1 || cfg.ValueSize > 1000:
		return cfg, "", fmt.Errorf("--value-size %d: want 1 to 1000", cfg.ValueSize)
	case cfg.Heartbeat < 0:
		return cfg, "", fmt.Errorf("--heartbeat %v: want 0 or more", cfg.Heartbeat)
	}
	return cfg, *out, nil
}
