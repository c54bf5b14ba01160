package cluster

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/pastrynet/pastry/bench/report"
)

// Report is a run's result, written as JSON (raw, samples included) and
// Markdown.
type Report struct {
	Mode    string    `json:"mode"` // local or targets
	Run     string    `json:"run,omitempty"`
	Command string    `json:"command"`
	Commit  string    `json:"commit"`
	Machine Machine   `json:"machine"`
	Started time.Time `json:"started"`
	Seed    uint64    `json:"seed"`

	Nodes          int     `json:"nodes"`
	Subnet         string  `json:"subnet,omitempty"`
	DelayMode      string  `json:"delay_mode"` // none, inject, netem
	NetemAvailable bool    `json:"netem_available"`
	InjectDelayMS  float64 `json:"inject_delay_ms,omitempty"`
	Matrix         string  `json:"matrix,omitempty"`
	MatrixMeanMS   float64 `json:"matrix_mean_ms,omitempty"`
	MatrixMaxMS    float64 `json:"matrix_max_ms,omitempty"`
	Shaping        string  `json:"shaping,omitempty"`

	JoinedS float64 `json:"joined_s"` // every node joined, from the first start
	ReadyS  float64 `json:"ready_s"`  // every leaf set exact
	Ready   bool    `json:"ready"`

	Lookups       LookupSummary  `json:"lookups"`
	Records       *RecordSummary `json:"records,omitempty"`
	Faults        []*Fault       `json:"faults,omitempty"`
	Footprints    []Footprint    `json:"footprints"`
	Teardown      string         `json:"teardown,omitempty"`
	Errors        []string       `json:"errors,omitempty"`
	LookupSamples []LookupSample `json:"lookup_samples"`
}

// Machine is where the controller ran.
type Machine struct {
	Host     string `json:"host"`
	Kernel   string `json:"kernel"`
	CPUs     int    `json:"cpus"`
	MemGiB   int    `json:"mem_gib"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// LookupSummary sums up lookup samples. Latencies are the nodes' own
// (latency_ms of /v1/route), in milliseconds.
type LookupSummary struct {
	Count     int      `json:"count"`
	Correct   int      `json:"correct"`
	Wrong     int      `json:"wrong"`
	Failed    int      `json:"failed"`
	P50MS     float64  `json:"p50_ms"`
	P90MS     float64  `json:"p90_ms"`
	P99MS     float64  `json:"p99_ms"`
	MeanMS    float64  `json:"mean_ms"`
	WallP50MS float64  `json:"wall_p50_ms"`
	WallP99MS float64  `json:"wall_p99_ms"`
	MeanHops  float64  `json:"mean_hops"`
	ByHops    []HopRow `json:"by_hops"`
	DurationS float64  `json:"duration_s,omitempty"`
}

// HopRow is the lookups of one hop count and one count of the answer's
// hops back. With a uniform one-way delay D, StraightMS is (hops+1) x D,
// the hops to the root and the answer's way straight back, and
// ExpectedMS (hops + answer hops) x D, the legs the lookup crossed: a
// root not connected to the origin routes its answer rather than dial
// (none for 0 hops: the origin is the root). AnswerHops is 0 for nodes
// that do not report it; ExpectedMS is then StraightMS.
type HopRow struct {
	Hops       int     `json:"hops"`
	AnswerHops int     `json:"answer_hops"`
	Count      int     `json:"count"`
	MeanMS     float64 `json:"mean_ms"`
	P50MS      float64 `json:"p50_ms"`
	StraightMS float64 `json:"straight_ms,omitempty"`
	ExpectedMS float64 `json:"expected_ms,omitempty"`
	Ratio      float64 `json:"ratio,omitempty"` // MeanMS / ExpectedMS
}

// RecordSummary is the records workload: puts, then reads through another node.
type RecordSummary struct {
	Puts     int      `json:"puts"`
	PutOK    int      `json:"put_ok"`
	Gets     int      `json:"gets"`
	GetOK    int      `json:"get_ok"`
	PutP50MS float64  `json:"put_p50_ms"`
	PutP99MS float64  `json:"put_p99_ms"`
	GetP50MS float64  `json:"get_p50_ms"`
	GetP99MS float64  `json:"get_p99_ms"`
	Errors   []string `json:"errors,omitempty"`
}

// Fault is a kill or a partition and the recovery after it.
type Fault struct {
	Kind       string  `json:"kind"`
	Percent    float64 `json:"percent"`
	Nodes      []int   `json:"nodes"`            // killed, or cut off
	HeldS      float64 `json:"held_s,omitempty"` // a partition's duration
	RecoveredS float64 `json:"recovered_s"`      // from the fault (kill) or the heal; -1: not within the timeout
	Rounds     []Round `json:"rounds"`
}

// Footprint is the nodes' resources at one moment.
type Footprint struct {
	When          string          `json:"when"`
	RSSMeanMiB    float64         `json:"rss_mean_mib"`
	RSSMaxMiB     float64         `json:"rss_max_mib"`
	RSSTotalMiB   float64         `json:"rss_total_mib"`
	GoroutineMean float64         `json:"goroutines_mean"`
	MessagesSent  float64         `json:"messages_sent"`
	BytesSent     float64         `json:"bytes_sent"`
	Nodes         []NodeFootprint `json:"nodes"`
}

// NodeFootprint is one node's.
type NodeFootprint struct {
	Index        int     `json:"index"`
	RSSMiB       float64 `json:"rss_mib"`
	Goroutines   float64 `json:"goroutines"`
	MessagesSent float64 `json:"messages_sent"`
	BytesSent    float64 `json:"bytes_sent"`
	Peers        float64 `json:"peers"`
}

func (f *Footprint) summarize() {
	for _, n := range f.Nodes {
		f.RSSTotalMiB += n.RSSMiB
		f.RSSMaxMiB = max(f.RSSMaxMiB, n.RSSMiB)
		f.GoroutineMean += n.Goroutines
		f.MessagesSent += n.MessagesSent
		f.BytesSent += n.BytesSent
	}
	if k := float64(len(f.Nodes)); k > 0 {
		f.RSSMeanMiB = f.RSSTotalMiB / k
		f.GoroutineMean /= k
	}
}

func newReport(cfg Config, mode string) *Report {
	r := &Report{Mode: mode, Command: cfg.Command, Commit: commit(), Machine: machine(), Started: time.Now().UTC(),
		Seed: cfg.Seed, Nodes: cfg.N, InjectDelayMS: ms(cfg.InjectDelay)}
	if cfg.Matrix != nil {
		r.Matrix = cfg.MatrixName
		mean, mx := cfg.Matrix.Stats()
		r.MatrixMeanMS, r.MatrixMaxMS, r.InjectDelayMS = ms(mean), ms(mx), 0
	}
	if cfg.Shaping.Rate != "" {
		sh := cfg.Shaping.Shaper
		if sh == "" {
			sh = "tbf"
		}
		r.Shaping = sh + " " + cfg.Shaping.Rate + " each way"
	}
	return r
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	m.Host, _ = os.Hostname()
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		var b strings.Builder
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			b.WriteByte(byte(c))
		}
		m.Kernel = b.String()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			m.MemGiB = int(math.Round(float64(kb) / (1 << 20)))
		}
	}
	return m
}

// quantile is the q-quantile of xs (nearest rank); 0 for none.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// summarize sums up samples; delay, if not zero, is the uniform one-way
// delay the hop rows are compared with.
func summarize(samples []LookupSample, delay time.Duration) LookupSummary {
	var s LookupSummary
	s.Count = len(samples)
	var lat, wall []float64
	type hopKey struct{ hops, answer int }
	byHops := map[hopKey][]float64{}
	var hops int
	for _, x := range samples {
		switch {
		case x.Err != "":
			s.Failed++
			continue
		case x.Correct:
			s.Correct++
		default:
			s.Wrong++
		}
		lat = append(lat, x.LatencyMS)
		wall = append(wall, x.WallMS)
		k := hopKey{x.Hops, x.AnswerHops}
		byHops[k] = append(byHops[k], x.LatencyMS)
		hops += x.Hops
	}
	if len(lat) > 0 {
		s.P50MS, s.P90MS, s.P99MS = quantile(lat, 0.5), quantile(lat, 0.9), quantile(lat, 0.99)
		s.WallP50MS, s.WallP99MS = quantile(wall, 0.5), quantile(wall, 0.99)
		s.MeanMS = mean(lat)
		s.MeanHops = float64(hops) / float64(len(lat))
	}
	keys := slices.Collect(maps.Keys(byHops))
	slices.SortFunc(keys, func(a, b hopKey) int { return cmp.Or(cmp.Compare(a.hops, b.hops), cmp.Compare(a.answer, b.answer)) })
	for _, k := range keys {
		r := HopRow{Hops: k.hops, AnswerHops: k.answer, Count: len(byHops[k]), MeanMS: mean(byHops[k]), P50MS: quantile(byHops[k], 0.5)}
		if delay > 0 && k.hops > 0 { // with no hop the origin is the root: nothing crosses a link
			r.StraightMS = float64(k.hops+1) * ms(delay)
			r.ExpectedMS = float64(k.hops+max(k.answer, 1)) * ms(delay)
			r.Ratio = r.MeanMS / r.ExpectedMS
		}
		s.ByHops = append(s.ByHops, r)
	}
	return s
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var t float64
	for _, x := range xs {
		t += x
	}
	return t / float64(len(xs))
}

// WriteJSON writes the raw report.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(r)
}

// WriteMarkdown writes the report for people; figures are the SVG files
// written beside it, linked by name.
func (r *Report) WriteMarkdown(w io.Writer, figures []string) error {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("# Bench harness: %d nodes, %s mode\n\n", r.Nodes, r.Mode)
	p("- command: `%s`\n", r.Command)
	p("- commit: %s\n", r.Commit)
	p("- machine: %s, Linux %s, %d CPUs, %d GiB, %s %s\n", r.Machine.Host, r.Machine.Kernel, r.Machine.CPUs, r.Machine.MemGiB, r.Machine.Go, r.Machine.Platform)
	p("- started: %s, seed %d\n", r.Started.Format(time.RFC3339), r.Seed)
	if r.Mode == "local" {
		p("- network: run %s, %d namespaces on %s; delays: %s (netem available: %v)", r.Run, r.Nodes, r.Subnet, r.DelayMode, r.NetemAvailable)
		if r.InjectDelayMS > 0 {
			p(", %.1f ms one-way between every pair", r.InjectDelayMS)
		}
		if r.Matrix != "" {
			p(", matrix %s (mean %.1f ms, max %.1f ms one-way)", r.Matrix, r.MatrixMeanMS, r.MatrixMaxMS)
		}
		if r.Shaping != "" {
			p("; shaping %s", r.Shaping)
		}
		p("\n")
	}
	p("\n## Ready\n\n")
	p("All %d nodes joined in %.1f s; every leaf set exact (ready: %v) at %.1f s.\n\n", r.Nodes, r.JoinedS, r.Ready, r.ReadyS)
	l := r.Lookups
	p("## Lookups\n\n")
	p("| lookups | correct root | wrong root | failed | p50 ms | p90 ms | p99 ms | mean ms | mean hops | wall p50 ms |\n|---|---|---|---|---|---|---|---|---|---|\n")
	p("| %d | %d | %d | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n\n", l.Count, l.Correct, l.Wrong, l.Failed, l.P50MS, l.P90MS, l.P99MS, l.MeanMS, l.MeanHops, l.WallP50MS)
	p("By hops to the root and the answer's hops back (latency as the origin node measured it; the answer comes straight back, 1 hop, when the root is connected to the origin, and is routed otherwise):\n\n")
	p("| hops | answer hops | lookups | mean ms | p50 ms | (hops+1) x delay ms | (hops + answer hops) x delay ms | mean / expected |\n|---|---|---|---|---|---|---|---|\n")
	for _, h := range l.ByHops {
		straight, exp, ratio := "-", "-", "-"
		if h.ExpectedMS > 0 {
			straight, exp, ratio = fmt.Sprintf("%.0f", h.StraightMS), fmt.Sprintf("%.0f", h.ExpectedMS), fmt.Sprintf("%.3f", h.Ratio)
		}
		p("| %d | %d | %d | %.2f | %.2f | %s | %s | %s |\n", h.Hops, h.AnswerHops, h.Count, h.MeanMS, h.P50MS, straight, exp, ratio)
	}
	p("\n")
	if rec := r.Records; rec != nil {
		p("## Records (PAST)\n\n| puts ok | reads ok (another node) | put p50 / p99 ms | get p50 / p99 ms |\n|---|---|---|---|\n")
		p("| %d/%d | %d/%d | %.1f / %.1f | %.1f / %.1f |\n\n", rec.PutOK, rec.Puts, rec.GetOK, rec.Gets, rec.PutP50MS, rec.PutP99MS, rec.GetP50MS, rec.GetP99MS)
		for _, e := range rec.Errors {
			p("- error: %s\n", e)
		}
	}
	for _, f := range r.Faults {
		p("## Fault: %s of %.0f%% (%d nodes)\n\n", f.Kind, f.Percent, len(f.Nodes))
		if f.HeldS > 0 {
			p("Held %.0f s, then healed. ", f.HeldS)
		}
		if f.RecoveredS >= 0 {
			p("Lookups all at the right root again **%.1f s** after the %s (the first of two all-correct rounds of lookups).\n\n", f.RecoveredS, map[bool]string{true: "heal", false: "kill"}[f.HeldS > 0])
		} else {
			p("Lookups were **not** all correct again within the timeout.\n\n")
		}
		p("| at s | lookups | correct | wrong | failed | p50 ms | |\n|---|---|---|---|---|---|---|\n")
		for _, x := range f.Rounds {
			note := ""
			if x.Partitioned {
				note = "partitioned (judged within its side)"
			}
			p("| %.1f | %d | %d | %d | %d | %.1f | %s |\n", x.AtS, x.Lookups, x.Correct, x.Wrong, x.Failed, x.P50MS, note)
		}
		p("\n")
	}
	p("## Footprint\n\n| when | nodes | RSS mean MiB | RSS max MiB | RSS total MiB | goroutines mean | messages sent | bytes sent |\n|---|---|---|---|---|---|---|---|\n")
	for _, f := range r.Footprints {
		p("| %s | %d | %.1f | %.1f | %.0f | %.0f | %.0f | %.0f |\n", f.When, len(f.Nodes), f.RSSMeanMiB, f.RSSMaxMiB, f.RSSTotalMiB, f.GoroutineMean, f.MessagesSent, f.BytesSent)
	}
	p("\n")
	for _, fig := range figures {
		p("![%s](%s)\n\n", fig, fig)
	}
	if r.Teardown != "" {
		p("Teardown: %s.\n\n", r.Teardown)
	}
	for _, e := range r.Errors {
		p("- error: %s\n", e)
	}
	return nil
}

// commit is the binary's or the working tree's commit (report.Revision),
// else "unknown".
func commit() string {
	if r := report.Revision(); r != "" {
		return r
	}
	return "unknown"
}
