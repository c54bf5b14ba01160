package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pastrynet/pastry/id"
)

// LookupSample is one lookup through /v1/route.
type LookupSample struct {
	From int    `json:"from"`
	Key  string `json:"key"`
	Root string `json:"root,omitempty"`
	Want string `json:"want"`
	Hops int    `json:"hops"`
	// AnswerHops is the answer's hops back (see Route.AnswerHops).
	AnswerHops int     `json:"answer_hops"`
	LatencyMS  float64 `json:"latency_ms"` // as the node measured it
	WallMS     float64 `json:"wall_ms"`    // as the controller did, HTTP included
	Err        string  `json:"err,omitempty"`
	Correct    bool    `json:"correct"`
}

// lookups runs count lookups of random keys from random live members,
// conc at once.
func (h *harness) lookups(ctx context.Context, count int) []LookupSample {
	ms := h.alive()
	if len(ms) == 0 {
		return nil
	}
	type job struct {
		m   *member
		key id.ID
	}
	jobs := make([]job, count)
	h.mu.Lock()
	for i := range jobs {
		var k id.ID
		for j := range k {
			k[j] = byte(h.rng.Uint32())
		}
		jobs[i] = job{ms[h.rng.IntN(len(ms))], k}
	}
	truth := h.truth
	h.mu.Unlock()
	out := make([]LookupSample, count)
	for i, j := range jobs { // what a canceled run leaves unrun counts as failed
		out[i] = LookupSample{From: j.m.idx, Key: j.key.String(), Err: "not run: the run was canceled"}
	}
	_ = parallel(ctx, count, h.cfg.Concurrency, func(i int) error {
		j := jobs[i]
		want := truth(j.m.idx).Root(j.key)
		s := LookupSample{From: j.m.idx, Key: j.key.String(), Want: want.String()}
		t0 := time.Now()
		rctx, cancel := context.WithTimeout(ctx, h.cfg.LookupWait+5*time.Second)
		r, err := j.m.client.Route(rctx, j.key.String(), h.cfg.LookupWait)
		cancel()
		s.WallMS = float64(time.Since(t0).Microseconds()) / 1000
		if err != nil {
			s.Err = err.Error()
		} else {
			s.Root, s.Hops, s.AnswerHops, s.LatencyMS = r.Root, r.Hops, r.AnswerHops, r.LatencyMS
			s.Correct = r.Root == s.Want
		}
		out[i] = s
		return nil
	})
	return out
}

// workload is the main workload: lookups, records, a footprint.
func (h *harness) workload(ctx context.Context) error {
	h.logf("%d lookups, %d at once", h.cfg.Lookups, h.cfg.Concurrency)
	t0 := time.Now()
	s := h.lookups(ctx, h.cfg.Lookups)
	h.rep.LookupSamples = s
	h.rep.Lookups = summarize(s, h.delay())
	h.rep.Lookups.DurationS = time.Since(t0).Seconds()
	h.logf("lookups: %d correct, %d wrong, %d failed; p50 %.2f ms, p99 %.2f ms, mean hops %.2f",
		h.rep.Lookups.Correct, h.rep.Lookups.Wrong, h.rep.Lookups.Failed, h.rep.Lookups.P50MS, h.rep.Lookups.P99MS, h.rep.Lookups.MeanHops)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if h.cfg.Records > 0 {
		h.records(ctx)
		h.logf("records: %d/%d put, %d/%d read back", h.rep.Records.PutOK, h.rep.Records.Puts, h.rep.Records.GetOK, h.rep.Records.Gets)
	}
	h.footprint(ctx, "after workload")
	return ctx.Err()
}

// delay is the uniform one-way delay, if there is one.
func (h *harness) delay() time.Duration {
	if h.cfg.Matrix != nil {
		return 0
	}
	return h.cfg.InjectDelay
}

// records puts cfg.Records records, each from a random member, and
// reads each back through another.
func (h *harness) records(ctx context.Context) {
	ms := h.alive()
	n := h.cfg.Records
	type job struct {
		w, r  *member
		name  string
		value []byte
	}
	jobs := make([]job, n)
	h.mu.Lock()
	for i := range jobs {
		w := ms[h.rng.IntN(len(ms))]
		r := ms[h.rng.IntN(len(ms))]
		if len(ms) > 1 {
			for r == w {
				r = ms[h.rng.IntN(len(ms))]
			}
		}
		v := make([]byte, 64)
		for k := range v {
			v[k] = byte(h.rng.Uint32())
		}
		jobs[i] = job{w, r, fmt.Sprintf("bench-%s-%d", h.cfg.Run, i), v}
	}
	h.mu.Unlock()
	var mu sync.Mutex
	rec := RecordSummary{Puts: n}
	var puts, gets []float64
	putOK := make([]bool, n)
	_ = parallel(ctx, n, h.cfg.Concurrency, func(i int) error {
		j := jobs[i]
		t0 := time.Now()
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := j.w.client.Put(cctx, j.name, j.value)
		cancel()
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			rec.Errors = appendErr(rec.Errors, "put: "+err.Error())
			return nil
		}
		putOK[i] = true
		rec.PutOK++
		puts = append(puts, float64(time.Since(t0).Microseconds())/1000)
		return nil
	})
	_ = parallel(ctx, n, h.cfg.Concurrency, func(i int) error {
		j := jobs[i]
		if !putOK[i] {
			return nil
		}
		t0 := time.Now()
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		v, err := j.r.client.Get(cctx, j.name, j.w.peer)
		cancel()
		mu.Lock()
		defer mu.Unlock()
		rec.Gets++
		switch {
		case err != nil:
			rec.Errors = appendErr(rec.Errors, "get: "+err.Error())
		case !bytes.Equal(v, j.value):
			rec.Errors = appendErr(rec.Errors, "get: another value than was put")
		default:
			rec.GetOK++
			gets = append(gets, float64(time.Since(t0).Microseconds())/1000)
		}
		return nil
	})
	rec.PutP50MS, rec.PutP99MS = quantile(puts, 0.5), quantile(puts, 0.99)
	rec.GetP50MS, rec.GetP99MS = quantile(gets, 0.5), quantile(gets, 0.99)
	h.rep.Records = &rec
}

// appendErr keeps the first 10 distinct errors.
func appendErr(errs []string, e string) []string {
	for _, x := range errs {
		if x == e {
			return errs
		}
	}
	if len(errs) < 10 {
		errs = append(errs, e)
	}
	return errs
}

// killSome kills cfg.KillPercent of the live members with SIGKILL and
// measures when lookups are correct again.
func (h *harness) killSome(ctx context.Context) error {
	ms := h.alive()
	k := pct(len(ms), h.cfg.KillPercent)
	h.mu.Lock()
	perm := h.rng.Perm(len(ms))[:k]
	h.mu.Unlock()
	f := &Fault{Kind: "kill -9", Percent: h.cfg.KillPercent}
	for _, i := range perm {
		m := ms[i]
		h.mu.Lock()
		m.alive = false
		m.proc.kill = true
		h.mu.Unlock()
		if err := m.proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			return fmt.Errorf("kill node %d: %w", m.idx, err)
		}
		f.Nodes = append(f.Nodes, m.idx)
	}
	t0 := time.Now()
	h.setTruth(h.globalTruth())
	h.logf("killed %d nodes (kill -9): %v", k, f.Nodes)
	h.rep.Faults = append(h.rep.Faults, f)
	h.recover(ctx, f, t0)
	return ctx.Err()
}

// partition cuts the last cfg.PartitionPct of the nodes off the others
// (each side blackholes the other's addresses), holds it, heals it, and
// measures when lookups are correct again. While it holds, a lookup is
// judged against the live nodes of its own side.
func (h *harness) partition(ctx context.Context) error {
	n := len(h.members)
	k := pct(n, h.cfg.PartitionPct)
	if k >= n {
		return fmt.Errorf("a partition of %v%% leaves no node on one side", h.cfg.PartitionPct)
	}
	cut := n - k
	plan := h.net.plan
	f := &Fault{Kind: "partition", Percent: h.cfg.PartitionPct, HeldS: h.cfg.PartitionFor.Seconds()}
	for i := cut; i < n; i++ {
		f.Nodes = append(f.Nodes, i)
	}
	err := parallel(ctx, n, 8, func(i int) error {
		if i < cut {
			return h.net.block(ctx, i, plan.Cover(cut, n))
		}
		return h.net.block(ctx, i, plan.Cover(0, cut))
	})
	if err != nil {
		return fmt.Errorf("partition: %w", err)
	}
	h.logf("partitioned: nodes %d..%d cut off from 0..%d for %v", cut, n-1, cut-1, h.cfg.PartitionFor)
	var sides [2][]id.ID
	for _, m := range h.alive() {
		s := 0
		if m.idx >= cut {
			s = 1
		}
		sides[s] = append(sides[s], m.id)
	}
	side := [2]Truth{NewTruth(sides[0]), NewTruth(sides[1])}
	h.setTruth(func(from int) Truth {
		if from >= cut {
			return side[1]
		}
		return side[0]
	})
	t0 := time.Now()
	for time.Since(t0) < h.cfg.PartitionFor && ctx.Err() == nil {
		r := h.round(ctx, t0)
		r.Partitioned = true
		f.Rounds = append(f.Rounds, r)
	}
	err = parallel(context.Background(), n, 8, func(i int) error { return h.net.unblock(context.Background(), i) })
	if err != nil {
		return fmt.Errorf("heal: %w", err)
	}
	h.setTruth(h.globalTruth())
	h.logf("healed")
	h.rep.Faults = append(h.rep.Faults, f)
	h.recover(ctx, f, time.Now())
	return ctx.Err()
}

// setTruth sets the ground truth lookups are judged by.
func (h *harness) setTruth(t func(int) Truth) {
	h.mu.Lock()
	h.truth = t
	h.mu.Unlock()
}

// Round is one round of lookups while measuring a recovery.
type Round struct {
	AtS         float64 `json:"at_s"` // its start, from the fault (or the heal)
	Lookups     int     `json:"lookups"`
	Correct     int     `json:"correct"`
	Wrong       int     `json:"wrong"`
	Failed      int     `json:"failed"`
	P50MS       float64 `json:"p50_ms"`
	Partitioned bool    `json:"partitioned,omitempty"`
}

// round runs one round of lookups; rounds start at least RoundEvery
// apart.
func (h *harness) round(ctx context.Context, t0 time.Time) Round {
	if wait := h.cfg.RoundEvery - time.Since(h.lastRound); wait > 0 {
		_ = sleep(ctx, wait)
	}
	h.lastRound = time.Now()
	at := time.Since(t0).Seconds()
	s := h.lookups(ctx, h.cfg.RoundLookups)
	sum := summarize(s, 0)
	return Round{AtS: at, Lookups: len(s), Correct: sum.Correct, Wrong: sum.Wrong, Failed: sum.Failed, P50MS: sum.P50MS}
}

// recover runs rounds of lookups from t0 until two rounds in a row are
// all correct, or RecoveryTimeout; the recovery time is the start of the
// first of the two.
func (h *harness) recover(ctx context.Context, f *Fault, t0 time.Time) {
	f.RecoveredS = -1
	streak := 0
	var first float64
	for time.Since(t0) < h.cfg.RecoveryTimeout && ctx.Err() == nil {
		r := h.round(ctx, t0)
		f.Rounds = append(f.Rounds, r)
		if r.Correct == r.Lookups && r.Lookups > 0 {
			if streak == 0 {
				first = r.AtS
			}
			if streak++; streak == 2 {
				f.RecoveredS = first
				h.logf("%s: lookups all correct again %.1fs after", f.Kind, first)
				return
			}
		} else {
			streak = 0
		}
	}
	h.logf("%s: lookups NOT all correct within %v", f.Kind, h.cfg.RecoveryTimeout)
}

// footprint reads every live member's /metrics (and, in local mode, its
// process's RSS).
func (h *harness) footprint(ctx context.Context, when string) {
	ms := h.alive()
	fp := Footprint{When: when, Nodes: make([]NodeFootprint, len(ms))}
	_ = parallel(ctx, len(ms), h.cfg.Concurrency, func(i int) error {
		m := ms[i]
		nf := NodeFootprint{Index: m.idx}
		mctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		text, err := m.client.Metrics(mctx)
		cancel()
		if err == nil {
			v := ParseMetrics(text)
			nf.RSSMiB = v["process_resident_memory_bytes"] / (1 << 20)
			nf.Goroutines = v["go_goroutines"]
			nf.MessagesSent = v["pastry_messages_sent_total"]
			nf.BytesSent = v["pastry_transport_sent_bytes_total"]
			nf.Peers = v["pastry_libp2p_peers"]
		}
		if m.proc != nil {
			if rss, err := procRSS(m.proc.cmd.Process.Pid); err == nil {
				nf.RSSMiB = rss
			}
		}
		fp.Nodes[i] = nf
		return nil
	})
	fp.summarize()
	h.rep.Footprints = append(h.rep.Footprints, fp)
}

// ParseMetrics sums every sample of each metric of Prometheus text, by
// name (labels dropped).
func ParseMetrics(text string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if strings.HasPrefix(rest, "{") {
			j := strings.LastIndexByte(rest, '}')
			if j < 0 {
				continue
			}
			rest = rest[j+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		out[name] += v
	}
	return out
}

// procRSS is a process's resident set in MiB, from /proc.
func procRSS(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseFloat(f[0], 64)
				return kb / 1024, err
			}
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}
