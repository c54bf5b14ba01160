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
	fs.DurationVar(&c.JoinGap, "join-gap", 0, "virtual time between successive joins (default 2s x 1000 / nodes, within 1ms to 200ms: 20ms at 100,000 nodes)")
	fs.Float64Var(&c.ProbeLossTarget, "probe-loss", c.ProbeLossTarget, "target raw loss rate the nodes tune their table probing to (0: probe every StateProbeInterval)")
	fs.IntVar(&c.OracleBlock, "oracle-block", 0, "analysis aid, not Pastry: a node whose next table slot's block has at most this many live nodes forwards lookups straight to the root")
	fs.IntVar(&c.Groups, "groups", 0, "run Scribe's experiments with this many groups (sizes N x rank^-1.25): delay penalty, node and link stress, repair, root failover")
	fs.Float64Var(&c.GroupFail, "group-fail", 0, "with --groups: crash this fraction of nodes and measure when subscribers receive again")
	fs.IntVar(&c.RootFails, "root-fails", 0, "with --groups: crash the roots of this many groups and measure when publishing resumes")
	fs.Float64Var(&c.Malicious, "malicious", 0, "with --attack: this fraction of the nodes are colluding attackers (chosen with the seed); lookups start at honest nodes")
	fs.StringVar(&c.Attack, "attack", "", "what the attackers do to lookups routed through them: drop, misroute, fake-root, suppress, poison (fill the routing state they hand out with colluders, and drop) or mix (each attacker one of the five); reports plain routing's success against (1-F)^hops and the routing failure test's error rates")
	fs.BoolVar(&c.Secure, "secure", false, "with --attack: constrained routing tables, and every lookup run again as a secure lookup (failure test, redundant routing when it fails); reports how often it finds the true root, the redundant-routing share and their costs")
	fs.Float64Var(&c.Gamma, "gamma", 0, "with --secure: the failure test's threshold for the secure lookups (default 2)")
	fs.BoolVar(&c.SecureRedundant, "secure-redundant", false, "with --secure: run the lookups a third time as secure lookups that always use redundant routing, whatever the test says")
	fs.StringVar(&c.Past, "past", "", "run a PAST experiment with the same replication code: storage (insert failures by utilisation), caching (hit rate and hops by Zipf parameter) byzantine (reads while lying replicas forge, serve stale data or withhold) or crash (objects lost and repaired after --fail, default 0.1, crash at once)")
	fs.IntVar(&c.PastByzantine, "past-byzantine", 0, "with --past byzantine: lying replicas of each object's K (default 2)")
	fs.BoolVar(&c.PastDivert, "past-divert", false, "with --past storage: replica and file diversion (default: neither, the paper's comparison run)")
	fs.IntVar(&c.PastObjects, "past-objects", 0, "with --past: at most this many inserts (storage; default 100,000), or the objects read (caching; default 1,000)")
	fs.IntVar(&c.PastSizeMedian, "past-size-median", 0, "with --past: median object size in bytes, lognormal (default 1312, the paper's trace)")
	fs.Float64Var(&c.PastSizeSigma, "past-size-sigma", 0, "with --past: sigma of the lognormal sizes (default 2.04: a mean of 10.5 KB with the default median)")
	fs.Int64Var(&c.PastCapacity, "past-capacity", 0, "with --past storage: the nodes' mean capacity in bytes, truncated normal with sd 0.4 mean (default 2 MiB)")
	fs.Int64Var(&c.PastCache, "past-cache", 0, "with --past caching: each node's route cache in bytes (default 256 KiB)")
	pastZipf := fs.String("past-zipf", "", "with --past caching: comma-separated Zipf parameters of the reads' popularity (default 0.5,0.75,1,1.25)")
	fs.IntVar(&c.PastReads, "past-reads", 0, "with --past caching: reads for each Zipf parameter (default 2,000)")
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
	if *pastZipf != "" {
		for _, f := range strings.Split(*pastZipf, ",") {
			a, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil || !(a >= 0 && a <= 5) {
				fs.Usage()
				return fmt.Errorf("%w: --past-zipf %q: want numbers from 0 to 5", errUsage, *pastZipf)
			}
			c.PastZipf = append(c.PastZipf, a)
		}
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

// batchGC sets the collector for a batch run, within a soft cap that
// GOMEMLIMIT overrides; GOGC, if set, overrides the percentage. The
// percentage is 50: the heap grows to about 1.5 times the live heap
// between collections. It was 200 while a simulated node allocated about
// 1.1 KB an event (2026-12-07: 6.0 GB over the 10,000-node run); since the
// routing snapshots, probe records and send buffers are reused (0085) it
// allocates about 0.3 KB, so a collection comes four times less often for
// the same percentage, and 50 collects about as often as 200 did with a
// third of the peak heap's headroom. The cap: at least 3.5 GiB, 36 KB a
// node for larger runs, at most three quarters of the machine's memory (a
// fixed cap below a million nodes' live heap would make the collector run
// without pause).
func batchGC(nodes int) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
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
	if p := r.Past; p != nil {
		printPast(w, p)
	}
	fmt.Fprintf(w, "engine      %.1fs wall, %.0fs virtual, %d events (%.0f/s), peak heap %.0f MiB, live heap %.0f MiB (%.1f KB a node), join gap %gms\n",
		r.WallS, r.VirtualS, r.Events, r.EventsPerS, float64(r.PeakHeapBytes)/(1<<20), float64(r.LiveHeapBytes)/(1<<20),
		float64(r.LiveHeapBytes)/1000/float64(max(r.Nodes, 1)), r.JoinGapS*1000)
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

func printSecure(w io.Writer, a *sim.AttackResult) {
	fmt.Fprintf(w, "  tables    colluder share in honest nodes' proximity tables %.4f, constrained tables %.4f, leaf sets %.4f\n",
		a.Tables.Proximity, a.Tables.Constrained, a.Tables.Leaves)
	for _, s := range []*sim.SecureResult{a.Secure, a.SecureAlways} {
		if s != nil {
			printSecurePhase(w, s)
		}
	}
}

func printSecurePhase(w io.Writer, s *sim.SecureResult) {
	mode := "test first"
	if s.Redundant {
		mode = "always redundant"
	}
	fmt.Fprintf(w, "  secure    (%s)\n", mode)
	fmt.Fprintf(w, "  secure    %d lookups at gamma %.2f: true root found %.4f (%d; honest roots %d of %d), wrong %d, unanswered %d\n",
		s.Lookups, s.Gamma, s.PCorrect, s.Correct, s.CorrectHonest, s.HonestRoots, s.Wrong, s.Unanswered)
	fmt.Fprintf(w, "            redundant routing in %.4f (%d runs, %d rounds), %d passed the test first; correct after the test %d, after redundant routing %d\n",
		s.RedundantShare, s.RedundantRuns, s.Rounds, s.PassedFirst, s.CorrectAfterTest, s.CorrectAfterRedundant)
	fmt.Fprintf(w, "            cost: request+answer %.2f msgs %.0f bytes per lookup; redundant routing %.1f msgs %.0f bytes per run (hop acks not counted)\n",
		s.TestMsgs, s.TestBytes, s.RedundantMsgs, s.RedundantBytes)
	fmt.Fprintf(w, "            density refreshes %.2f msgs %.0f bytes per lookup; failure test on the routed answers (mu_p pooled from 8 leaf sets; %d true-root, %d other answers):\n",
		s.DensityMsgs, s.DensityBytes, s.TrueRootAnswers, s.OtherAnswers)
	for i, g := range s.FailureTest {
		fmt.Fprintf(w, "  γ=%-6g  false positive %.4f, false negative %.4f", g.Gamma, g.FalsePositive, g.FalseNegative)
		if i < len(s.WitnessedTest) {
			wg := s.WitnessedTest[i]
			fmt.Fprintf(w, "; with the witnesses %.4f, %.4f", wg.FalsePositive, wg.FalseNegative)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "            witnesses asked for %d answers: %d contradicted, %d with a reply missing; %.2f msgs %.0f bytes per lookup\n",
		s.Witnessed, s.Contradicted, s.WitnessesMissing, s.WitnessMsgs, s.WitnessBytes)
}

func printAttack(w io.Writer, a *sim.AttackResult) {
	defer printSecure(w, a)
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

func printPast(w io.Writer, p *sim.PastResult) {
	if p.Experiment == "storage" {
		fmt.Fprintf(w, "past        storage, K=%d, diversion %v: capacity %d bytes (mean %d a node); %d inserts, %d failed, %d after file diversion, %d replicas diverted; utilisation %.4f at the end, first failure at %.4f\n",
			p.K, p.Divert, p.Capacity, p.MeanCapacity, p.Inserts, p.Failed, p.FileDiverted, p.Diverted, p.Utilisation, p.FirstFailAt)
		for _, b := range p.Buckets {
			if b.Inserts > 0 {
				fmt.Fprintf(w, "  utilisation %.2f-%.2f  %6d inserts  %5d failed  ratio %.4f\n", b.From, b.To, b.Inserts, b.Failed, b.FailureRatio)
			}
		}
		return
	}
	if p.Experiment == "crash" {
		fmt.Fprintf(w, "past        crash, K=%d: %d objects, %d nodes crashed at once; after %.0fs: %d lost, %d not on exactly their %d closest live nodes; %d copies pushed, %d range summaries sent\n",
			p.K, p.Objects, p.Crashed, p.RepairS, p.Lost, p.NotRepaired, p.K, p.Pushed, p.Summaries)
		return
	}
	if p.Experiment == "byzantine" {
		fmt.Fprintf(w, "past        byzantine, K=%d: %d objects\n", p.K, p.Objects)
		for _, b := range p.Byzantine {
			fmt.Fprintf(w, "  %-8s  %d of %d replicas lie on %d objects: %d reads, %d the newest, %d stale, %d forged, %d failed\n", b.Mode, b.Liars, p.K, b.Objects, b.Reads, b.Newest, b.Stale, b.Forged, b.Failed)
		}
		return
	}
	fmt.Fprintf(w, "past        caching, K=%d: %d objects, %d-byte route caches\n", p.K, p.Objects, p.CacheBytes)
	for _, c := range p.Caching {
		fmt.Fprintf(w, "  zipf %.2f  %d reads (%d failed)  hit rate %.4f  hops %.3f (%.3f for reads the root answered)\n", c.Alpha, c.Reads, c.Failed, c.HitRate, c.MeanHops, c.MissHops)
	}
}
