package sim

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/simnet"
	"github.com/pastrynet/pastry/transport"
)

// counters tallies messages and estimated bytes by type.
type counters struct {
	msgs  [32]uint64
	bytes [32]uint64
}

// workload reports whether messages of type t carry the workload (the
// lookups' requests and answers, and their acks), not the overlay's
// maintenance.
func workload(t core.MsgType) bool {
	return t == core.MsgRoute || t == core.MsgDirect || t == core.MsgRouteAck
}

// control is every message but the workload's.
func (c counters) control() (msgs, bytes uint64) {
	for t := range c.msgs {
		if !workload(core.MsgType(t)) {
			msgs += c.msgs[t]
			bytes += c.bytes[t]
		}
	}
	return msgs, bytes
}

func (c counters) sub(o counters) counters {
	var d counters
	for t := range c.msgs {
		d.msgs[t], d.bytes[t] = c.msgs[t]-o.msgs[t], c.bytes[t]-o.bytes[t]
	}
	return d
}

// run is one simulation in progress.
type run struct {
	cfg      Config
	nw       *simnet.Network
	rng      *rand.Rand
	model    Model
	grid     *grid
	lk       *simnet.Lookups
	sc       *scribeRun // nil unless Groups > 0
	att      *attackRun // nil unless Attack is set
	cnt      counters
	peakHeap uint64
	res      Result
}

// Run executes the experiment cfg describes.
func Run(cfg Config) (*Result, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	// The model is built from its own stream so that the network's stream
	// is the same for every topology.
	model, err := NewModel(cfg.Topology, rand.New(rand.NewPCG(cfg.Seed, 0x70b0)))
	if err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, model: model, grid: newGrid(model, cfg.Nodes)}
	r.nw, err = simnet.New(simnet.Options{Seed: cfg.Seed, Node: cfg.Config, Topology: model, DropRate: cfg.Loss,
		OnSend: func(from int, m *core.Message) {
			r.cnt.msgs[m.Type]++
			r.cnt.bytes[m.Type] += uint64(transport.ModelFrameSize(m, handleSize))
			if r.sc != nil {
				r.sc.onSend(from, m)
			}
			if r.att != nil && (r.att.sec != nil || r.att.filling) {
				r.att.onSend(m)
			}
		}})
	if err != nil {
		return nil, err
	}
	r.rng = r.nw.Rand()
	r.lk = simnet.NewLookups(r.nw)
	r.lk.OracleBlock = cfg.OracleBlock
	r.lk.Gamma = cfg.Gamma
	if cfg.Groups > 0 {
		r.sc = &scribeRun{r: r, byID: map[id.ID]*group{}}
	}
	if cfg.Attack != "" {
		if r.att, err = newAttackRun(r); err != nil {
			return nil, err
		}
	}
	if cfg.Events != nil {
		cfg.Events(&r.nw.Events)
	}
	r.res = Result{Nodes: cfg.Nodes, Topology: cfg.Topology, B: cfg.B, Leaf: cfg.LeafSetSize, Seed: cfg.Seed, Lookups: cfg.Lookups, OracleBlock: cfg.OracleBlock}

	if err := r.grow(); err != nil {
		return nil, err
	}
	if err := r.lookups(); err != nil {
		return nil, err
	}
	if r.sc != nil {
		if err := r.scribe(); err != nil {
			return nil, err
		}
	}
	if cfg.Past != "" {
		if err := r.past(); err != nil {
			return nil, err
		}
	}
	if cfg.Fail > 0 && cfg.Past == "" {
		if err := r.fail(); err != nil {
			return nil, err
		}
	}
	if cfg.ChurnMedian > 0 {
		if err := r.churn(); err != nil {
			return nil, err
		}
	}
	r.finish(start)
	return &r.res, nil
}

func (r *run) progress(phase string, done, total int) {
	if r.cfg.Progress != nil && (done == total || done%max(1, total/200) == 0) {
		r.cfg.Progress(phase, done, total)
	}
	if done%4096 == 0 || done == total {
		r.sampleHeap()
	}
}

func (r *run) sampleHeap() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.peakHeap = max(r.peakHeap, ms.HeapAlloc)
}

func (r *run) joinedAlive(j int) bool {
	n := r.nw.Node(j)
	return n.Alive() && n.Status() == core.StatusJoined
}

// addAndJoin adds a node and joins it through the nearest live member.
func (r *run) addAndJoin() error {
	n := r.nw.AddNode()
	attach := r.lk.Attach
	if r.att != nil {
		attach = r.att.attach
	}
	if err := attach(n); err != nil {
		return err
	}
	if r.sc != nil {
		if err := r.sc.attach(n.Index); err != nil {
			return err
		}
	}
	r.grid.add(n.Index)
	via := r.grid.nearest(n.Index, r.joinedAlive)
	if via < 0 {
		return r.nw.Bootstrap(n.Index)
	}
	return r.nw.Join(n.Index, via)
}

// grow builds the overlay by sequential joins, then lets it settle.
func (r *run) grow() error {
	for i := range r.cfg.Nodes {
		if err := r.addAndJoin(); err != nil {
			return fmt.Errorf("join node %d: %w", i, err)
		}
		r.nw.RunFor(r.cfg.JoinGap)
		r.progress("join", i+1, r.cfg.Nodes)
	}
	grown := r.cnt
	r.nw.RunFor(r.cfg.Settle)
	var join uint64
	for t, c := range grown.msgs {
		if core.MsgType(t) != core.MsgHeartbeat { // the only periodic traffic during the joins
			join += c
		}
	}
	r.res.JoinMsgsPerNode = round(float64(join)/float64(r.cfg.Nodes), 2)
	// Steady-state control traffic: the settle period, after the joins.
	m, b := r.cnt.sub(grown).control()
	live := float64(len(r.nw.Live())) * r.cfg.Settle.Seconds()
	if live > 0 {
		r.res.ControlMsgsPerNodeS = round(float64(m)/live, 4)
		r.res.ControlBytesPerNodeS = round(float64(b)/live, 2)
	}
	return nil
}

// randomLive picks a live joined node uniformly; an honest one when
// there are attackers.
func (r *run) randomLive() int {
	live := r.nw.Live()
	for {
		x := live[r.rng.IntN(len(live))]
		n, _ := r.nw.Lookup(x)
		if r.att == nil || !r.att.malicious(n.Index) {
			return n.Index
		}
	}
}

// issue spreads count lookups over window, then drains for drain, and
// returns the deliveries of these lookups.
func (r *run) issue(phase string, count int, window, drain time.Duration) (LookupStats, error) {
	first := len(r.lk.Deliveries)
	gap := time.Duration(0)
	if count > 0 {
		gap = window / time.Duration(count)
	}
	for k := range count {
		origin, key := r.randomLive(), id.Random(r.rng)
		if r.att != nil {
			r.att.started(origin, key)
		}
		if _, err := r.lk.Lookup(origin, key); err != nil {
			return LookupStats{}, err
		}
		r.nw.RunFor(gap)
		r.progress(phase, k+1, count)
	}
	r.nw.RunFor(drain)
	return summarize(r.lk.Deliveries[first:], count), nil
}

func (r *run) lookups() error {
	first := len(r.lk.Deliveries)
	st, err := r.issue("lookups", r.cfg.Lookups, r.cfg.LookupWindow, 30*time.Second)
	r.res.LookupStats = st
	if err == nil && r.att != nil {
		r.att.finish(r.lk.Deliveries[first:], r.cfg.Lookups)
		r.res.Attack = r.att.res
		if r.cfg.Secure {
			err = r.att.secure()
		}
	}
	return err
}

// fail crashes a fraction of the nodes at once, then measures routing
// right after the failure (before repair has run its course) and again
// after RepairTime.
func (r *run) fail() error {
	fr := &FailResult{Before: r.res.LookupStats}
	r.res.Fail = fr
	// Baseline: control traffic over a quiet window as long as the repair
	// window, just before the failure, so periodic maintenance is not
	// counted as repair.
	quiet := r.cnt
	r.nw.RunFor(r.cfg.RepairTime)
	baseCnt := r.cnt.sub(quiet)
	live := r.nw.Live()
	idx := make([]int, len(live))
	for i, x := range live {
		n, _ := r.nw.Lookup(x)
		idx[i] = n.Index
	}
	kill := int(math.Round(r.cfg.Fail * float64(len(idx))))
	for _, k := range r.rng.Perm(len(idx))[:kill] {
		r.nw.Crash(idx[k])
	}
	fr.Failed = kill
	before := r.cnt
	t0 := r.nw.Now()
	probe := min(max(r.cfg.Lookups, 1000), 10000)
	var err error
	if fr.NoRepair, err = r.issue("after failure", probe, 10*time.Second, 10*time.Second); err != nil {
		return err
	}
	r.nw.RunUntil(t0 + r.cfg.RepairTime)
	// The baseline is what the survivors would have sent anyway: the quiet
	// window's traffic scaled to the nodes left alive, since the dead no
	// longer send their share of the periodic maintenance.
	win := r.cnt.sub(before)
	alive := float64(len(idx)-kill) / float64(len(idx))
	fr.RepairByType = map[string]int64{}
	for t := range win.msgs {
		if workload(core.MsgType(t)) {
			continue
		}
		if d := int64(win.msgs[t]) - int64(math.Round(float64(baseCnt.msgs[t])*alive)); d != 0 {
			fr.RepairByType[core.MsgType(t).String()] = d
			fr.RepairMsgs += uint64(max(d, 0))
		}
	}
	fr.RepairS = r.cfg.RepairTime.Seconds()
	if kill > 0 {
		fr.RepairPerDead = round(float64(fr.RepairMsgs)/float64(kill), 1)
	}
	fr.AfterRepair, err = r.issue("after repair", max(r.cfg.Lookups, 1000), r.cfg.LookupWindow, 30*time.Second)
	return err
}

// workload events under churn.
type wev struct {
	at   time.Duration
	kind uint8 // 0 departure, 1 arrival, 2 lookup
	node int
	seq  uint64
}

type wheap []wev

func (h wheap) Len() int { return len(h) }
func (h wheap) Less(i, j int) bool {
	return h[i].at < h[j].at || h[i].at == h[j].at && h[i].seq < h[j].seq
}
func (h wheap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *wheap) Push(x any)   { *h = append(*h, x.(wev)) }
func (h *wheap) Pop() any     { o := *h; e := o[len(o)-1]; *h = o[:len(o)-1]; return e }

// session draws a session length with the configured median.
func (r *run) session() time.Duration {
	m := float64(r.cfg.ChurnMedian)
	u := 1 - r.rng.Float64() // (0, 1]
	k := r.cfg.SessionShape
	if k == 0 || k == 1 {
		return time.Duration(-math.Log(u) * m / math.Ln2)
	}
	scale := m / math.Pow(math.Ln2, 1/k)
	return time.Duration(scale * math.Pow(-math.Log(u), 1/k))
}

func (r *run) meanSession() float64 {
	m := float64(r.cfg.ChurnMedian)
	k := r.cfg.SessionShape
	if k == 0 || k == 1 {
		return m / math.Ln2
	}
	return m / math.Pow(math.Ln2, 1/k) * math.Gamma(1+1/k)
}

// churn runs Poisson arrivals, session-length departures (silent crashes,
// as in MSPastry's traces) and Poisson lookups for Duration.
func (r *run) churn() error {
	cr := &ChurnResult{MedianSessionS: r.cfg.ChurnMedian.Seconds(), DurationS: r.cfg.Duration.Seconds()}
	r.res.Churn = cr
	var q wheap
	var seq uint64
	push := func(e wev) { seq++; e.seq = seq; heap.Push(&q, e) }
	t0 := r.nw.Now()
	end := t0 + r.cfg.Duration
	for _, x := range r.nw.Live() {
		n, _ := r.nw.Lookup(x)
		push(wev{at: t0 + r.session(), kind: 0, node: n.Index})
	}
	arrivalRate := float64(r.cfg.Nodes) / r.meanSession() // per ns
	lookupRate := float64(r.cfg.Nodes) * r.cfg.LookupRate / float64(time.Minute)
	exp := func(rate float64) time.Duration { return time.Duration(-math.Log(1-r.rng.Float64()) / rate) }
	if arrivalRate > 0 {
		push(wev{at: t0 + exp(arrivalRate), kind: 1})
	}
	if lookupRate > 0 {
		push(wev{at: t0 + exp(lookupRate), kind: 2})
	}
	before := r.cnt
	first := len(r.lk.Deliveries)
	var liveTime float64 // node-seconds
	last := t0
	for len(q) > 0 && q[0].at < end {
		e := heap.Pop(&q).(wev)
		r.nw.RunUntil(e.at)
		liveTime += float64(len(r.nw.Live())) * (e.at - last).Seconds()
		last = e.at
		switch e.kind {
		case 0:
			if r.nw.Node(e.node).Alive() {
				r.nw.Crash(e.node)
				cr.Departures++
			}
		case 1:
			if err := r.addAndJoin(); err != nil {
				return err
			}
			cr.Arrivals++
			push(wev{at: e.at + r.session(), kind: 0, node: len(r.nw.Nodes()) - 1})
			push(wev{at: e.at + exp(arrivalRate), kind: 1})
		case 2:
			if len(r.nw.Live()) > 0 {
				if _, err := r.lk.Lookup(r.randomLive(), id.Random(r.rng)); err != nil {
					return err
				}
				cr.Issued++
			}
			push(wev{at: e.at + exp(lookupRate), kind: 2})
		}
		r.progress("churn", int((e.at-t0)/time.Second), int(r.cfg.Duration/time.Second))
	}
	r.nw.RunUntil(end)
	liveTime += float64(len(r.nw.Live())) * (end - last).Seconds()
	during := r.cnt.sub(before)
	m, b := during.control()
	r.nw.RunFor(30 * time.Second) // drain lookups in flight; no more churn
	cr.Stats = summarize(r.lk.Deliveries[first:], cr.Issued)
	cr.Lost = cr.Issued - cr.Stats.Delivered
	if cr.Issued > 0 {
		cr.LossPer100k = round(float64(cr.Lost)*1e5/float64(cr.Issued), 2)
	}
	cr.MeanLive = round(liveTime/r.cfg.Duration.Seconds(), 1)
	if liveTime > 0 {
		cr.ControlMsgsNS = round(float64(m)/liveTime, 4)
		cr.ControlBytesNS = round(float64(b)/liveTime, 2)
		cr.ControlByType = map[string]float64{}
		for t, c := range during.msgs {
			if c > 0 && !workload(core.MsgType(t)) {
				cr.ControlByType[core.MsgType(t).String()] = round(float64(c)/liveTime, 4)
			}
		}
	}
	return nil
}

func (r *run) finish(start time.Time) {
	res := &r.res
	// Routing-table fill over live joined nodes.
	var rows []float64
	var count int
	for _, n := range r.nw.Nodes() {
		if !r.joinedAlive(n.Index) {
			continue
		}
		count++
		t := n.State().Table
		for row := range t.Rows() {
			if f := t.RowFill(row); f > 0 {
				for len(rows) <= row {
					rows = append(rows, 0)
				}
				rows[row] += float64(f)
			}
		}
	}
	for i := range rows {
		rows[i] = round(rows[i]/float64(max(count, 1)), 3)
	}
	res.TableFill = rows
	res.MsgsByType = map[string]uint64{}
	for t, c := range r.cnt.msgs {
		if c > 0 {
			res.MsgsByType[core.MsgType(t).String()] = c
		}
	}
	var cs core.Stats
	for _, n := range r.nw.Nodes() {
		cs.Add(n.Stats())
	}
	res.CoreStats = map[string]uint64{"rejected": cs.Rejected, "delivered": cs.Delivered, "forwarded": cs.Forwarded,
		"hop_timeouts": cs.HopTimeouts, "reroutes": cs.Reroutes, "dropped": cs.Dropped, "suspected": cs.Suspected,
		"declared_dead": cs.DeclaredDead, "join_retries": cs.JoinRetries, "leaf_repair_requests": cs.LeafRepairRequests,
		"refused_while_joining": cs.RefusedWhileJoining, "candidate_probes": cs.CandidateProbes,
		"spurious_timeouts": cs.SpuriousTimeouts, "duplicates": cs.Duplicates, "loops": cs.Loops}
	res.VirtualS = round(r.nw.Now().Seconds(), 3)
	res.Events = r.nw.Events
	r.sampleHeap()
	res.WallS = round(time.Since(start).Seconds(), 3)
	if res.WallS > 0 {
		res.EventsPerS = math.Round(float64(res.Events) / res.WallS)
	}
	res.PeakHeapBytes = r.peakHeap
	res.JoinGapS = r.cfg.JoinGap.Seconds()
	// The live heap, the run's state still referenced: after the wall time
	// is taken, as the collection costs seconds at a million nodes.
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.LiveHeapBytes = ms.HeapAlloc
	runtime.KeepAlive(r.nw)
	res.PeakRSSBytes = peakRSS()
}

// peakRSS is the process's peak resident set size from /proc/self/status
// (VmHWM), or 0 where there is none.
func peakRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}
