package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/pastrynet/pastry/bench/cluster"
)

// runBench is `pastry bench SUBCOMMAND`.
func runBench(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "cluster" {
		fmt.Fprintf(stderr, "usage: pastry bench cluster [flags]\n\nThe bench harness over real node processes: see docs/harness.md.\n")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return flag.ErrHelp
		}
		return errUsage
	}
	return runBenchCluster(args[1:], stdout, stderr)
}

// benchFlags are `pastry bench cluster`'s flags.
type benchFlags struct {
	cfg                   cluster.Config
	subnet, targets       string
	matrix, model, out    string
	token                 string
	modelSeed             uint64
	cleanup, leftovers    bool
	timeout               time.Duration
	records               int
	shaper, rate, delayMd string
}

func parseBenchFlags(args []string, getenv func(string) string, stderr io.Writer) (*benchFlags, error) {
	var f benchFlags
	c := &f.cfg
	fs := flag.NewFlagSet("bench cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.N, "n", 16, "nodes to start (local mode), each in its own network namespace")
	fs.StringVar(&f.subnet, "subnet", "", "IPv4 /16 for the nodes (default: the first free 10.X.0.0/16 from 10.77)")
	fs.StringVar(&c.Binary, "binary", "", "the pastry binary the nodes run (default: this one)")
	fs.IntVar(&c.Nice, "nice", 10, "niceness of the node processes (-1: none)")
	fs.IntVar(&c.Batch, "batch", 8, "nodes started at once while joining (each joins through node 0)")
	fs.Uint64Var(&c.Seed, "seed", 0, "seed of the workload's keys and choices (default: the clock)")
	fs.BoolVar(&c.Keep, "keep", false, "keep the work directory (nodes' data dirs and logs) after the run")
	fs.StringVar(&c.LogLvl, "log-level", "warn", "the nodes' --log-level")
	fs.IntVar(&c.Lookups, "lookups", 1000, "lookups (via /v1/route) of the main workload")
	fs.IntVar(&f.records, "records", 100, "records put and read back through another node (0: none)")
	fs.IntVar(&c.Concurrency, "concurrency", 8, "API requests in flight")
	fs.IntVar(&c.RoundLookups, "round-lookups", 64, "lookups per round while measuring a recovery")
	fs.DurationVar(&c.RoundEvery, "round-every", time.Second, "rounds of lookups while measuring a recovery start at least this far apart")
	fs.DurationVar(&c.ReadyTimeout, "ready-timeout", 3*time.Minute, "longest wait for every leaf set to be exact")
	fs.Float64Var(&c.KillPercent, "kill", 0, "after the workload, kill -9 this percentage of the nodes and measure the recovery (local mode)")
	fs.Float64Var(&c.PartitionPct, "partition", 0, "then cut this percentage of the nodes off the rest for --partition-for, heal, and measure the recovery (local mode)")
	fs.DurationVar(&c.PartitionFor, "partition-for", 30*time.Second, "how long the partition holds")
	fs.DurationVar(&c.RecoveryTimeout, "recovery-timeout", 3*time.Minute, "longest wait for lookups to be correct again after a fault")
	fs.DurationVar(&c.InjectDelay, "delay", 0, "one-way delay between every pair of nodes (netem where the kernel has it, else injected in the nodes: --delay-mode)")
	fs.StringVar(&f.matrix, "latency-matrix", "", "JSON file: an N x N array of one-way delays in ms (injected in the nodes)")
	fs.StringVar(&f.model, "latency-model", "", "delays from a simulator network model: plane, sphere or transit-stub (with --latency-seed)")
	fs.Uint64Var(&f.modelSeed, "latency-seed", 1, "seed of --latency-model's placement")
	fs.StringVar(&f.delayMd, "delay-mode", "auto", "auto (netem for a uniform --delay where the kernel has it, else inject), inject (pastry node --inject-delay/--inject-latency) or netem")
	fs.StringVar(&f.rate, "rate", "", "bandwidth of every node's link, each way, as tc reads it (e.g. 100mbit); default none")
	fs.StringVar(&f.shaper, "shaper", "tbf", "the qdisc that enforces --rate: tbf or htb")
	fs.StringVar(&f.targets, "targets", "", "targets mode: JSON file of running nodes' API addresses and tokens, instead of starting nodes (docs/harness.md)")
	fs.StringVar(&f.token, "token", "", "targets mode: the token of targets that name none (default PASTRY_TOKEN)")
	fs.StringVar(&f.out, "out", "", "write report.md, report.json and SVG figures to this directory")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Minute, "the whole run's limit")
	fs.BoolVar(&f.cleanup, "cleanup", false, "remove what runs whose controller is gone left behind (namespaces, links, processes, files), then exit")
	fs.BoolVar(&f.leftovers, "leftovers", false, "list what runs left behind, then exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `usage: pastry bench cluster [flags]

Local mode (as root): starts -n pastry node processes, each in its own
network namespace on a bridge, joins them, waits until every leaf set is
exact, runs lookups (and records) through their HTTP APIs, optionally kills
or partitions nodes and measures the recovery, and removes everything it
made on exit, error or signal. --targets FILE drives nodes running
elsewhere instead. See docs/harness.md.

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usageError(fs, "unexpected argument %q", fs.Arg(0))
	}
	c.Records = f.records
	if f.records == 0 {
		c.Records = -1
	}
	if f.subnet != "" {
		pf, err := netip.ParsePrefix(f.subnet)
		if err != nil {
			return nil, fmt.Errorf("--subnet: %v", err)
		}
		c.Subnet = pf
	}
	if f.shaper != "tbf" && f.shaper != "htb" {
		return nil, fmt.Errorf("--shaper %q: want tbf or htb", f.shaper)
	}
	c.Shaping = cluster.Shaping{Rate: f.rate, Shaper: f.shaper}
	if strings.ContainsAny(f.rate, " \t\n") {
		return nil, fmt.Errorf("--rate %q: want a tc rate such as 100mbit", f.rate)
	}
	switch f.delayMd {
	case "auto", "inject", "netem":
		c.DelayMode = f.delayMd
	default:
		return nil, fmt.Errorf("--delay-mode %q: want auto, inject or netem", f.delayMd)
	}
	if c.InjectDelay < 0 || c.InjectDelay > 10*time.Second {
		return nil, fmt.Errorf("--delay %v: want 0 to 10s", c.InjectDelay)
	}
	if f.matrix != "" && f.model != "" {
		return nil, fmt.Errorf("--latency-matrix and --latency-model: give one")
	}
	if f.matrix != "" {
		data, err := readBounded(f.matrix, 64<<20)
		if err != nil {
			return nil, fmt.Errorf("--latency-matrix: %w", err)
		}
		if c.Matrix, err = cluster.ParseMatrix(data, c.N); err != nil {
			return nil, fmt.Errorf("--latency-matrix %s: %w", f.matrix, err)
		}
		c.MatrixName = f.matrix
	}
	if f.model != "" {
		m, err := cluster.ModelMatrix(f.model, f.modelSeed, c.N)
		if err != nil {
			return nil, fmt.Errorf("--latency-model: %w", err)
		}
		c.Matrix, c.MatrixName = m, fmt.Sprintf("model %s, seed %d", f.model, f.modelSeed)
	}
	if f.targets != "" {
		data, err := readBounded(f.targets, 16<<20)
		if err != nil {
			return nil, fmt.Errorf("--targets: %w", err)
		}
		tok := f.token
		if tok == "" {
			tok = getenv("PASTRY_TOKEN")
		}
		if c.Targets, err = cluster.ParseTargets(data, tok); err != nil {
			return nil, fmt.Errorf("--targets %s: %w", f.targets, err)
		}
		c.N = len(c.Targets)
	}
	return &f, nil
}

func runBenchCluster(args []string, stdout, stderr io.Writer) error {
	f, err := parseBenchFlags(args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if f.cleanup || f.leftovers {
		return benchLeftovers(ctx, f.cleanup, stdout)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	f.cfg.Command = "pastry bench cluster " + strings.Join(args, " ")
	f.cfg.Log = stderr
	var rep *cluster.Report
	if len(f.cfg.Targets) > 0 {
		rep, err = cluster.Targets(ctx, f.cfg)
	} else {
		rep, err = cluster.Local(ctx, f.cfg)
	}
	if rep != nil {
		if f.out != "" {
			if werr := rep.WriteReport(f.out); werr != nil {
				fmt.Fprintf(stderr, "pastry bench cluster: writing the report: %v\n", werr)
			} else {
				fmt.Fprintf(stderr, "bench cluster: report in %s\n", f.out)
			}
		} else {
			rep.WriteMarkdown(stdout, nil)
		}
	}
	return err
}

// benchLeftovers lists, or removes, what runs left behind.
func benchLeftovers(ctx context.Context, remove bool, stdout io.Writer) error {
	var lo cluster.Leftovers
	var err error
	if remove {
		lo, err = cluster.Cleanup(ctx)
	} else {
		lo, err = cluster.FindLeftovers(ctx)
	}
	runs := make([]string, 0, len(lo))
	for r := range lo {
		runs = append(runs, r)
	}
	sort.Strings(runs)
	verb := "left"
	if remove {
		verb = "removed"
	}
	for _, r := range runs {
		l := lo[r]
		state := ""
		if l.Alive {
			state = " (its controller is running: left alone)"
		}
		fmt.Fprintf(stdout, "run %s: %s %d namespaces, %d links, dir %q%s\n", r, verb, len(l.Namespaces), len(l.Links), l.Dir, state)
	}
	if len(runs) == 0 {
		fmt.Fprintf(stdout, "nothing left by the bench harness\n")
	}
	return err
}
