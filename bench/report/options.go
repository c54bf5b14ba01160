package report

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pastrynet/pastry/bench/sim"
)

// SuiteSizes are the overlay sizes of the hops and RDP runs (the Pastry
// paper's range); a run uses those up to Options.MaxNodes.
var SuiteSizes = []int{1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000}

// minExperimentNodes is the smallest failure or churn overlay accepted: a
// 10% failure of fewer nodes measures almost nothing.
const minExperimentNodes = 100

// Options describe one report. Zero values of the size fields take the
// defaults noted; ParseArgs fills the rest from flags.
type Options struct {
	// Out is the directory the report is written to (created if missing).
	Out  string
	Seed uint64
	// MaxNodes bounds the suite: only SuiteSizes <= MaxNodes are run.
	MaxNodes int
	// LookupsPerNode times N lookups per hops run, at most MaxLookups
	// (the paper: 200,000 at every size).
	LookupsPerNode float64
	MaxLookups     int

	// FailNodes is the overlay size of the 10%-failure run; 0 means the
	// paper's 5,000, or MaxNodes if smaller.
	FailNodes int
	// ChurnNodes is the overlay size of the churn run; 0 means MSPastry's
	// 10,000, or MaxNodes if smaller.
	ChurnNodes    int
	ChurnMedian   time.Duration
	ChurnDuration time.Duration

	// ScribeNodes is the overlay size of the Scribe run; 0 means the
	// paper's 100,000, or MaxNodes if smaller.
	ScribeNodes int
	// SecurityNodes is the overlay size of the security section's runs;
	// 0 means SecurityNodes, or MaxNodes if smaller.
	SecurityNodes int

	// Include are results of `pastry sim --json` runs (files) added to
	// the report as hops runs after the suite's: a size too large for the
	// suite's one sitting (the million-node run) is run once on its own
	// and its point reported beside the others. Only lookup runs (no
	// --fail, --churn-median, --groups, --past or --attack) are taken.
	Include []string

	SkipFail, SkipChurn, SkipScribe bool
	SkipSecurity                    bool
	// JSONOnly writes results.json and nothing else.
	JSONOnly bool

	// CommandLine is recorded in the report as the command that made it.
	CommandLine string
	// Progress, if set, gets one line per run started and finished.
	Progress io.Writer
}

// DefaultOptions are the paper suite's settings.
func DefaultOptions() Options {
	return Options{
		Seed:           1,
		MaxNodes:       100_000,
		LookupsPerNode: 2,
		MaxLookups:     200_000,
		ChurnMedian:    MSPastryChurnMedian,
		ChurnDuration:  MSPastryChurnDuration,
	}
}

// ParseArgs parses the flags of `pastry sim report`, writing usage and flag
// errors to stderr, and validates the result.
func ParseArgs(args []string, stderr io.Writer) (Options, error) {
	o := DefaultOptions()
	fs := flag.NewFlagSet("sim report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Out, "out", "", "directory for report.md, results.json and the figures (required; created if missing)")
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "seed of every run in the suite")
	fs.IntVar(&o.MaxNodes, "max-nodes", o.MaxNodes, "run only the suite sizes (1k 2k 5k 10k 20k 50k 100k) up to this many nodes")
	fs.Float64Var(&o.LookupsPerNode, "lookups-per-node", o.LookupsPerNode, "lookups per hops run, as a multiple of N (capped by --max-lookups)")
	fs.IntVar(&o.MaxLookups, "max-lookups", o.MaxLookups, "most lookups in one hops run (the paper: 200,000)")
	fs.IntVar(&o.FailNodes, "fail-nodes", 0, fmt.Sprintf("overlay size of the %.0f%%-failure run (default %d, the paper's setup, or --max-nodes if smaller)", 100*PaperFailFraction, PaperFailNodes))
	fs.IntVar(&o.ChurnNodes, "churn-nodes", 0, fmt.Sprintf("overlay size of the churn run (default %d, or --max-nodes if smaller)", MSPastryChurnNodes))
	fs.DurationVar(&o.ChurnMedian, "churn-median", o.ChurnMedian, "median session time in the churn run")
	fs.DurationVar(&o.ChurnDuration, "churn-duration", o.ChurnDuration, "how long the churn run lasts (virtual time)")
	fs.BoolVar(&o.SkipFail, "skip-fail", false, "skip the failure experiment")
	fs.BoolVar(&o.SkipChurn, "skip-churn", false, "skip the churn experiment")
	fs.IntVar(&o.ScribeNodes, "scribe-nodes", 0, fmt.Sprintf("overlay size of the Scribe run (default %d, or --max-nodes if smaller)", ScribeNodes))
	fs.BoolVar(&o.SkipScribe, "skip-scribe", false, "skip the Scribe experiment")
	fs.IntVar(&o.SecurityNodes, "security-nodes", 0, fmt.Sprintf("overlay size of the secure-routing runs (default %d, or --max-nodes if smaller)", SecurityNodes))
	fs.BoolVar(&o.SkipSecurity, "skip-security", false, "skip the secure-routing experiment (attackers at F = 0, 0.1, 0.2, 0.3)")
	fs.BoolVar(&o.JSONOnly, "json-only", false, "write results.json only: no report.md, no figures")
	include := fs.String("include", "", "comma-separated files of `pastry sim --json` lookup runs to add as hops points after the suite's (a 1M-node run made on its own)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: pastry sim report --out DIR [flags]\n\n"+
			"Runs the Pastry paper suite (hops and RDP vs N, the hop distribution, a %.0f%% failure,\n"+
			"churn, Scribe, secure routing under attack) and writes report.md, results.json and SVG figures to DIR.\n\nflags:\n", 100*PaperFailFraction)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return Options{}, err
	}
	if fs.NArg() > 0 {
		return Options{}, fmt.Errorf("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	}
	if *include != "" {
		o.Include = strings.Split(*include, ",")
	}
	o.CommandLine = commandLine(args)
	return o, o.Validate()
}

// commandLine renders args as the shell command that made the report.
func commandLine(args []string) string {
	parts := []string{"pastry", "sim", "report"}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
			a = strconv.Quote(a)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// Validate reports the first bad option, by its flag name.
func (o Options) Validate() error {
	bad := func(flag string, v any, want string) error {
		return fmt.Errorf("--%s %v: want %s", flag, v, want)
	}
	switch {
	case o.Out == "":
		return errors.New("--out is required: the directory to write report.md, results.json and the figures to")
	case o.MaxNodes < SuiteSizes[0]:
		return bad("max-nodes", o.MaxNodes, fmt.Sprintf("at least %d, the suite's smallest size", SuiteSizes[0]))
	case !(o.LookupsPerNode > 0) || o.LookupsPerNode > 1000:
		return bad("lookups-per-node", o.LookupsPerNode, "more than 0 and at most 1000")
	case o.MaxLookups < 1 || o.MaxLookups > 100_000_000:
		return bad("max-lookups", o.MaxLookups, "1 to 100,000,000")
	}
	if !o.SkipFail {
		if err := checkSize("fail-nodes", o.FailNodes, o.MaxNodes); err != nil {
			return err
		}
	}
	if !o.SkipScribe {
		if err := checkSize("scribe-nodes", o.ScribeNodes, o.MaxNodes); err != nil {
			return err
		}
	}
	if !o.SkipSecurity {
		if err := checkSize("security-nodes", o.SecurityNodes, o.MaxNodes); err != nil {
			return err
		}
	}
	if !o.SkipChurn {
		if err := checkSize("churn-nodes", o.ChurnNodes, o.MaxNodes); err != nil {
			return err
		}
		if o.ChurnMedian <= 0 {
			return bad("churn-median", o.ChurnMedian, "a positive duration (or --skip-churn)")
		}
		if o.ChurnDuration <= 0 {
			return bad("churn-duration", o.ChurnDuration, "a positive duration (or --skip-churn)")
		}
	}
	return nil
}

// readIncluded reads the results Options.Include names, as hops runs
// named hops-SIZE.
func (o Options) readIncluded() ([]RunResult, error) {
	var out []RunResult
	for _, path := range o.Include {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--include: %w", err)
		}
		var r sim.Result
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("--include %s: not the JSON of pastry sim --json: %w", path, err)
		}
		if r.Nodes < 1 || r.Lookups < 1 || r.Fail != nil || r.Churn != nil || r.Scribe != nil || r.Past != nil || r.Attack != nil {
			return nil, fmt.Errorf("--include %s: want a lookup run (pastry sim --nodes N --lookups K --json, without other experiments)", path)
		}
		out = append(out, RunResult{Name: "hops-" + short(r.Nodes), Experiment: ExpHops, Result: &r})
	}
	return out, nil
}

func checkSize(flag string, n, maxNodes int) error {
	switch {
	case n == 0: // the default, capped at maxNodes
		return nil
	case n < minExperimentNodes:
		return fmt.Errorf("--%s %d: want at least %d nodes", flag, n, minExperimentNodes)
	case n > maxNodes:
		return fmt.Errorf("--%s %d exceeds --max-nodes %d: raise --max-nodes or lower --%s", flag, n, maxNodes, flag)
	}
	return nil
}

// sizes are the hops-run sizes this report covers.
func (o Options) sizes() []int {
	var s []int
	for _, n := range SuiteSizes {
		if n <= o.MaxNodes {
			s = append(s, n)
		}
	}
	return s
}

func (o Options) lookups(n int) int {
	return max(1, min(o.MaxLookups, int(math.Round(o.LookupsPerNode*float64(n)))))
}

func (o Options) failNodes() int {
	if o.FailNodes > 0 {
		return o.FailNodes
	}
	return min(PaperFailNodes, o.MaxNodes)
}

func (o Options) churnNodes() int {
	if o.ChurnNodes > 0 {
		return o.ChurnNodes
	}
	return min(MSPastryChurnNodes, o.MaxNodes)
}

func (o Options) securityNodes() int {
	if o.SecurityNodes > 0 {
		return o.SecurityNodes
	}
	return min(SecurityNodes, o.MaxNodes)
}

func (o Options) scribeNodes() int {
	if o.ScribeNodes > 0 {
		return o.ScribeNodes
	}
	return min(ScribeNodes, o.MaxNodes)
}

// Experiment names, as recorded in results.json.
const (
	ExpHops   = "hops"
	ExpFail   = "fail"
	ExpChurn  = "churn"
	ExpScribe = "scribe"
	// ExpSecurity is one run of the security section: the mix of attacks
	// at one attacker fraction, plain and secure lookups.
	ExpSecurity = "security"
)

// runSpec is one simulation of the suite.
type runSpec struct {
	name, experiment string
	cfg              sim.Config
}

// plan lists the suite's runs in the order they execute: hops runs by
// increasing N, then the failure run, then churn.
func (o Options) plan() []runSpec {
	var p []runSpec
	for _, n := range o.sizes() {
		p = append(p, runSpec{fmt.Sprintf("hops-%s", short(n)), ExpHops,
			sim.Config{Nodes: n, Lookups: o.lookups(n), Seed: o.Seed}})
	}
	if !o.SkipFail {
		n := o.failNodes()
		p = append(p, runSpec{fmt.Sprintf("fail-%s", short(n)), ExpFail,
			sim.Config{Nodes: n, Lookups: o.lookups(n), Seed: o.Seed, Fail: PaperFailFraction}})
	}
	if !o.SkipChurn {
		n := o.churnNodes()
		p = append(p, runSpec{fmt.Sprintf("churn-%s", short(n)), ExpChurn,
			sim.Config{Nodes: n, Seed: o.Seed, ChurnMedian: o.ChurnMedian, Duration: o.ChurnDuration}})
	}
	if !o.SkipScribe {
		n := o.scribeNodes()
		p = append(p, runSpec{fmt.Sprintf("scribe-%s", short(n)), ExpScribe,
			sim.Config{Nodes: n, Seed: o.Seed, Topology: "transit-stub", Groups: ScribeGroups, GroupFail: ScribeGroupFail, RootFails: ScribeRootFails}})
	}
	if !o.SkipSecurity {
		n := o.securityNodes()
		for _, f := range SecurityFractions {
			c := sim.DefaultConfig()
			c.Nodes, c.Lookups, c.Seed, c.LeafSetSize = n, min(SecurityLookups, o.lookups(n)), o.Seed, 32
			c.Attack, c.Malicious, c.Secure, c.SecureRedundant = "mix", f, true, true
			p = append(p, runSpec{fmt.Sprintf("security-%s-f%.2g", short(n), f), ExpSecurity, c})
		}
	}
	return p
}

// short writes n as 1k, 2.5k, 100k or 750.
func short(n int) string {
	if n >= 1000 && n%100 == 0 {
		return strconv.FormatFloat(float64(n)/1000, 'f', -1, 64) + "k"
	}
	return strconv.Itoa(n)
}
