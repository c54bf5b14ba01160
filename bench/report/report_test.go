package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseArgsDefaults(t *testing.T) {
	o, err := ParseArgs([]string{"--out", "some dir"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultOptions()
	want.Out, want.CommandLine = "some dir", `pastry sim report --out "some dir"`
	if fmt.Sprint(o) != fmt.Sprint(want) {
		t.Fatalf("got %+v\nwant %+v", o, want)
	}
	var names []string
	for _, r := range o.plan() {
		names = append(names, fmt.Sprintf("%s:%d:%d", r.name, r.cfg.Nodes, r.cfg.Lookups))
	}
	wantPlan := []string{"hops-1k:1000:2000", "hops-2k:2000:4000", "hops-5k:5000:10000", "hops-10k:10000:20000",
		"hops-20k:20000:40000", "hops-50k:50000:100000", "hops-100k:100000:200000", "fail-5k:5000:10000", "churn-10k:10000:0",
		"scribe-100k:100000:0", "security-2k-f0:2000:2000", "security-2k-f0.1:2000:2000", "security-2k-f0.2:2000:2000",
		"security-2k-f0.3:2000:2000"}
	if !slices.Equal(names, wantPlan) {
		t.Fatalf("plan %v, want %v", names, wantPlan)
	}
	p := o.plan()
	if f := p[7].cfg; f.Fail != PaperFailFraction {
		t.Errorf("fail run: fraction %v", f.Fail)
	}
	if c := p[8].cfg; c.ChurnMedian != 30*time.Minute || c.Duration != time.Hour {
		t.Errorf("churn run: median %v duration %v", c.ChurnMedian, c.Duration)
	}
	if c := p[9].cfg; c.Groups != ScribeGroups || c.Topology != "transit-stub" || c.GroupFail != ScribeGroupFail || c.RootFails != ScribeRootFails {
		t.Errorf("scribe run: %+v", c)
	}
}

func TestParseArgsQuickSuite(t *testing.T) {
	o, err := ParseArgs([]string{"--out", "d", "--max-nodes", "5000", "--skip-churn", "--lookups-per-node", "1", "--seed", "7"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range o.plan() {
		names = append(names, fmt.Sprintf("%s:%d:%d:%d", r.name, r.cfg.Nodes, r.cfg.Lookups, r.cfg.Seed))
	}
	want := []string{"hops-1k:1000:1000:7", "hops-2k:2000:2000:7", "hops-5k:5000:5000:7", "fail-5k:5000:5000:7", "scribe-5k:5000:0:7",
		"security-2k-f0:2000:2000:7", "security-2k-f0.1:2000:2000:7", "security-2k-f0.2:2000:2000:7", "security-2k-f0.3:2000:2000:7"}
	if !slices.Equal(names, want) {
		t.Fatalf("plan %v, want %v", names, want)
	}
	// The failure and churn sizes default to the papers', capped at --max-nodes.
	o, err = ParseArgs([]string{"--out", "d", "--max-nodes", "2000"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.failNodes() != 2000 || o.churnNodes() != 2000 {
		t.Fatalf("fail %d churn %d nodes, want both 2000", o.failNodes(), o.churnNodes())
	}
}

func TestParseArgsErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "--out is required"},
		{[]string{"--max-nodes", "5000"}, "--out is required"},
		{[]string{"--out", "d", "--max-nodes", "500"}, "--max-nodes 500: want at least 1000"},
		{[]string{"--out", "d", "--lookups-per-node", "0"}, "--lookups-per-node 0: want more than 0"},
		{[]string{"--out", "d", "--max-lookups", "0"}, "--max-lookups 0"},
		{[]string{"--out", "d", "--max-nodes", "5000", "--fail-nodes", "20000"}, "--fail-nodes 20000 exceeds --max-nodes 5000"},
		{[]string{"--out", "d", "--fail-nodes", "50"}, "--fail-nodes 50: want at least 100"},
		{[]string{"--out", "d", "--max-nodes", "5000", "--churn-nodes", "10000"}, "--churn-nodes 10000 exceeds --max-nodes 5000"},
		{[]string{"--out", "d", "--churn-median", "0s"}, "--churn-median 0s: want a positive duration"},
		{[]string{"--out", "d", "--churn-duration", "-1m"}, "--churn-duration -1m0s: want a positive duration"},
		{[]string{"--out", "d", "--nodes", "5"}, "flag provided but not defined: -nodes"},
		{[]string{"--out", "d", "--seed", "x"}, `invalid value "x" for flag -seed`},
		{[]string{"--out", "d", "extra"}, `unexpected argument "extra"`},
	} {
		var stderr bytes.Buffer
		_, err := ParseArgs(c.args, &stderr)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.args, err, c.want)
		}
	}
	// A skipped experiment's flags are not checked.
	if _, err := ParseArgs([]string{"--out", "d", "--max-nodes", "1000", "--fail-nodes", "5000", "--skip-fail",
		"--churn-median", "0s", "--skip-churn"}, io.Discard); err != nil {
		t.Errorf("skipped experiments: %v", err)
	}
	var stderr bytes.Buffer
	if _, err := ParseArgs([]string{"-h"}, &stderr); !errors.Is(err, flag.ErrHelp) || !strings.Contains(stderr.String(), "--out DIR") {
		t.Errorf("-h: error %v, usage %q", err, stderr.String())
	}
}

func TestOutNotWritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.Out = filepath.Join(file, "report")
	o.MaxNodes = 1000
	start := time.Now()
	_, err := Run(o)
	if err == nil || !strings.Contains(err.Error(), "--out "+o.Out+": cannot create the directory") {
		t.Fatalf("error %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a bad --out took %v to report: it must fail before the runs", d)
	}
}

// smallSuite runs the whole suite at 1,000 nodes (a few seconds).
func smallSuite(t *testing.T, dir string, mutate func(*Options)) (*Results, string) {
	t.Helper()
	o := DefaultOptions()
	o.Out, o.MaxNodes, o.LookupsPerNode = dir, 1000, 0.5
	o.ChurnNodes, o.ChurnMedian, o.ChurnDuration = 200, 5*time.Minute, 10*time.Minute
	o.SecurityNodes = 300
	o.CommandLine = "pastry sim report --out " + dir + " --max-nodes 1000"
	if mutate != nil {
		mutate(&o)
	}
	var progress bytes.Buffer
	o.Progress = &progress
	res, err := Run(o)
	if err != nil {
		t.Fatal(err)
	}
	return res, progress.String()
}

func TestSmallSuite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "out") // created by Run
	res, progress := smallSuite(t, dir, nil)

	for _, want := range []string{"run 1/8 hops-1k", "run 2/8 fail-1k", "run 3/8 churn-200", "run 4/8 scribe-1k", "run 8/8 security-300-f0.3", "started", "done in"} {
		if !strings.Contains(progress, want) {
			t.Errorf("progress lacks %q:\n%s", want, progress)
		}
	}
	var files []string
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		files = append(files, e.Name())
	}
	want := []string{ChurnFigure, FailureFigure, DistributionFigure, HopsFigure, RDPFigure, ReportFile, ResultsFile}
	if !slices.Equal(files, want) {
		t.Fatalf("files %v, want %v", files, want)
	}

	// results.json holds every raw result, as returned.
	disk := readResults(t, filepath.Join(dir, ResultsFile))
	if got, want := mustJSON(t, disk), mustJSON(t, res); got != want {
		t.Fatalf("results.json differs from the results returned")
	}
	if len(disk.Runs) != 8 || disk.Seed != 1 || disk.Command == "" || disk.Finished == "" {
		t.Fatalf("results.json: %d runs, seed %d, command %q, finished %q", len(disk.Runs), disk.Seed, disk.Command, disk.Finished)
	}
	checkMarkdown(t, dir, disk)

	checkSVG(t, filepath.Join(dir, HopsFigure), "Routing hops vs N: ours and Pastry (2001)")
	checkSVG(t, filepath.Join(dir, DistributionFigure), "Hop distribution: ours at N=1,000, Pastry (2001) at N=100,000")
	checkSVG(t, filepath.Join(dir, RDPFigure), "Relative delay penalty vs N: ours and Pastry (2001)")
	checkSVG(t, filepath.Join(dir, FailureFigure), "10% node failure: ours and Pastry (2001)")
	checkSVG(t, filepath.Join(dir, ChurnFigure), "Churn: ours and MSPastry (2004)")
}

// checkMarkdown checks that report.md has every section and shows the
// numbers of res.
func checkMarkdown(t *testing.T, dir string, res *Results) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	last := -1
	for _, s := range Sections {
		i := strings.Index(md, "\n"+s+"\n")
		if i < 0 {
			t.Errorf("report.md lacks section %q", s)
		} else if i < last {
			t.Errorf("section %q out of order", s)
		}
		last = i
	}
	for _, want := range []string{"`" + res.Command + "`", fmt.Sprintf("| seed | %d |", res.Seed), res.Started, "distance_ratio"} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	for _, x := range res.Runs {
		r := x.Result
		// Engine cost, one row per run.
		hasRow(t, md, "| "+x.Name+" | "+commas(r.Nodes)+" |", fmt.Sprintf("| %.1f |", r.WallS), commas(int(r.Events)))
		switch x.Experiment {
		case ExpHops:
			hasRow(t, md, fmt.Sprintf("| %s | %s |", commas(r.Nodes), commas(r.Lookups)),
				fmt.Sprintf("| %.4f | %.3f | %d | %d | %d |", r.CorrectFraction, r.MeanHops, r.P50Hops, r.P99Hops, r.MaxHops))
			hasRow(t, md, fmt.Sprintf("| %s | %.3f | %.3f |", commas(r.Nodes), r.DistanceRatio, r.RDPMean),
				fmt.Sprintf("%.2f to %.2f", PaperDistanceRatioLow, PaperDistanceRatioHigh))
			if v, ok := paperHopsAt(r.Nodes); ok {
				hasRow(t, md, fmt.Sprintf("| %s | %s |", commas(r.Nodes), commas(r.Lookups)), fmt.Sprintf("| %.2f |", v))
			}
		case ExpFail:
			f := r.Fail
			hasRow(t, md, "| mean hops before |", fmt.Sprintf("| %.3f | %.2f |", f.Before.MeanHops, PaperFailHopsBefore))
			hasRow(t, md, "| mean hops right after, no repair |", fmt.Sprintf("| %.3f | %.2f |", f.NoRepair.MeanHops, PaperFailHopsNoRepair))
			hasRow(t, md, "| mean hops after repair |", fmt.Sprintf("| %.3f | %.2f |", f.AfterRepair.MeanHops, PaperFailHopsAfter))
			hasRow(t, md, "| repair messages per failed node |", fmt.Sprintf("| %.1f | %.0f |", f.RepairPerDead, PaperRepairMsgsPerNode))
		case ExpChurn:
			c := r.Churn
			hasRow(t, md, "| correct fraction |", fmt.Sprintf("| %.5f |", c.Stats.CorrectFraction))
			hasRow(t, md, "| lost per 100,000 |", fmt.Sprintf("| %.2f | ~%.1f |", c.LossPer100k, MSPastryLostPer100k))
			hasRow(t, md, "| control messages per node per second |", fmt.Sprintf("| %.4f | < %.1f |", c.ControlMsgsNS, MSPastryControlMsgsBound))
		case ExpSecurity:
			a := r.Attack
			if a == nil || a.Secure == nil {
				t.Fatalf("%s: no secure result", x.Name)
			}
			hasRow(t, md, fmt.Sprintf("| %.2f | %.4f | %.4f |", a.Fraction, a.PReached, a.Expected),
				fmt.Sprintf("| %.4f | %.4f |", a.Secure.PCorrect, a.Secure.RedundantShare))
		}
	}
	// The distribution table: the largest hops run, normalised.
	if hops := res.byExperiment(ExpHops); len(hops) > 0 {
		fr := hopFractions(hops[len(hops)-1].Result.HopHistogram)
		sum := 0.0
		for h, f := range fr {
			sum += f
			if h >= 1 && h <= 5 {
				hasRow(t, md, fmt.Sprintf("| %d | %.4f |", h, f), fmt.Sprintf("| %.4f |", paperHopDistribution[h]))
			}
		}
		if sum < 0.999 || sum > 1.001 {
			t.Errorf("hop fractions sum to %v", sum)
		}
	}
}

// hasRow checks that a line of md starts with prefix and contains each of
// parts.
func hasRow(t *testing.T, md, prefix string, parts ...string) {
	t.Helper()
	for line := range strings.SplitSeq(md, "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			return
		}
	}
	t.Errorf("report.md has no row %q containing %q", prefix, parts)
}

// checkSVG parses path as XML and checks its <title>.
func checkSVG(t *testing.T, path, title string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := xml.NewDecoder(f)
	var root, got string
	texts := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: not well-formed XML: %v", path, err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			switch se.Name.Local {
			case "title":
				var s string
				if err := d.DecodeElement(&s, &se); err != nil {
					t.Fatal(err)
				}
				got = s
			case "text":
				texts++
			}
		}
	}
	if root != "svg" || got != title || texts < 5 {
		t.Errorf("%s: root <%s>, title %q (want %q), %d text elements", filepath.Base(path), root, got, title, texts)
	}
}

func readResults(t *testing.T, path string) *Results {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &r
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestJSONOnly(t *testing.T) {
	dir := t.TempDir()
	res, _ := smallSuite(t, dir, func(o *Options) {
		o.JSONOnly, o.SkipFail, o.SkipChurn, o.SkipScribe, o.SkipSecurity, o.LookupsPerNode = true, true, true, true, true, 0.2
	})
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != ResultsFile {
		t.Fatalf("--json-only wrote %v, want only %s", ents, ResultsFile)
	}
	disk := readResults(t, filepath.Join(dir, ResultsFile))
	if len(disk.Runs) != 1 || disk.Runs[0].Experiment != ExpHops || disk.Runs[0].Result.Lookups != 200 || len(res.Runs) != 1 {
		t.Fatalf("results.json: %s", mustJSON(t, disk))
	}
}

// TestFullSuiteReport renders the report of a 100k suite (fixture figures,
// no simulation): every paper point is covered and every figure drawn.
func TestFullSuiteReport(t *testing.T) {
	dir := t.TempDir()
	res := fullSuite()
	figs, err := writeFigures(dir, res)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeMarkdown(dir, res, figs); err != nil {
		t.Fatal(err)
	}
	checkMarkdown(t, dir, res)
	for _, f := range figs {
		checkSVG(t, filepath.Join(dir, f.File), f.Title)
	}
	checkSVG(t, filepath.Join(dir, DistributionFigure), "Hop distribution: ours at N=100,000, Pastry (2001) at N=100,000")
	md, _ := os.ReadFile(filepath.Join(dir, ReportFile))
	for _, f := range figs {
		if !strings.Contains(string(md), "("+f.File+")") {
			t.Errorf("report.md does not link %s", f.File)
		}
	}
	if strings.Contains(string(md), "outside this run") {
		t.Errorf("a 100k suite covers every published point")
	}
}

// TestSkippedExperiments: sections stay, saying what was skipped, and no
// figure is drawn for them.
func TestSkippedExperiments(t *testing.T) {
	dir := t.TempDir()
	res := fullSuite()
	res.Runs = res.Runs[:2] // hops-1k, hops-2k
	figs, err := writeFigures(dir, res)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeMarkdown(dir, res, figs); err != nil {
		t.Fatal(err)
	}
	checkMarkdown(t, dir, res)
	md, _ := os.ReadFile(filepath.Join(dir, ReportFile))
	for _, want := range []string{"Skipped (`--skip-fail`)", "Skipped (`--skip-churn`)", "3.20 at N=10,000, 3.98 at N=100,000"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	for _, f := range []string{FailureFigure, ChurnFigure} {
		if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s drawn for a skipped experiment", f)
		}
	}
}

func TestCommandLineQuoting(t *testing.T) {
	got := commandLine([]string{"--out", "/tmp/my report", "--seed", "3", "--churn-median", "30m"})
	want := `pastry sim report --out "/tmp/my report" --seed 3 --churn-median 30m`
	if got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

// TestInclude adds a lookup run made on its own (the million-node point)
// to the report as a hops run after the suite's, and refuses files that
// are not a lookup run's JSON before simulating anything.
func TestInclude(t *testing.T) {
	dir := t.TempDir()
	big := fullSuite().Runs[len(SuiteSizes)-1].Result // a 100k hops result
	big.Nodes, big.LookupStats.MeanHops = 1_000_000, 4.81
	good := filepath.Join(dir, "1m.json")
	if err := os.WriteFile(good, []byte(mustJSON(t, big)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	res, progress := smallSuite(t, out, func(o *Options) {
		o.JSONOnly, o.SkipFail, o.SkipChurn, o.SkipScribe, o.SkipSecurity, o.LookupsPerNode = true, true, true, true, true, 0.2
		o.Include = []string{good}
	})
	hops := res.byExperiment(ExpHops)
	if len(hops) != 2 || hops[1].Result.Nodes != 1_000_000 || hops[1].Result.MeanHops != 4.81 || hops[1].Name != "hops-1000k" {
		t.Fatalf("hops runs %s", mustJSON(t, hops))
	}
	if !strings.Contains(progress, "included hops-1000k") {
		t.Errorf("progress lacks the included run:\n%s", progress)
	}
	disk := readResults(t, filepath.Join(out, ResultsFile))
	if len(disk.Runs) != 2 || disk.Runs[1].Result.Nodes != 1_000_000 {
		t.Fatalf("results.json: %s", mustJSON(t, disk))
	}

	failRun := fullSuite().Runs[len(SuiteSizes)].Result
	bad := map[string]string{"garbage": "not json", "fail": mustJSON(t, failRun)}
	for name, body := range bad {
		path := filepath.Join(dir, name+".json")
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		o := DefaultOptions()
		o.Out, o.Include = filepath.Join(dir, "out-"+name), []string{path}
		if _, err := Run(o); err == nil || !strings.Contains(err.Error(), "--include") {
			t.Errorf("%s: err %v, want an --include error", name, err)
		}
	}
	o := DefaultOptions()
	o.Out, o.Include = filepath.Join(dir, "out-missing"), []string{filepath.Join(dir, "missing.json")}
	if _, err := Run(o); err == nil {
		t.Error("a missing --include file was accepted")
	}
	po, err := ParseArgs([]string{"--out", dir, "--include", "a.json,b.json"}, io.Discard)
	if err != nil || !slices.Equal(po.Include, []string{"a.json", "b.json"}) {
		t.Errorf("--include a.json,b.json: %v, %q", err, po.Include)
	}
}
