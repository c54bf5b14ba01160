package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/pastrynet/pastry/bench/report"
	"github.com/pastrynet/pastry/bench/sim"
)

func runSim(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "report" {
		return runSimReport(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := sim.DefaultConfig()
	fs.IntVar(&c.Nodes, "nodes", 1000, "overlay size, built by sequential joins")
	fs.IntVar(&c.Lookups, "lookups", 10000, "lookups of random keys from random live nodes")
	fs.IntVar(&c.B, "b", c.B, "digit width in bits (1, 2, 4 or 8)")
	fs.IntVar(&c.LeafSetSize, "leaf", c.LeafSetSize, "leaf set size L")
	fs.StringVar(&c.Topology, "topology", c.Topology, "network model: plane, sphere or transit-stub")
	fs.Uint64Var(&c.Seed, "seed", 1, "seed for everything random in the run")
	fs.Float64Var(&c.Loss, "loss", 0, "probability that any one message is lost")
	fs.Float64Var(&c.Fail, "fail", 0, "crash this fraction of nodes at once after the lookups, then measure repair")
	fs.DurationVar(&c.RepairTime, "repair-time", c.RepairTime, "with --fail: time allowed for repair")
	fs.DurationVar(&c.ChurnMedian, "churn-median", 0, "run churn with this median session time")
	fs.DurationVar(&c.Duration, "duration", 0, "with --churn-median: how long to run churn")
	fs.Float64Var(&c.SessionShape, "session-shape", 0, "Weibull shape of session times (0: exponential)")
	fs.Float64Var(&c.LookupRate, "lookup-rate", c.LookupRate, "with --churn-median: lookups per node per minute")
	fs.DurationVar(&c.JoinGap, "join-gap", c.JoinGap, "virtual time between successive joins")
	fs.Float64Var(&c.ProbeLossTarget, "probe-loss", c.ProbeLossTarget, "target raw loss rate the nodes tune their table probing to (0: probe every StateProbeInterval)")
	fs.IntVar(&c.OracleBlock, "oracle-block", 0, "analysis aid, not Pastry: a node whose next table slot's block has at most this many live nodes forwards lookups straight to the root")
	fs.IntVar(&c.Groups, "groups", 0, "run Scribe's experiments with this many groups (sizes N x rank^-1.25): delay penalty, node and link stress, repair, root failover")
	fs.Float64Var(&c.GroupFail, "group-fail", 0, "with --groups: crash this fraction of nodes and measure when subscribers receive again")
	fs.IntVar(&c.RootFails, "root-fails", 0, "with --groups: crash the roots of this many groups and measure when publishing resumes")
	fs.Float64Var(&c.Malicious, "malicious", 0, "with --attack: this fraction of the nodes are colluding attackers (chosen with the seed); lookups start at honest nodes")
	fs.StringVar(&c.Attack, "attack", "", "what the attackers do to lookups routed through them: drop, misroute, fake-root or suppress; reports plain routing's success against (1-F)^hops and the routing failure test's error rates")
	gammas := fs.String("gammas", "", "with --attack: comma-separated failure-test thresholds to report (default 1,1.2,1.4,1.58,1.72,2,2.2,2.5)")
	asJSON := fs.Bool("json", false, "print one JSON object instead of a summary")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	memProfile := fs.String("memprofile", "", "write a heap profile (allocations over the whole run) to this file at the end")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: pastry sim [flags]\n       pastry sim report --out DIR\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *gammas != "" {
		for _, f := range strings.Split(*gammas, ",") {
			g, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil {
				fs.Usage()
				return fmt.Errorf("%w: --gammas %q: %v", errUsage, *gammas, err)
			}
			c.Gammas = append(c.Gammas, g)
		}
	}
	batchGC(c.Nodes)
	var events *uint64
	c.Events = func(p *uint64) { events = p }
	c.Progress = progressLine(stderr, !*asJSON, func() uint64 {
		if events == nil {
			return 0
		}
		return *events
	})
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	res, err := sim.Run(c)
	if err != nil {
		return err
	}
	if *memProfile != "" {
		if err := writeHeapProfile(*memProfile); err != nil {
			return err
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		return enc.Encode(res)
	}
	printSummary(stdout, res)
	return nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// batchGC trades memory for less GC work in a batch run, within a soft cap
// that GOMEMLIMIT overrides. The 100,000-node run's live heap is about
// 1.3 GiB; with the cap at 3 GiB it took 580 s, at 3.5 GiB 495 s (peak
// heap 3.0 GB), on the same 2-core machine. Larger runs get a cap of
// 36 KB a node, at most three quarters of the machine's memory: a fixed
// cap below a million nodes' live heap would make the collector run
// without pause.
func batchGC(nodes int) {
	debug.SetGCPercent(200)
	if os.Getenv("GOMEMLIMIT") == "" {
		limit := max(int64(3584<<20), int64(nodes)*36<<10)
		if total := memTotal(); total > 0 {
			limit = min(limit, max(int64(3584<<20), total/4*3))
		}
		debug.SetMemoryLimit(limit)
	}
}

// memTotal is the machine's memory in bytes from /proc/meminfo, or 0.
func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// progressLine reports each phase's progress on w: on a terminal (when
// bar) one line redrawn in place; otherwise a line every 30 s of wall time
// and at each phase's end, so that a run of hours shows it is alive. Each
// report has the events per second since the last, an estimate of the
// phase's time left and the heap in use.
func progressLine(w io.Writer, bar bool, events func() uint64) func(phase string, done, total int) {
	tty := false
	if f, ok := w.(*os.File); ok && bar {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	start := time.Now()
	lastPhase := ""
	var lastAt time.Time
	var lastEv uint64
	var rate float64
	return func(phase string, done, total int) {
		now := time.Now()
		if phase != lastPhase {
			lastPhase, start, lastAt, lastEv = phase, now, now, events()
		}
		if !tty && done < total && now.Sub(lastAt) < 30*time.Second {
			return
		}
		if dt := now.Sub(lastAt).Seconds(); dt > 0.5 {
			ev := events()
			rate, lastAt, lastEv = float64(ev-lastEv)/dt, now, ev
		}
		frac := float64(done) / float64(max(total, 1))
		el := now.Sub(start)
		eta := "?"
		if frac > 0 {
			eta = (time.Duration(float64(el)/frac) - el).Round(time.Second).String()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		line := fmt.Sprintf("%s: %d/%d (%.1f%%) %.0fs, %.0f events/s, ETA %s, heap %d MiB",
			phase, done, total, 100*frac, el.Seconds(), rate, eta, ms.HeapAlloc>>20)
		if tty {
			fmt.Fprintf(w, "\r%-100s", line)
			if done >= total {
				fmt.Fprintln(w)
			}
			return
		}
		fmt.Fprintln(w, line)
	}
}

func printSummary(w io.Writer, r *sim.Result) {
	fmt.Fprintf(w, "overlay     %d nodes, b=%d, L=%d, %s topology, seed %d\n", r.Nodes, r.B, r.Leaf, r.Topology, r.Seed)
	fmt.Fprintf(w, "join        %.1f messages per node; table fill per row %v\n", r.JoinMsgsPerNode, r.TableFill)
	fmt.Fprintf(w, "control     %.4f messages and %.1f bytes per node per second (steady state)\n", r.ControlMsgsPerNodeS, r.ControlBytesPerNodeS)
	if r.Lookups > 0 {
		printLookups(w, "lookups", r.Lookups, r.LookupStats)
	}
	if f := r.Fail; f != nil {
		fmt.Fprintf(w, "failure     %d nodes crashed at once\n", f.Failed)
		printLookups(w, "  no repair", f.NoRepair.Delivered, f.NoRepair)
		printLookups(w, "  repaired", f.AfterRepair.Delivered, f.AfterRepair)
		fmt.Fprintf(w, "  repair    %d messages in %.0fs above baseline: %.1f per failed node\n", f.RepairMsgs, f.RepairS, f.RepairPerDead)
	}
	if c := r.Churn; c != nil {
		fmt.Fprintf(w, "churn       median session %.0fs for %.0fs: %d arrivals, %d departures, mean %.0f live\n",
			c.MedianSessionS, c.DurationS, c.Arrivals, c.Departures, c.MeanLive)
		printLookups(w, "  lookups", c.Issued, c.Stats)
		fmt.Fprintf(w, "  lost      %d (%.2f per 100,000)\n", c.Lost, c.LossPer100k)
		fmt.Fprintf(w, "  control   %.4f messages and %.1f bytes per node per second\n", c.ControlMsgsNS, c.ControlBytesNS)
	}
	if sc := r.Scribe; sc != nil {
		printScribe(w, sc)
	}
	if a := r.Attack; a != nil {
		printAttack(w, a)
	}
	fmt.Fprintf(w, "engine      %.1fs wall, %.0fs virtual, %d events (%.0f/s), peak heap %.0f MiB\n",
		r.WallS, r.VirtualS, r.Events, r.EventsPerS, float64(r.PeakHeapBytes)/(1<<20))
}

func printScribe(w io.Writer, s *sim.ScribeResult) {
	fmt.Fprintf(w, "scribe      %d groups, %d subscriptions (largest %d), %.2f messages per subscription\n", s.Groups, s.Subscriptions, s.LargestGroup, s.SubscribeMsgs)
	fmt.Fprintf(w, "  stable    %d of %d delivered, %d duplicates, %d missing; %.3f messages per delivery (%.3f with acks, %.0f bytes)\n",
		s.Delivered, s.Expected, s.Duplicates, s.Missing, s.MsgsPerDelivery, s.MsgsPerDeliveryAcks, s.BytesPerDelivery)
	fmt.Fprintf(w, "  delay     from the publisher: RAD mean %.3f p50 %.3f p90 %.3f max %.3f; RMD mean %.3f p50 %.3f p90 %.3f max %.3f\n",
		s.RAD.Mean, s.RAD.P50, s.RAD.P90, s.RAD.Max, s.RMD.Mean, s.RMD.P50, s.RMD.P90, s.RMD.Max)
	fmt.Fprintf(w, "            from the root:      RAD mean %.3f p50 %.3f p90 %.3f max %.3f; RMD mean %.3f p50 %.3f p90 %.3f max %.3f\n",
		s.RADTree.Mean, s.RADTree.P50, s.RADTree.P90, s.RADTree.Max, s.RMDTree.Mean, s.RMDTree.P50, s.RMDTree.P90, s.RMDTree.Max)
	fmt.Fprintf(w, "  node      topics with children mean %.3f max %d; children mean %.3f max %d\n",
		s.TopicsWithChildrenMean, s.TopicsWithChildrenMax, s.ChildrenMean, s.ChildrenMax)
	if l := s.Links; l != nil {
		fmt.Fprintf(w, "  links     %d used, stress mean %.3f max %d; IP multicast %d used, mean %.3f max %d; mean %.2fx IP multicast's\n",
			l.Links, l.Mean, l.Max, l.IPLinks, l.IPMean, l.IPMax, l.MeanOver)
	}
	if c := s.Crash; c != nil {
		fmt.Fprintf(w, "  crash     %d nodes; %d surviving subscribers of %d groups (%d below a failed node): receiving again within 1/2/3 heartbeats (%.0fs) %.4f/%.4f/%.4f, never %d, worst %.1fs; lost %.4f; %d repairs, %d repair messages\n",
			c.Failed, c.Survivors, c.SampleGroups, c.OrphanedAtOne, c.HeartbeatS, c.Within1HB, c.Within2HB, c.Within3HB, c.Never, c.WorstS, c.LostFraction, c.Repairs, c.RepairMsgs)
	}
	if f := s.RootFail; f != nil {
		fmt.Fprintf(w, "  root fail %d roots crashed: publishing resumed in %d groups, p50 %.2fs max %.2fs (heartbeat %.0fs); %d lost after resuming; %d takeovers\n",
			f.Groups, f.Resumed, f.ResumedP50, f.ResumedMax, f.HeartbeatS, f.LostAfter, f.Takeovers)
	}
}

func printAttack(w io.Writer, a *sim.AttackResult) {
	fmt.Fprintf(w, "attack      %s by %d colluders (F=%.3f); %d lookups from honest nodes\n", a.Attack, a.Malicious, a.Fraction, a.Lookups)
	fmt.Fprintf(w, "  routing   reached the true root %.4f, its answer accepted %.4f; (1-F)^hops %.4f (path hops %.3f), mean (1-F)^h %.4f, routes free of attackers %.4f\n",
		a.PReached, a.PAccepted, a.Expected, a.PathHops, a.ExpectedPerPath, a.CleanPaths)
	fmt.Fprintf(w, "  answers   %d from the true root, %d from a true root that is an attacker, %d from another node, %d unanswered\n",
		a.TrueRootAnswers, a.MaliciousRootAnswers, a.OtherAnswers, a.Unanswered)
	for _, g := range a.FailureTest {
		fmt.Fprintf(w, "  γ=%-5.3g   false positive %.4f, false negative %.4f; with the true density: %.4f, %.4f\n",
			g.Gamma, g.FalsePositive, g.FalseNegative, g.OracleFalsePositive, g.OracleFalseNegative)
	}
}

func printLookups(w io.Writer, label string, issued int, s sim.LookupStats) {
	fmt.Fprintf(w, "%-11s %d issued, %.4f delivered, %.4f correct; hops mean %.3f p50 %d p99 %d max %d %v; RDP mean %.3f p50 %.3f p99 %.3f; route/direct distance %.3f\n",
		label, issued, s.DeliveredFraction, s.CorrectFraction, s.MeanHops, s.P50Hops, s.P99Hops, s.MaxHops, s.HopHistogram, s.RDPMean, s.RDPP50, s.RDPP99, s.DistanceRatio)
}

func runSimReport(args []string, stdout, stderr io.Writer) error {
	opts, err := report.ParseArgs(args, stderr)
	if err != nil {
		return fmt.Errorf("report: %w", err) // -h stays flag.ErrHelp through the wrap
	}
	batchGC(opts.MaxNodes)
	opts.Progress = stderr
	res, err := report.Run(opts)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	what := report.ReportFile + ", " + report.ResultsFile + " and figures"
	if opts.JSONOnly {
		what = report.ResultsFile
	}
	fmt.Fprintf(stdout, "wrote %s to %s (%d runs, %.1fs)\n", what, opts.Out, len(res.Runs), res.WallS)
	return nil
}
