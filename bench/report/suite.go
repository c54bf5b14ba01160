package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/pastrynet/pastry/bench/sim"
)

// File names written to Options.Out.
const (
	ReportFile  = "report.md"
	ResultsFile = "results.json"
)

// Results is results.json: every run's raw sim.Result and how the suite
// was made.
type Results struct {
	Command  string      `json:"command"`
	Seed     uint64      `json:"seed"`
	Started  string      `json:"started"`            // RFC 3339, UTC
	Finished string      `json:"finished,omitempty"` // empty while the suite runs
	WallS    float64     `json:"wall_s"`
	Go       string      `json:"go"`
	Platform string      `json:"platform"` // GOOS/GOARCH, CPUs
	Revision string      `json:"revision,omitempty"`
	Runs     []RunResult `json:"runs"`
}

// RunResult is one simulation of the suite.
type RunResult struct {
	Name       string      `json:"name"`       // e.g. hops-10k
	Experiment string      `json:"experiment"` // hops, fail or churn
	Result     *sim.Result `json:"result"`
}

// byExperiment returns the runs of one experiment, in suite order.
func (r *Results) byExperiment(exp string) []RunResult {
	var out []RunResult
	for _, x := range r.Runs {
		if x.Experiment == exp && x.Result != nil {
			out = append(out, x)
		}
	}
	return out
}

// Run executes the suite o describes and writes the report to o.Out. It
// checks that o.Out is writable before the first simulation, and rewrites
// results.json after every run so that an interrupted suite keeps the runs
// that finished.
func Run(o Options) (*Results, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if err := prepareDir(o.Out); err != nil {
		return nil, err
	}
	included, err := o.readIncluded() // before the first run: a bad file fails at once
	if err != nil {
		return nil, err
	}
	start := time.Now()
	res := &Results{
		Command:  o.CommandLine,
		Seed:     o.Seed,
		Started:  start.UTC().Format(time.RFC3339),
		Go:       runtime.Version(),
		Platform: fmt.Sprintf("%s/%s, %d CPUs", runtime.GOOS, runtime.GOARCH, runtime.NumCPU()),
		Revision: Revision(),
	}
	plan := o.plan()
	for i, spec := range plan {
		o.progress("run %d/%d %s (%s nodes, %s): started", i+1, len(plan), spec.name, commas(spec.cfg.Nodes), describe(spec))
		t0 := time.Now()
		r, err := sim.Run(spec.cfg)
		if err != nil {
			return res, fmt.Errorf("run %s: %w", spec.name, err)
		}
		o.progress("run %d/%d %s: done in %.1fs wall (%s)", i+1, len(plan), spec.name, time.Since(t0).Seconds(), headline(spec.experiment, r))
		res.Runs = append(res.Runs, RunResult{Name: spec.name, Experiment: spec.experiment, Result: r})
		if i < len(plan)-1 {
			if err := writeResults(o.Out, res); err != nil {
				return res, err
			}
		}
	}
	for _, x := range included {
		o.progress("included %s (%s nodes) from a run of its own", x.Name, commas(x.Result.Nodes))
	}
	res.Runs = append(res.Runs, included...)
	res.Finished = time.Now().UTC().Format(time.RFC3339)
	res.WallS = round3(time.Since(start).Seconds())
	if err := writeResults(o.Out, res); err != nil {
		return res, err
	}
	if o.JSONOnly {
		o.progress("wrote %s (--json-only) in %.1fs", filepath.Join(o.Out, ResultsFile), res.WallS)
		return res, nil
	}
	figs, err := writeFigures(o.Out, res)
	if err != nil {
		return res, err
	}
	if err := writeMarkdown(o.Out, res, figs); err != nil {
		return res, err
	}
	o.progress("wrote %s, %s and %d figures in %.1fs", filepath.Join(o.Out, ReportFile), ResultsFile, len(figs), res.WallS)
	return res, nil
}

func (o Options) progress(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "report: "+format+"\n", args...)
	}
}

func describe(s runSpec) string {
	switch s.experiment {
	case ExpFail:
		return fmt.Sprintf("%s lookups, %.0f%% crash", commas(s.cfg.Lookups), 100*s.cfg.Fail)
	case ExpChurn:
		return fmt.Sprintf("median session %s for %s", duration(s.cfg.ChurnMedian), duration(s.cfg.Duration))
	case ExpScribe:
		return fmt.Sprintf("%s groups, %.0f%% crash, %d root failures", commas(s.cfg.Groups), 100*s.cfg.GroupFail, s.cfg.RootFails)
	case ExpSecurity:
		return fmt.Sprintf("%s lookups plain and secure, %.0f%% attackers (mix)", commas(s.cfg.Lookups), 100*s.cfg.Malicious)
	}
	return fmt.Sprintf("%s lookups", commas(s.cfg.Lookups))
}

// headline is the one figure a progress line shows for a finished run.
func headline(exp string, r *sim.Result) string {
	switch {
	case exp == ExpFail && r.Fail != nil:
		f := r.Fail
		return fmt.Sprintf("hops %.3f / %.3f / %.3f, %.1f repair msgs per failed node",
			f.Before.MeanHops, f.NoRepair.MeanHops, f.AfterRepair.MeanHops, f.RepairPerDead)
	case exp == ExpChurn && r.Churn != nil:
		return fmt.Sprintf("%.2f lost per 100k, %.4f control msgs/node/s", r.Churn.LossPer100k, r.Churn.ControlMsgsNS)
	case exp == ExpScribe && r.Scribe != nil:
		s := r.Scribe
		return fmt.Sprintf("%d of %d delivered, RAD %.3f, link stress %.2fx IP multicast's", s.Delivered, s.Expected, s.RAD.Mean, linkOver(s))
	case exp == ExpSecurity && r.Attack != nil && r.Attack.Secure != nil:
		return fmt.Sprintf("plain %.4f, secure %.4f reach the true root; redundant routing in %.4f", r.Attack.PReached, r.Attack.Secure.PCorrect, r.Attack.Secure.RedundantShare)
	}
	return fmt.Sprintf("mean hops %.3f, distance ratio %.3f", r.MeanHops, r.DistanceRatio)
}

// prepareDir creates dir if missing and checks that files can be created
// in it, so that a bad --out fails before hours of simulation.
func prepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--out %s: cannot create the directory: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("--out %s: directory is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("--out %s: %w", dir, err)
	}
	return nil
}

// writeResults writes results.json through a temporary file, so a reader
// never sees half of it.
func writeResults(dir string, res *Results) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", ResultsFile, err)
	}
	return writeFile(dir, ResultsFile, append(b, '\n'))
}

func writeFile(dir, name string, data []byte) error {
	path := filepath.Join(dir, name)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func round3(x float64) float64 {
	return float64(int64(x*1000+0.5)) / 1000
}

func linkOver(s *sim.ScribeResult) float64 {
	if s.Links == nil {
		return 0
	}
	return s.Links.MeanOver
}
