package report

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/pastrynet/pastry/bench/sim"
)

// Section headings of report.md, in order.
const (
	SectionHops         = "## Hops vs N"
	SectionDistribution = "## Hop distribution"
	SectionRDP          = "## Relative delay penalty vs N"
	SectionFailure      = "## 10% node failure"
	SectionChurn        = "## Churn"
	SectionScribe       = "## Scribe"
	SectionSecurity     = "## Secure routing under attack"
	SectionEngine       = "## Engine cost"
	SectionReferences   = "## References"
)

// Sections lists every heading report.md has, whatever was skipped.
var Sections = []string{SectionHops, SectionDistribution, SectionRDP, SectionFailure, SectionChurn, SectionScribe, SectionSecurity, SectionEngine, SectionReferences}

// writeMarkdown writes report.md: one table per experiment with our
// figures beside the papers', linking the figures written.
func writeMarkdown(dir string, res *Results, figs []Figure) error {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	fig := func(file string) {
		for _, f := range figs {
			if f.File == file {
				w("![%s](%s)\n\n", f.Title, f.File)
			}
		}
	}
	hops := res.byExperiment(ExpHops)

	w("# Pastry simulator report\n\n")
	w("| | |\n|---|---|\n")
	w("| command | `%s` |\n", res.Command)
	w("| seed | %d |\n", res.Seed)
	w("| date | %s (finished %s) |\n", res.Started, res.Finished)
	w("| suite wall time | %.1f s |\n", res.WallS)
	w("| Go, platform | %s, %s |\n", res.Go, res.Platform)
	if res.Revision != "" {
		w("| revision | %s |\n", res.Revision)
	}
	if len(hops) > 0 {
		r := hops[0].Result
		w("| overlay | b=%d, L=%d, %s topology, sequential joins |\n", r.B, r.Leaf, r.Topology)
	}
	w("\nOur figures come from `bench/sim`, which drives the real protocol core in a\n" +
		"discrete-event simulator; the papers' columns are their published values (see\n" +
		"References), never interpolated: a dash means the paper gives no number. The raw\n" +
		"results of every run are in [results.json](results.json).\n\n")

	w("%s\n\n", SectionHops)
	if len(hops) == 0 {
		w("No hops runs.\n\n")
	} else {
		fig(HopsFigure)
		w("| N | lookups | correct | mean hops | p50 | p99 | max | log16 N | paper mean hops |\n")
		w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		covered := map[int]bool{}
		for _, x := range hops {
			r := x.Result
			covered[r.Nodes] = true
			paper := "-"
			if v, ok := paperHopsAt(r.Nodes); ok {
				paper = fmt.Sprintf("%.2f", v)
			}
			w("| %s | %s | %.4f | %.3f | %d | %d | %d | %.2f | %s |\n", commas(r.Nodes), commas(r.Lookups),
				r.CorrectFraction, r.MeanHops, r.P50Hops, r.P99Hops, r.MaxHops, math.Log(float64(r.Nodes))/math.Log(16), paper)
		}
		var missing []string
		for _, p := range paperHops {
			if !covered[p.N] {
				missing = append(missing, fmt.Sprintf("%.2f at N=%s", p.Value, commas(p.N)))
			}
		}
		if len(missing) > 0 {
			w("\nPublished points outside this run (raise `--max-nodes` to cover them): %s.\n", strings.Join(missing, ", "))
		}
		w("\n")
	}

	w("%s\n\n", SectionDistribution)
	if len(hops) == 0 {
		w("No hops runs.\n\n")
	} else {
		r := hops[len(hops)-1].Result
		fig(DistributionFigure)
		w("Fraction of delivered lookups by hop count: ours at the largest N run (%s),\n", commas(r.Nodes))
		w("the paper's at N=%s.\n\n", commas(PaperHopDistributionN))
		w("| hops | ours (N=%s) | paper (N=%s) |\n|---:|---:|---:|\n", commas(r.Nodes), commas(PaperHopDistributionN))
		ours := hopFractions(r.HopHistogram)
		for h := range max(len(ours), len(paperHopDistribution)) {
			o, p := "0.0000", "-"
			if h < len(ours) {
				o = fmt.Sprintf("%.4f", ours[h])
			}
			if h < len(paperHopDistribution) && paperHopDistribution[h] > 0 {
				p = fmt.Sprintf("%.4f", paperHopDistribution[h])
			}
			w("| %d | %s | %s |\n", h, o, p)
		}
		w("\n")
	}

	w("%s\n\n", SectionRDP)
	if len(hops) == 0 {
		w("No hops runs.\n\n")
	} else {
		fig(RDPFigure)
		w("The paper's figure is a ratio of average distances (total route distance over\n" +
			"total direct distance), which is our `distance_ratio`. Our `rdp_mean` is the\n" +
			"mean of per-route ratios, which short direct paths inflate; the paper gives no\n" +
			"such number.\n\n")
		w("| N | distance_ratio | rdp_mean | rdp_p50 | rdp_p99 | paper (ratio of averages) |\n")
		w("|---:|---:|---:|---:|---:|---:|\n")
		for _, x := range hops {
			r := x.Result
			w("| %s | %.3f | %.3f | %.3f | %.3f | %.2f to %.2f |\n", commas(r.Nodes), r.DistanceRatio, r.RDPMean, r.RDPP50, r.RDPP99,
				PaperDistanceRatioLow, PaperDistanceRatioHigh)
		}
		w("\n")
	}

	w("%s\n\n", SectionFailure)
	if fail := res.byExperiment(ExpFail); len(fail) == 0 || fail[0].Result.Fail == nil {
		w("Skipped (`--skip-fail`).\n\n")
	} else {
		failureTable(w, fail[0].Result)
		fig(FailureFigure)
	}

	w("%s\n\n", SectionChurn)
	if churn := res.byExperiment(ExpChurn); len(churn) == 0 || churn[0].Result.Churn == nil {
		w("Skipped (`--skip-churn`).\n\n")
	} else {
		churnTable(w, churn[0].Result)
		fig(ChurnFigure)
	}

	w("%s\n\n", SectionScribe)
	if sc := res.byExperiment(ExpScribe); len(sc) == 0 || sc[0].Result.Scribe == nil {
		w("Skipped (`--skip-scribe`).\n\n")
	} else {
		scribeTable(w, sc[0].Result)
	}

	w("%s\n\n", SectionSecurity)
	if sec := res.byExperiment(ExpSecurity); len(sec) == 0 {
		w("Skipped (`--skip-security`).\n\n")
	} else {
		securityTables(w, sec)
	}

	w("%s\n\n", SectionEngine)
	w("One row per simulation: the engine's cost (these are the only figures that\n" +
		"differ between two runs of the same seed).\n\n")
	w("| run | nodes | lookups | events | virtual s | wall s | events/s | peak heap MiB | live heap KB a node |\n")
	w("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range res.Runs {
		r := x.Result
		w("| %s | %s | %s | %s | %.0f | %.1f | %s | %.0f | %.1f |\n", x.Name, commas(r.Nodes), commas(issued(x)), commas(int(r.Events)),
			r.VirtualS, r.WallS, commas(int(r.EventsPerS)), float64(r.PeakHeapBytes)/(1<<20), float64(r.LiveHeapBytes)/1000/float64(max(r.Nodes, 1)))
	}
	w("\n")

	w("%s\n\n", SectionReferences)
	w("- %s, section 3: b=4, L=16, M=32, a Euclidean plane, 200,000\n"+
		"  lookups per size. Mean hops %.2f / %.2f / %.2f at 1k / 10k / 100k nodes; hop\n"+
		"  distribution at 100k (1: %.4f, 2: %.4f, 3: %.4f, 4: %.4f, 5: %.4f); route distance\n"+
		"  %.2f to %.2f times the direct distance; %s of %s nodes failed: hops %.2f / %.2f /\n"+
		"  %.2f (before / no repair / after repair), %.0f repair messages per failed node.\n",
		PaperSource, PaperHops1k, PaperHops10k, PaperHops100k,
		PaperHopFrac1, PaperHopFrac2, PaperHopFrac3, PaperHopFrac4, PaperHopFrac5,
		PaperDistanceRatioLow, PaperDistanceRatioHigh, commas(int(PaperFailFraction*PaperFailNodes)), commas(PaperFailNodes),
		PaperFailHopsBefore, PaperFailHopsNoRepair, PaperFailHopsAfter, PaperRepairMsgsPerNode)
	w("- %s: churn with %s median sessions; about %.1f lost lookups\n"+
		"  per 100,000; control traffic below %.1f messages per node per second; delay stretch\n"+
		"  below %.0f.\n",
		MSPastrySource, duration(MSPastryChurnMedian), MSPastryLostPer100k, MSPastryControlMsgsBound, MSPastryRDPBound)
	w("- %s: %s nodes, %s groups; Scribe's mean link stress %.1f (max %s),\n"+
		"  %.2f times IP multicast's.\n", ScribeSource, commas(ScribeNodes), commas(ScribeGroups), ScribeLinkStressMean,
		commas(ScribeLinkStressMax), ScribeLinkStressOverIP)
	w("- %s: b=4, l=32; failure test error %.4f at γ=%.2f (μ_p from 256 ids); with\n"+
		"  redundant routing, the correct root reached with probability above %.3f for f <= %.2f,\n"+
		"  redundant routing in %.1f%% of fault-free lookups.\n",
		SecureSource, SecureTestError, SecureTestGamma, SecureSuccess, SecureSuccessMaxF, 100*SecureRedundantShare)
	w("\nThe values are constants in `bench/report/paper.go`.\n")
	return writeFile(dir, ReportFile, b.Bytes())
}

// issued is the lookups a run issued in its main phase.
func issued(x RunResult) int {
	if x.Experiment == ExpChurn && x.Result.Churn != nil {
		return x.Result.Churn.Issued
	}
	return x.Result.Lookups
}

func failureTable(w func(string, ...any), r *sim.Result) {
	f := r.Fail
	w("%s of %s nodes crash at once after the lookups; lookups are measured right after\n", commas(f.Failed), commas(r.Nodes))
	w("the failure (no repair yet) and again %s later (after repair). The paper counts\n", duration(seconds(f.RepairS)))
	w("repair cost in remote procedure calls; we count control messages above the quiet baseline.\n\n")
	w("| | ours | paper |\n|---|---:|---:|\n")
	w("| nodes / failed | %s / %s | %s / %s |\n", commas(r.Nodes), commas(f.Failed),
		commas(PaperFailNodes), commas(int(PaperFailFraction*PaperFailNodes)))
	w("| mean hops before | %.3f | %.2f |\n", f.Before.MeanHops, PaperFailHopsBefore)
	w("| mean hops right after, no repair | %.3f | %.2f |\n", f.NoRepair.MeanHops, PaperFailHopsNoRepair)
	w("| mean hops after repair | %.3f | %.2f |\n", f.AfterRepair.MeanHops, PaperFailHopsAfter)
	w("| correct fraction: no repair / after repair | %.4f / %.4f | - |\n", f.NoRepair.CorrectFraction, f.AfterRepair.CorrectFraction)
	w("| repair messages per failed node | %.1f | %.0f |\n", f.RepairPerDead, PaperRepairMsgsPerNode)
	w("\n")
}

func churnTable(w func(string, ...any), r *sim.Result) {
	c := r.Churn
	w("%s nodes with sessions of median %s (exponential), Poisson arrivals keeping the\n", commas(r.Nodes), duration(seconds(c.MedianSessionS)))
	w("population level, departures as silent crashes, 1 lookup per node per minute, for %s.\n\n", duration(seconds(c.DurationS)))
	w("| | ours | MSPastry |\n|---|---:|---:|\n")
	w("| arrivals / departures / mean live | %s / %s / %.1f | - |\n", commas(c.Arrivals), commas(c.Departures), c.MeanLive)
	w("| lookups issued | %s | - |\n", commas(c.Issued))
	w("| correct fraction | %.5f | - |\n", c.Stats.CorrectFraction)
	w("| lost per 100,000 | %.2f | ~%.1f |\n", c.LossPer100k, MSPastryLostPer100k)
	w("| control messages per node per second | %.4f | < %.1f |\n", c.ControlMsgsNS, MSPastryControlMsgsBound)
	w("| control bytes per node per second | %.2f | - |\n", c.ControlBytesNS)
	w("| mean hops | %.3f | - |\n", c.Stats.MeanHops)
	w("| delay stretch (rdp_mean) | %.3f | < %.0f |\n", c.Stats.RDPMean, MSPastryRDPBound)
	w("\n")
}

func scribeTable(w func(string, ...any), r *sim.Result) {
	s := r.Scribe
	w("%s nodes on the transit-stub model, %s groups with the paper's sizes (%s subscriptions,\n", commas(r.Nodes), commas(s.Groups), commas(s.Subscriptions))
	w("the largest %s); one message to each group from a random node; then %.0f%% of the nodes crash,\n", commas(s.LargestGroup), 100*ScribeGroupFail)
	w("and then the roots of %d groups. Delay penalties are per group (ratio of Scribe's to unicast's\n", ScribeRootFails)
	w("average and maximum delay), from the publisher and from the root alone; link stress counts\n")
	w("the copies on each physical link of the model against IP multicast's shortest-path trees.\n\n")
	w("| | ours | paper |\n|---|---:|---:|\n")
	w("| delivered / expected, duplicates | %s / %s, %d | - |\n", commas(s.Delivered), commas(s.Expected), s.Duplicates)
	w("| RAD mean (p90) from the publisher / from the root | %.3f (%.3f) / %.3f (%.3f) | - |\n", s.RAD.Mean, s.RAD.P90, s.RADTree.Mean, s.RADTree.P90)
	w("| RMD mean (p90) from the publisher / from the root | %.3f (%.3f) / %.3f (%.3f) | - |\n", s.RMD.Mean, s.RMD.P90, s.RMDTree.Mean, s.RMDTree.P90)
	w("| node stress: topics with children, mean / max | %.2f / %d | - |\n", s.TopicsWithChildrenMean, s.TopicsWithChildrenMax)
	w("| node stress: children, mean / max | %.2f / %d | - |\n", s.ChildrenMean, s.ChildrenMax)
	if l := s.Links; l != nil {
		w("| link stress mean / max | %.1f / %s | %.1f / %s |\n", l.Mean, commas(l.Max), ScribeLinkStressMean, commas(ScribeLinkStressMax))
		w("| IP multicast link stress mean / max | %.1f / %s | - |\n", l.IPMean, commas(l.IPMax))
		w("| link stress over IP multicast's | %.2f | %.2f |\n", l.MeanOver, ScribeLinkStressOverIP)
	}
	w("| messages per delivery (with acks) | %.3f (%.3f) | - |\n", s.MsgsPerDelivery, s.MsgsPerDeliveryAcks)
	if c := s.Crash; c != nil {
		w("| after the crash: receiving again within 1 / 2 / 3 heartbeats | %.4f / %.4f / %.4f | - |\n", c.Within1HB, c.Within2HB, c.Within3HB)
	}
	if f := s.RootFail; f != nil {
		w("| root failover: publishing resumed p50 / max; lost after | %.1f s / %.1f s; %d | - |\n", f.ResumedP50, f.ResumedMax, f.LostAfter)
	}
	w("\n")
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// duration writes d as "1 h", "30 min", "90 s" or Go's form.
func duration(d time.Duration) string {
	switch {
	case d > 0 && d%time.Hour == 0:
		return fmt.Sprintf("%d h", d/time.Hour)
	case d > 0 && d%time.Minute == 0:
		return fmt.Sprintf("%d min", d/time.Minute)
	case d > 0 && d%time.Second == 0:
		return fmt.Sprintf("%d s", d/time.Second)
	}
	return d.String()
}

// securityTables writes the security section: one row per attacker
// fraction, then the failure test's error against γ.
func securityTables(w func(string, ...any), runs []RunResult) {
	first := runs[0].Result
	w("%s nodes, b=%d, leaf set %d; at each fraction F of colluding attackers (each attacker\n", commas(first.Nodes), first.B, first.Leaf)
	w("runs one of drop, misroute, fake-root, suppress, poison), %s lookups from honest nodes\n", commas(first.Lookups))
	gamma := 0.0
	if a := first.Attack; a != nil && a.Secure != nil {
		gamma = a.Secure.Gamma
	}
	w("to random keys: plain lookups, then the same ones as secure lookups (constrained tables filled\n")
	w("by probes to their points, the failure test at γ=%g and the answer's witnesses, redundant routing\n", gamma)
	w("when either fails), then again with redundant routing always. Paper: above\n")
	w("%.3f for f <= %.2f.\n\n", SecureSuccess, SecureSuccessMaxF)
	w("| F | plain: reached the true root | (1-F)^hops | secure: found the true root | redundant routing | always redundant: found | test msgs / bytes per lookup | witness msgs / bytes per lookup | redundant routing msgs / bytes per run |\n")
	w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range runs {
		a := x.Result.Attack
		if a == nil || a.Secure == nil {
			continue
		}
		s := a.Secure
		always := "-"
		if a.SecureAlways != nil {
			always = fmt.Sprintf("%.4f", a.SecureAlways.PCorrect)
		}
		w("| %.2f | %.4f | %.4f | %.4f | %.4f | %s | %.2f / %.0f | %.2f / %.0f | %.1f / %.0f |\n", a.Fraction, a.PReached, a.Expected, s.PCorrect,
			s.RedundantShare, always, s.TestMsgs, s.TestBytes, s.WitnessMsgs, s.WitnessBytes, s.RedundantMsgs, s.RedundantBytes)
	}
	w("\nThe failure test on the secure lookups' routed answers (μ_p pooled from 8 leaf sets):\n")
	w("false positives over the honest true roots' answers at F=%.2f, false negatives over other nodes'\n", runs[0].Result.Attack.Fraction)
	last := runs[len(runs)-1].Result.Attack
	w("answers at F=%.2f (suppressing fake roots included: the mix has them). Paper: %.4f at γ=%.2f.\n\n",
		last.Fraction, SecureTestError, SecureTestGamma)
	w("The witnessed columns count an answer as passing only if its witnesses all replied and none\n")
	w("named a node closer to the key than its root (what a secure lookup acts on).\n\n")
	w("| γ | false positive | false negative | witnessed: false positive | witnessed: false negative |\n|---:|---:|---:|---:|---:|\n")
	if fp, fn := runs[0].Result.Attack.Secure, last.Secure; fp != nil && fn != nil {
		for i, g := range fp.FailureTest {
			neg, wpos, wneg := 0.0, 0.0, 0.0
			if i < len(fn.FailureTest) {
				neg = fn.FailureTest[i].FalseNegative
			}
			if i < len(fp.WitnessedTest) {
				wpos = fp.WitnessedTest[i].FalsePositive
			}
			if i < len(fn.WitnessedTest) {
				wneg = fn.WitnessedTest[i].FalseNegative
			}
			w("| %g | %.4f | %.4f | %.4f | %.4f |\n", g.Gamma, g.FalsePositive, neg, wpos, wneg)
		}
	}
	w("\n")
}
